"""Shared fixtures: tiny random models built from configs, a locally made tokenizer, and
small synthetic data. Nothing here touches the network."""

from __future__ import annotations

import inspect
import os
import random
import re
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
POSITIVE = "good great fine lovely charming superb wonderful delightful brilliant moving".split()
NEGATIVE = "bad awful dull boring tedious poor weak clumsy bland terrible".split()
NEUTRAL = "the film movie plot story acting was is and a it this of".split()


def shared_data(name: str) -> Path:
    """Path of a shared data set; a missing folder fails under CI and skips elsewhere."""
    path = SHARED_DATA / name
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing; CI needs ../shared/data next to the checkout.")
        pytest.skip(f"{path} is not available")
    return path


def make_tokenizer(folder: Path):
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!"]
    vocab += sorted(set(POSITIVE + NEGATIVE + NEUTRAL + ["neutral", "meh", "okay"]))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    return tokenizer


def tiny_config(family: str):
    from transformers import BertConfig, DistilBertConfig, RobertaConfig

    if family == "bert":
        return BertConfig(
            vocab_size=64,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    if family == "distilbert":
        return DistilBertConfig(
            vocab_size=64, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64
        )
    if family == "roberta":
        return RobertaConfig(
            vocab_size=64,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=66,
            pad_token_id=0,
        )
    raise ValueError(family)


def build_base_model(folder: Path, family: str = "bert", config=None) -> Path:
    """Save a random encoder *without* a classification head, plus a tokenizer, to ``folder``.

    Loading it for classification then reports the head as newly initialised, exactly as
    with a real pretrained checkpoint.
    """
    import torch
    from transformers import AutoModel

    torch.manual_seed(0)
    model = AutoModel.from_config(config or tiny_config(family))
    model.save_pretrained(folder)
    make_tokenizer(folder).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return build_base_model(tmp_path_factory.mktemp("tiny-bert"), "bert")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    return {
        family: build_base_model(tmp_path_factory.mktemp(f"tiny-{family}"), family)
        for family in ("bert", "distilbert", "roberta")
    }


def synthetic_frame(n: int, seed: int = 0, classes: int = 2) -> pd.DataFrame:
    """Short texts whose class is told by a sentiment word; three classes add 'neutral'."""
    rng = random.Random(seed)
    rows = []
    names = ["negative", "positive", "neutral"][:classes]
    for i in range(n):
        label = names[i % classes]
        words = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": ["neutral", "meh", "okay"]}[label]
        text = " ".join(rng.sample(NEUTRAL, 3) + [rng.choice(words)] + rng.sample(NEUTRAL, 2))
        rows.append({"text": text, "label": label})
    return pd.DataFrame(rows)


@pytest.fixture
def synthetic_dir(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    synthetic_frame(160, 1).to_csv(folder / "train.csv", index=False)
    synthetic_frame(40, 2).to_csv(folder / "validation.csv", index=False)
    synthetic_frame(40, 3).to_csv(folder / "test.csv", index=False)
    return folder


@pytest.fixture(autouse=True)
def _runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LORALAB_RUNS_DIR", str(tmp_path / "runs"))


# What makes a test an integration test, read from its source and its fixtures' sources:
# ../shared/data, a whole run written end to end (train, compare, sweep, search, export,
# batch scoring, or the CLI writing an --output-dir), or another process launched.
END_TO_END = re.compile(
    r"\bshared_data\(|\b(train_run|execute|compare|run_sweep|run_search|export_run|predict_file)\("
    r"|[\"']--output-dir[\"']|[\"']-o[\"']|\bsubprocess\b|\bPopen\b"
)


def _end_to_end(item: pytest.Item) -> bool:
    functions = [getattr(item, "function", None)]
    for name in getattr(item, "fixturenames", []):
        functions += [d.func for d in item._fixtureinfo.name2fixturedefs.get(name, ())]
    for function in functions:
        try:
            if function is not None and END_TO_END.search(inspect.getsource(function)):
                return True
        except (OSError, TypeError):  # a built-in fixture without Python source
            continue
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Integration tests are found from what they do (:data:`END_TO_END`), whether or not
    they are marked; ``make test-unit`` leaves them out."""
    for item in items:
        if "integration" not in item.keywords and _end_to_end(item):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _unit_tests_stay_off_the_embedded_model(request, monkeypatch):
    """With ``-m "not integration"`` (``make test-unit``), loading the embedded MiniLM fails the
    test: a test that needs it is an integration test and must be marked so."""
    if "not integration" not in (request.config.getoption("markexpr") or ""):
        return
    from loralab.models import loading

    def refuse():
        pytest.fail(
            f"{request.node.nodeid} loads the embedded model {loading.DEFAULT_MODEL}; "
            "mark it @pytest.mark.integration (make test-unit runs without it)."
        )

    monkeypatch.setattr(loading, "embedded_model_path", refuse)
