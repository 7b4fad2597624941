"""Commands that only parse or print help start without the heavy libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "peft", "accelerate", "sklearn", "pandas", "fastapi", "matplotlib")
SRC = Path(__file__).resolve().parents[1] / "src"

PROBE = """
import json, sys
from loralab.cli import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)), file=sys.stderr)
"""


def heavy_modules_after(*args: str) -> list[str]:
    """The heavy libraries imported by running ``loralab ARGS`` in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=str(SRC), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [("--help",), ("predict", "--help"), ("train", "--help"), ("--version",)])
def test_help_and_version_import_no_heavy_library(args):
    assert heavy_modules_after(*args) == []


def test_the_probe_sees_a_heavy_import():
    # A command that loads the data readers imports pandas: the probe must notice it.
    assert "pandas" in heavy_modules_after("data", "inspect", "no-such-file.csv")


PREDICT_PROBE = """
import json, sys
from loralab.runs.predict import load_for_prediction
classifier = load_for_prediction(sys.argv[1])
predicted = classifier.predict(sys.argv[2:])
print(json.dumps({{"predicted": predicted, "heavy": sorted(m for m in {heavy} if m in sys.modules)}}))
"""
TORCH_STACK = ("torch", "transformers", "peft", "accelerate")


def test_a_tfidf_run_predicts_without_torch(synthetic_dir, tmp_path):
    from loralab.config import TrainConfig
    from loralab.runs.train import train_run

    run = train_run(synthetic_dir, TrainConfig(method="tfidf-logreg"), tmp_path / "run", progress=False)
    texts = ["a charming and delightful film", "a dull and tedious plot"]
    env = dict(os.environ, PYTHONPATH=str(SRC), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", PREDICT_PROBE.format(heavy=TORCH_STACK), str(run.folder), *texts],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["heavy"] == []
    assert answer["predicted"] == ["positive", "negative"] == run.classifier.predict(texts)


def test_the_registry_knows_the_module_of_every_method():
    from loralab.methods import base, get_method, method_names

    for name in method_names():
        module = type(get_method(name)).__module__
        assert module.split(".")[2] == base.DEFINED_IN[name], name
    assert sorted(base.DEFINED_IN) == sorted(method_names())


@pytest.mark.parametrize("method", ["lora", "lora-scratch"])
def test_prediction_merges_the_adapters_before_verifying_fast_paths(
    method, tiny_bert, synthetic_dir, tmp_path, monkeypatch
):
    import numpy as np
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    from loralab.config import TrainConfig
    from loralab.methods.lora.layer import LoRALinear
    from loralab.models import speedups
    from loralab.runs.predict import load_for_prediction
    from loralab.runs.train import load_run, train_run

    config = TrainConfig(method=method, model=str(tiny_bert), epochs=1, lr=5e-3, max_length=64)
    run = train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    unmerged = load_run(run.folder)

    def adapted(model) -> bool:
        return isinstance(model, PeftModel) or any(
            isinstance(m, LoraLayer | LoRALinear) for m in model.modules()
        )

    verified_on: list[bool] = []  # per verification: was the model still adapted?
    plain_verify = speedups.SpeedUp.verify

    def recording_verify(self, model, batch):
        verified_on.append(adapted(model))
        return plain_verify(self, model, batch)

    monkeypatch.setattr(speedups.SpeedUp, "verify", recording_verify)
    merged = load_for_prediction(run.folder)
    assert adapted(unmerged.model) and not adapted(merged.model)
    assert speedups.active_names(merged.model)  # a fast path to verify: first-token
    assert verified_on == [False] * len(speedups.active_names(merged.model))
    assert speedups.active_names(merged.model) == speedups.active_names(unmerged.model)
    texts = ["a good film", "a dull plot", "good good", "bad bad bad", "the acting was charming"]
    np.testing.assert_allclose(merged.predict_proba(texts), unmerged.predict_proba(texts), atol=1e-5)


def test_one_thread_restores_the_thread_count_also_after_an_error():
    import torch

    from loralab.methods.neural import one_thread

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), one_thread():
        assert torch.get_num_threads() == 1
        raise RuntimeError("a failed merge")
    assert torch.get_num_threads() == before
