"""ONNX export and ONNX Runtime prediction, optionally with dynamic int8 weights.

A neural run is merged into a plain model (adapters folded into the weights), exported with
``torch.onnx.export`` (dynamic batch and sequence length) and run by ONNX Runtime's CPU
provider. ``--int8`` adds a copy whose MatMul weights are quantized per output channel
(``onnxruntime.quantization.quantize_dynamic``); activations are quantized on the fly.
Per-channel scales and leaving the other operators in fp32 keep the accuracy of small
encoders close to fp32 (per-tensor quantization of every operator costs them more than a point).

For a run folder, the files are made on first use and kept in ``RUN/onnx/``; an export
folder from ``loralab export --onnx`` is read as it is.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from loralab.data.batching import collate, encode, sorted_batches, token_budget
from loralab.data.long_text import TextInput, aggregate_window_logits
from loralab.errors import LoralabError, RunError
from loralab.methods.merge import merge_adapters
from loralab.models.inference import softmax
from loralab.models.pooling import pooled_reading
from loralab.models.speedups import prediction_fast_paths
from loralab.runs.train import load_run

ONNX_DIR = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
LABELS_FILE = "labels.json"
EXTRA = "pip install 'loralab[onnx]'"


def require_onnx() -> None:
    """Fail with the extra to install when ONNX Runtime or the exporter's packages are missing."""
    missing = [m for m in ("onnxruntime", "onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise LoralabError(
            f"The ONNX backend needs {', '.join(missing)}, which is not installed; run: {EXTRA}."
        )


def file_name(int8: bool) -> str:
    return INT8_FILE if int8 else FP32_FILE


def write_onnx(classifier, folder: Path, int8: bool) -> None:
    """Write ``model.onnx`` (and with ``int8`` ``model.int8.onnx``) for a neural run into ``folder``."""

    require_onnx()
    if pooled_reading(classifier.model) is not None:  # not checked to keep the sentence pooling
        raise LoralabError(
            f"'{classifier.method}' runs whose head reads pooled sentence vectors have no ONNX form; "
            "use --backend torch."
        )
    model, _ = merge_adapters(classifier.model)
    model.eval()
    # The exported graph computes only what the head reads, too.
    prediction_fast_paths(model, classifier.config)
    pad = classifier.tokenizer.pad_token_id if classifier.tokenizer.pad_token_id is not None else 0
    example = collate(encode(classifier.tokenizer, ["an example", "a longer example text"], 32), pad)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    length = torch.export.Dim("length", min=2, max=max(classifier.config.max_length, 3))
    folder.mkdir(parents=True, exist_ok=True)
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the exporter and the quantizer log advice meant for their developers
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (),
                kwargs={"input_ids": example["input_ids"], "attention_mask": example["attention_mask"]},
                f=str(folder / FP32_FILE),
                dynamo=True,
                optimize=True,
                verbose=False,
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_shapes={"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}},
            )
            if int8:
                from onnxruntime.quantization import QuantType, quantize_dynamic  # the 'onnx' extra

                quantize_dynamic(
                    folder / FP32_FILE,
                    folder / INT8_FILE,
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    op_types_to_quantize=["MatMul"],
                )
    finally:
        quiet.setLevel(level)
    text_input = TextInput.of(classifier.config)
    (folder / LABELS_FILE).write_text(
        json.dumps(
            {
                "labels": list(classifier.labels),
                "max_length": text_input.max_length,
                "text_input": text_input.to_dict(),
            }
        )
    )


class OnnxClassifier:
    """Probabilities from an ONNX file through ONNX Runtime, batched longest first; long texts
    are cut, or chunked and pooled, as ``text_input`` says (a bare ``max_length`` keeps the head)."""

    def __init__(
        self, path: Path, tokenizer, labels: list[str], text_input: TextInput | int, method: str
    ) -> None:
        import onnxruntime as ort  # the 'onnx' extra

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = tokenizer
        self.labels = labels
        self.text_input = (
            text_input if isinstance(text_input, TextInput) else TextInput(max_length=text_input)
        )
        self.method = f"{method} (onnx{', int8' if path.name == INT8_FILE else ''})"
        self.path = path

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        ids, documents = self.text_input.encode_documents(self.tokenizer, texts)
        out = np.zeros((len(ids), len(self.labels)), dtype=np.float32)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for batch_idx in sorted_batches([len(x) for x in ids], batch_size or 128, token_budget()):
            batch = collate([ids[i] for i in batch_idx], pad)
            feed = {k: v.numpy() for k, v in batch.items() if k in self.inputs}
            out[batch_idx] = self.session.run(["logits"], feed)[0]
        if self.text_input.chunks:
            out = aggregate_window_logits(out, documents, len(texts), self.text_input.chunk_aggregation)
        return softmax(out)

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(texts).argmax(axis=-1)]


def load_onnx(path: str | Path, int8: bool = False, progress: bool = True) -> OnnxClassifier:
    """An :class:`OnnxClassifier` for a run folder (exported on first use) or an export folder."""
    require_onnx()
    path = Path(path)
    if (path / FP32_FILE).exists():  # a folder written by ``loralab export --onnx``
        onnx_dir, tokenizer_dir = path, path
    else:
        onnx_dir, tokenizer_dir = path / ONNX_DIR, path / "model"
        if not (onnx_dir / file_name(int8)).exists():
            classifier = load_run(path)
            if not hasattr(classifier, "model"):
                raise LoralabError(
                    f"{path}: '{classifier.method}' runs have no ONNX form; use --backend torch."
                )
            if progress:
                print(f"Exporting {path} to ONNX once, into {onnx_dir}", file=sys.stderr)
            staging = Path(tempfile.mkdtemp(prefix=".onnx.", dir=path))
            try:
                write_onnx(classifier, staging, int8)
                if onnx_dir.exists():
                    shutil.rmtree(onnx_dir)
                os.replace(staging, onnx_dir)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    model_file = onnx_dir / file_name(int8)
    if not model_file.exists():
        raise RunError(f"{path}: has no {model_file.name}; export it with loralab export --onnx --int8.")
    meta = json.loads((onnx_dir / LABELS_FILE).read_text())
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    info_file = tokenizer_dir / "loralab.json"
    method = json.loads(info_file.read_text())["method"] if info_file.exists() else "exported"
    text_input = TextInput.from_dict(meta.get("text_input", {"max_length": meta["max_length"]}))
    return OnnxClassifier(model_file, tokenizer, meta["labels"], text_input, method)
