"""``loralab export``: a run as a folder that loads without loralab.

Neural runs become a plain transformers model (adapters merged into the weights, the trained
head in place, ``id2label``/``label2id`` set, safetensors, tokenizer), loadable with
``AutoModelForSequenceClassification.from_pretrained`` or ``pipeline("text-classification")``.
TF-IDF baselines become a scikit-learn ``Pipeline`` written with skops, which loads without
pickle after the reader has approved the types it contains.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.pipeline import Pipeline
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from loralab.data.long_text import TextInput
from loralab.errors import LoralabError, RunError
from loralab.methods.baselines import TfidfClassifier
from loralab.methods.merge import merge_adapters
from loralab.methods.neural import TransformerClassifier
from loralab.models.inference import predict_logits, softmax
from loralab.models.pooling import pooled_reading
from loralab.runs.card import CARD, model_card
from loralab.runs.exportable import export_refusal, pooled_refusal
from loralab.runs.files import apply_default_modes
from loralab.runs.folder import RunFolder
from loralab.runs.onnx import FP32_FILE, INT8_FILE, OnnxClassifier, require_onnx, write_onnx
from loralab.runs.train import load_run

CHECK_TEXTS = 64
TOLERANCE = 1e-4

PIPELINE_FILE = "pipeline.skops"


def _sample_texts(run_dir: Path) -> list[str]:
    texts = ["a gripping, beautifully acted film", "dull and far too long", "ok"]
    predictions = run_dir / "predictions" / "test.csv"
    if predictions.exists():
        texts += pd.read_csv(predictions, usecols=["text"], nrows=CHECK_TEXTS)["text"].astype(str).tolist()
    return texts


def _export_transformer(classifier, folder: Path, texts: list[str]) -> float:
    text_input = TextInput.of(classifier.config)
    expected = classifier.predict_proba(texts)
    model: Any
    model, _ = merge_adapters(classifier.model)
    model.config.id2label = dict(enumerate(classifier.labels))
    model.config.label2id = {label: i for i, label in enumerate(classifier.labels)}
    model.config.num_labels = len(classifier.labels)
    note = text_input.plain_transformers_note()
    model.config.loralab_text_input = note  # saved into config.json
    model.save_pretrained(folder)
    classifier.tokenizer.save_pretrained(folder)
    tail = text_input.truncation == "tail" and note["plain_transformers"]
    tokenizer = AutoTokenizer.from_pretrained(
        folder, model_max_length=text_input.max_length, truncation_side="left" if tail else "right"
    )
    tokenizer.save_pretrained(folder)  # with the run's length and side, for pipelines
    plain = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    # The weights: the plain model on the run's own inputs (windows, head and tail, …).
    got = softmax(predict_logits(plain, tokenizer, texts, text_input))
    difference = float(np.abs(got - expected).max())
    if note["plain_transformers"]:  # and the tokenizer alone reproduces the run's input
        with torch.inference_mode():
            batch = tokenizer(texts, truncation=True, padding=True, return_tensors="pt")
            got = plain(**batch).logits.softmax(-1).numpy()
        difference = max(difference, float(np.abs(got - expected).max()))
    return difference


def _export_pipeline(classifier, folder: Path, texts: list[str]) -> float:
    import skops.io as sio  # the 'serve' extra

    estimator = copy.deepcopy(classifier.estimator)
    estimator.classes_ = np.array(classifier.labels)  # predict() returns label names
    pipeline = Pipeline([("tfidf", classifier.vectorizer), ("classifier", estimator)])
    sio.dump(pipeline, folder / PIPELINE_FILE)
    loaded = sio.load(folder / PIPELINE_FILE, trusted=sio.get_untrusted_types(file=folder / PIPELINE_FILE))
    return np.abs(loaded.predict_proba(texts) - classifier.predict_proba(texts)).max()


def _check_onnx(classifier, expected: np.ndarray, folder: Path, texts: list[str], int8: bool):
    """Max probability difference of the fp32 ONNX model from the run's ``expected``
    probabilities, and the int8 model's label agreement with them (None without ``int8``)."""

    def session(name: str) -> np.ndarray:
        onnx = OnnxClassifier(
            folder / name, classifier.tokenizer, classifier.labels, TextInput.of(classifier.config), ""
        )
        return onnx.predict_proba(texts)

    difference = float(np.abs(session(FP32_FILE) - expected).max())
    agreement = float((session(INT8_FILE).argmax(-1) == expected.argmax(-1)).mean()) if int8 else None
    return difference, agreement


def export_run(
    run_dir: str | Path, out: str | Path, *, overwrite: bool = False, onnx: bool = False, int8: bool = False
) -> dict:
    """Export ``run_dir`` into ``out``; the export is checked against the run before it is kept.

    With ``onnx``, ``model.onnx`` (and with ``int8`` a dynamically quantized ``model.int8.onnx``)
    is written next to the transformers files, for ``loralab predict OUT --backend onnx``."""
    run_dir, out = Path(run_dir), Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RunError(f"{out}: already exists and is not empty; pass --overwrite to replace it.")
    refusal = export_refusal(run_dir, RunFolder(run_dir).read_manifest())
    if refusal is not None:  # said before the run is loaded
        raise LoralabError(refusal)
    classifier = load_run(run_dir)
    model = getattr(classifier, "model", None)
    # Runs whose manifest predates the pooling record are told apart by their loaded model.
    refusal = pooled_refusal(run_dir, pooled_reading(model) if model is not None else None)
    if refusal is None and not isinstance(classifier, TransformerClassifier | TfidfClassifier):
        refusal = f"{run_dir}: '{classifier.method}' runs have no single-file export; serve them instead."
    if refusal is not None:
        raise LoralabError(refusal)
    if int8 and not onnx:
        raise LoralabError("--int8 goes with --onnx.")
    if onnx and not isinstance(classifier, TransformerClassifier):
        raise LoralabError(
            f"{run_dir}: --onnx applies to neural runs; a '{classifier.method}' run exports as a "
            "scikit-learn pipeline."
        )
    if onnx:
        require_onnx()
    texts = _sample_texts(run_dir)
    onnx_difference = agreement = None
    # The run's own probabilities, taken before the export folds the adapters into its model.
    expected = classifier.predict_proba(texts) if onnx else None
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if isinstance(classifier, TransformerClassifier):
            difference, kind = _export_transformer(classifier, staging, texts), "transformers"
        else:
            difference, kind = _export_pipeline(classifier, staging, texts), "scikit-learn"
        if onnx:
            write_onnx(classifier, staging, int8)
            assert expected is not None
            onnx_difference, agreement = _check_onnx(classifier, expected, staging, texts, int8)
            difference = max(difference, onnx_difference)
        if difference > TOLERANCE:
            raise RunError(
                f"{run_dir}: the exported model predicts differently from the run "
                f"(max probability difference {difference:.2e}); nothing was written."
            )
        (staging / CARD).write_text(model_card(run_dir, export=kind, export_dir=out))
        apply_default_modes(staging)  # mkdtemp made it 0700; an export is meant to be shared
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, OSError) and err.filename is None:  # a full disk, written by a library
            raise OSError(err.errno, err.strerror, str(out)) from err
        raise
    return {
        "kind": kind,
        "folder": str(out),
        "checked_texts": len(texts),
        "max_difference": float(difference),
        "onnx_max_difference": onnx_difference,
        "int8_label_agreement": agreement,
    }
