"""Many classifiers in one process, sharing the frozen weights of their base model.

Each run is loaded as it would be for ``loralab predict``. Runs on the same base model hold
bit-identical frozen tensors (the encoder under a LoRA adapter or a head, the embedding
layer, …); after loading, every tensor equal to one already held under the same base model
and name is replaced by that one, so N adapters on one base cost one base plus N adapters.
PEFT can hold several adapters on one model but not classification heads of different sizes
(peft issue #2136), and its adapters switch per model rather than per request; sharing the
tensors keeps each run an ordinary, independent model.
"""

from __future__ import annotations

import ctypes
import gc
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from loralab.data.long_text import TextInput
from loralab.data.readers import check_texts
from loralab.errors import DataError, LoralabError, RunError
from loralab.methods import Classifier
from loralab.methods.features import loaded_encoders

_PREFIXES = ("base_model.model.",)
# A served model's name is part of a URL path and of log lines: keep it to safe characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class UnknownModel(LoralabError):
    """No model of that name is served (any more)."""


def _canonical(name: str, encoder_prefix: str | None) -> str:
    """One name for a pretrained tensor whether or not PEFT or loralab wrapped its layer, and
    whether it is read from the classifier (``bert.embeddings…``) or its bare encoder."""
    for prefix in _PREFIXES:
        name = name.removeprefix(prefix)
    if encoder_prefix:
        name = name.removeprefix(f"{encoder_prefix}.")
    return name.replace(".base_layer.", ".").replace(".original_module.", ".")


def _release_freed_memory() -> None:
    # glibc keeps freed heap pages; without giving them back, shared tensors would not show
    # as smaller resident memory. Other C libraries simply lack the call.
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class TensorPool:
    """Frozen tensors by (base model, canonical name, shape, dtype), handed out for sharing."""

    def __init__(self) -> None:
        self.tensors: dict[tuple, torch.Tensor] = {}

    def share(self, base_model: str, module: nn.Module) -> int:
        """Point ``module``'s tensors at equal pooled ones; return the number of bytes saved."""
        saved = 0
        encoder_prefix = getattr(module, "base_model_prefix", None)
        for module_name, sub in module.named_modules():
            for kind in ("_parameters", "_buffers"):
                store = getattr(sub, kind)
                for name, tensor in list(store.items()):
                    if tensor is None or tensor.device.type == "meta":
                        continue
                    canonical = _canonical(f"{module_name}.{name}", encoder_prefix)
                    key = (base_model, canonical, tuple(tensor.shape), tensor.dtype)
                    pooled = self.tensors.get(key)
                    if pooled is None:
                        self.tensors[key] = tensor
                    elif pooled is not tensor and torch.equal(pooled, tensor):
                        saved += tensor.numel() * tensor.element_size()
                        store[name] = pooled
        return saved


@dataclass
class ServedModel:
    name: str
    run: Path
    classifier: Classifier

    def describe(self) -> dict:
        config: Any = getattr(self.classifier, "config", None)
        return {
            "name": self.name,
            "method": self.classifier.method,
            "labels": list(self.classifier.labels),
            # TF-IDF baselines carry a config too, but no encoder.
            "base_model": None if self.classifier.method.startswith("tfidf") else config.model,
            "run": str(self.run),
            # What a long text is cut to, for methods that read --truncation / --long-text.
            "text_input": TextInput.of(config).describe() if self._reads_long_text() else None,
        }

    def _reads_long_text(self) -> bool:
        return getattr(getattr(self.classifier, "owner", None), "reads_long_text", False)


def _modules(classifier: Classifier) -> list[nn.Module]:
    model = getattr(classifier, "model", None)
    if isinstance(model, nn.Module):
        return [model]
    if classifier.method.startswith("embed"):
        return loaded_encoders()
    return []


class Predictor:
    """Load runs once; classify texts with any of them by name.

    ``runs`` is a list of ``NAME=PATH`` or ``PATH`` specs, or a single one; ``classify`` and
    ``predict_proba`` take a list of texts.

    >>> predictor = Predictor(["runs/sentiment", "runs/topic"])       # doctest: +SKIP
    >>> predictor.classify("topic", ["Stocks fell sharply today."])   # doctest: +SKIP
    [{'label': 'business', 'probabilities': {...}, 'model': 'topic'}]
    """

    def __init__(
        self, runs: str | Path | list[str | Path] | None = None, batch_size: int | None = None
    ) -> None:
        self.models: dict[str, ServedModel] = {}
        self.pool = TensorPool()
        self.batch_size = batch_size
        self.shared_bytes = 0
        self._lock = threading.Lock()  # loading and predicting share the tensor pool
        # One run may be given on its own; iterating over a string would read each character.
        for run in [runs] if isinstance(runs, str | Path) else runs or []:
            self.add(run)

    @staticmethod
    def parse(spec: str | Path) -> tuple[str, Path]:
        """``NAME=PATH`` or ``PATH`` (named after its folder)."""
        text = str(spec)
        if "=" in text and not Path(text).exists():
            name, _, where = text.partition("=")
            return name.strip(), Path(where)
        path = Path(text)
        return path.resolve().name, path

    def add(self, spec: str | Path, name: str | None = None) -> ServedModel:
        # deferred: loralab.runs.train brings the training loop, Accelerate and PEFT (~2 s)
        from loralab.runs.train import load_run

        parsed_name, path = self.parse(spec)
        name = name or parsed_name
        if not NAME_PATTERN.fullmatch(name):
            raise LoralabError(
                f"'{name}' is not a valid model name; use 1 to 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit."
            )
        if not path.is_dir():
            raise RunError(f"{path}: no such run folder.")
        if name in self.models:
            raise LoralabError(
                f"a model named '{name}' is already served (from {self.models[name].run}); "
                "give this one another name with NAME=PATH."
            )
        with self._lock:
            classifier = load_run(path)
            classifier.predict_proba(["warm up"])  # load lazily built parts (encoders) now
            base = getattr(getattr(classifier, "config", None), "model", None)
            if base is not None:
                for module in _modules(classifier):
                    self.shared_bytes += self.pool.share(base, module)
            _release_freed_memory()
            served = self.models[name] = ServedModel(name, path, classifier)
        return served

    def remove(self, name: str) -> None:
        self.get(name)
        with self._lock:
            self.models.pop(name, None)
            _release_freed_memory()

    def get(self, name: str) -> ServedModel:
        served = self.models.get(name)  # one lookup: another thread may remove it meanwhile
        if served is None:
            names = ", ".join(sorted(self.models)) or "none"
            raise UnknownModel(f"no model named '{name}'; served models: {names}.")
        return served

    def describe(self) -> list[dict]:
        return [m.describe() for m in self.models.values()]

    def predict_proba(self, name: str, texts: list[str]) -> np.ndarray:
        served = self.get(name)
        _check(texts)
        with self._lock:
            return served.classifier.predict_proba(texts, self.batch_size)

    def classify(self, name: str, texts: list[str]) -> list[dict]:
        """Label and per-label probabilities for each text."""
        _check(texts)
        return self.classify_checked(name, texts)

    def classify_checked(self, name: str, texts: list[str]) -> list[dict]:
        """:meth:`classify` for texts the caller has checked already (the server checks each
        request before its texts join a batch, so a batch is not checked twice)."""
        served = self.get(name)
        labels = served.classifier.labels
        with self._lock:
            probs = served.classifier.predict_proba(texts, self.batch_size)
        return [
            {
                "label": labels[int(row.argmax())],
                "probabilities": {label: float(p) for label, p in zip(labels, row, strict=True)},
                "model": name,
            }
            for row in probs
        ]


def _check(texts: list[str]) -> None:
    """Refuse a single string (a list of its characters to Python) and missing or empty texts."""
    if isinstance(texts, str):
        raise DataError("Predictor takes a list of texts, not a single string; wrap it in a list.")
    check_texts(texts, "texts", "text", first=0)  # numbered as the server numbers them
