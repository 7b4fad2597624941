"""One protocol for every method, and the registry that names them.

A :class:`Method` turns training data into a :class:`Classifier` (``fit``) and reads a saved
one back (``load``). Neural methods share :class:`NeuralMethod`, which loads the encoder with
its head, lets the method choose what trains (``prepare``), runs the training loop and saves
what the method owns (``save_weights`` / ``load_weights``).
"""

from __future__ import annotations

import functools
import json
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.errors import LoralabError, RunError, closest
from loralab.evaluation.inference import predict_logits, softmax
from loralab.methods.steps import floored_schedule
from loralab.models.first_token import first_token_only
from loralab.models.loading import LoadedModel, count_parameters, load_classifier

MODEL_INFO = "loralab.json"


class Classifier(ABC):
    """A trained classifier in memory: class names in, probabilities out."""

    method: str
    labels: list[str]
    config: TrainConfig

    @abstractmethod
    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Probabilities ``(N, num_labels)`` in the order of ``self.labels``."""

    def predict(self, texts: Sequence[str]) -> list[str]:
        probs = self.predict_proba(texts)
        return [self.labels[i] for i in probs.argmax(axis=-1)]

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write everything needed to :meth:`Method.load` this classifier into ``folder``."""

    @abstractmethod
    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameters."""

    def _write_info(self, folder: Path, extra: dict) -> None:
        info = {"method": self.method, "labels": self.labels, "config": self.config.to_dict(), **extra}
        (folder / MODEL_INFO).write_text(json.dumps(info, indent=2))


class Method(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    default_lr: ClassVar[float] = 1e-3
    default_epochs: ClassVar[int] = 3
    default_batch_size: ClassVar[int] = 32
    # Cost to train and serve, to prefer the cheaper of two methods that are equally good
    # (loralab.runs.recommend): 0 nothing learned, 1 sparse word features, 2 one frozen-encoder
    # pass, 3 a head trained on frozen features, 5 the encoder adapted, 6 every weight trained.
    cost_rank: ClassVar[int] = 6
    # A yardstick every method must beat (majority class, untrained head): shown, never recommended.
    reference: ClassVar[bool] = False

    @abstractmethod
    def fit(
        self,
        splits: DataSplits,
        config: TrainConfig,
        *,
        progress: bool = True,
        on_epoch: Callable[[dict], None] | None = None,
        checkpoints=None,
        on_step: Callable[[dict, int], None] | None = None,
    ) -> tuple[Classifier, dict]:
        """Train on ``splits.train`` (selecting on ``splits.validation``); return the
        classifier and a dict of training facts (history, timings). Methods that train in
        epochs save and resume from ``checkpoints`` (a :class:`Checkpointing`); the others,
        which take seconds, ignore it."""

    @abstractmethod
    def load(self, folder: Path, info: dict) -> Classifier:
        """Rebuild the classifier saved in ``folder``."""

    def check(self, config: TrainConfig) -> None:  # noqa: B027 - optional hook
        """Validate the parts of ``config`` this method uses, before any work starts."""

    def unavailable(self, config: TrainConfig) -> str | None:
        """Why this method cannot run with ``config`` here (an extra not installed, a model of
        the wrong kind), or ``None``; the default comparison leaves such methods out and says why."""
        return None


_REGISTRY: dict[str, Method] = {}


def register(cls: type[Method]) -> type[Method]:
    _REGISTRY[cls.name] = cls()
    return cls


def method_names() -> list[str]:
    return list(_REGISTRY)


def get_method(name: str) -> Method:
    if name not in _REGISTRY:
        raise LoralabError(
            f"Unknown method '{name}'{closest(name, list(_REGISTRY))}; "
            f"the methods are {', '.join(_REGISTRY)}."
        )
    return _REGISTRY[name]


def load_weights_file(model: nn.Module, path: Path, model_name: str) -> nn.Module:
    """Copy the tensors of a safetensors file into ``model``'s parameters of the same names."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    params = dict(model.named_parameters())
    absent = sorted(set(state) - set(params))
    if absent:
        raise RunError(f"{path}: weights {', '.join(absent[:3])} do not fit model {model_name}.")
    for name, value in state.items():
        if tuple(value.shape) != tuple(params[name].shape):
            raise RunError(
                f"{path}: tensor {name} has shape {tuple(value.shape)} but model {model_name} "
                f"expects {tuple(params[name].shape)}."
            )
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)
    return model


def load_saved_classifier(folder: str | Path) -> Classifier:
    """Load a classifier from a ``model/`` folder written by :meth:`Classifier.save`."""
    folder = Path(folder)
    info_path = folder / MODEL_INFO
    if not info_path.exists():
        raise RunError(f"{folder}: not a saved loralab model (no {MODEL_INFO}).")
    info = json.loads(info_path.read_text())
    return get_method(info["method"]).load(folder, info)


class TransformerClassifier(Classifier):
    """An encoder with a classification head, possibly wrapped by PEFT."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        labels: list[str],
        method: str,
        config: TrainConfig,
        head_modules: list[str],
        owner: NeuralMethod,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.labels = labels
        self.method = method
        self.config = config
        self.head_modules = head_modules
        self.owner = owner
        self.precision = "fp32"  # of prediction; loralab.runs.predict.load_for_prediction sets it

    def predict_logits(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return predict_logits(
            self.model,
            self.tokenizer,
            texts,
            self.config.max_length,
            batch_size or self.config.eval_batch_size,
            precision=self.precision,
        )

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return softmax(self.predict_logits(texts, batch_size))

    def parameter_counts(self) -> tuple[int, int]:
        return count_parameters(self.model)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.owner.save_weights(self, folder)
        self.tokenizer.save_pretrained(folder)
        self._write_info(folder, {"head_modules": self.head_modules})


class NeuralMethod(Method):
    """Shared fit/load for methods that adapt a transformer encoder."""

    @abstractmethod
    def prepare(self, loaded: LoadedModel, config: TrainConfig) -> nn.Module:
        """Choose what trains (and wrap the model if needed); return the model to train."""

    @abstractmethod
    def save_weights(self, classifier: TransformerClassifier, folder: Path) -> None: ...

    @abstractmethod
    def load_weights(self, labels: list[str], folder: Path, config: TrainConfig) -> nn.Module:
        """Rebuild the trained model from ``folder`` (frozen, in eval mode)."""

    def base(self, labels: list[str], config: TrainConfig) -> LoadedModel:
        return load_classifier(config.model, labels, trust_remote_code=config.trust_remote_code)

    def resolved(self, config: TrainConfig) -> tuple[float, int, int]:
        """Learning rate, epochs and batch size: the config's, or this method's defaults."""
        return (
            config.lr or self.default_lr,
            config.epochs or self.default_epochs,
            config.batch_size or self.default_batch_size,
        )

    def build(self, labels: list[str], config: TrainConfig) -> tuple[LoadedModel, nn.Module]:
        torch.manual_seed(config.seed)  # the new head's initialisation is part of the run
        loaded = self.base(labels, config)
        model = self.prepare(loaded, config)
        first_token_only(model)
        return loaded, model

    def fit(self, splits, config, *, progress=True, on_epoch=None, checkpoints=None, on_step=None):
        loaded, model = self.build(splits.labels, config)
        lr, epochs, batch_size = self.resolved(config)
        schedule = None
        if config.epochs is None:  # the user's own --epochs are kept as given
            schedule = floored_schedule(
                len(splits.train),
                batch_size,
                epochs,
                config.min_train_steps,
                config.grad_accum_steps,
                config.patience,
            )
            epochs = schedule.epochs
            config = config.replace(patience=schedule.patience)
        config = config.replace(batch_size=batch_size)
        result = self.train(
            loaded, model, splits, config, lr, epochs, progress, on_epoch, checkpoints, on_step
        )
        classifier = TransformerClassifier(
            model, loaded.tokenizer, splits.labels, self.name, config, loaded.head_modules, self
        )
        facts = {
            "history": result.history,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "train_seconds": result.train_seconds,
            "train_tokens": result.train_tokens,
            "cache_seconds": result.cache_seconds,
            "precision": result.precision,
            "lr": lr,
            "epochs": epochs,
            "batch_size": batch_size,
            "details": {"step_floor": schedule.to_dict()} if schedule and schedule.raised_from else {},
            "head_modules": loaded.head_modules,
            "newly_initialised": loaded.newly_initialised,
        }
        return classifier, facts

    def train(
        self, loaded, model, splits, config, lr, epochs, progress, on_epoch, checkpoints=None, on_step=None
    ):
        """Tokenise once and run the training loop; methods may train differently."""
        from loralab.training.batching import encode
        from loralab.training.loop import train_model

        tokenizer = loaded.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        label2id = splits.label2id
        validation = None
        if len(splits.validation):
            validation = (
                encode(tokenizer, splits.validation.texts, config.max_length),
                [label2id[y] for y in splits.validation.labels],
            )
        train_ids = encode(tokenizer, splits.train.texts, config.max_length)
        run = functools.partial(
            train_model,
            config=config,
            lr=lr,
            epochs=epochs,
            progress=progress,
            on_epoch=on_epoch,
            checkpoints=checkpoints,
            on_step=on_step,
        )
        labels = [label2id[y] for y in splits.train.labels]
        if config.lora_layers is not None:
            cached = self.train_top_layers(model, train_ids, labels, validation, pad, config, progress, run)
            if cached is not None:
                return cached
        return run(model, train_ids, labels, validation, pad)

    def train_top_layers(self, model, train_ids, labels, validation, pad, config, progress, run):
        """Train with the frozen bottom layers' outputs computed once per text (``--lora-layers``).

        Token id lists become ``[row, *ids[1:]]`` (same lengths, so the same batches), and the
        stand-in serves row ``row`` of the cache. Returns ``None`` to train through the model."""
        from loralab.methods.frozen import bottom_swapped, cache_bottom_layers
        from loralab.models.targets import encoder_layers

        frozen = len(encoder_layers(model.get_base_model() if hasattr(model, "get_base_model") else model)[1])
        frozen -= config.lora_layers
        if frozen <= 0:
            return None
        begin = time.perf_counter()
        every = train_ids + (validation[0] if validation else [])
        stand_in = cache_bottom_layers(model, every, pad, frozen, config.eval_batch_size, progress)
        if stand_in is None:
            warnings.warn(
                "--lora-layers: the frozen layers' outputs cannot be cached for this model; "
                "training runs through all layers.",
                stacklevel=2,
            )
            return None
        seconds = time.perf_counter() - begin
        rows = [[i, *ids[1:]] for i, ids in enumerate(every)]
        if validation is not None:
            validation = (rows[len(train_ids) :], validation[1])
        with bottom_swapped(model, stand_in, frozen):
            result = run(model, rows[: len(train_ids)], labels, validation, pad)
        result.cache_seconds = seconds
        result.train_seconds += seconds
        return result

    def load(self, folder: Path, info: dict) -> Classifier:
        config = TrainConfig.from_dict(info["config"], strict=False)
        labels = list(info["labels"])
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = self.load_weights(labels, folder, config)
        first_token_only(model)
        model.eval()
        return TransformerClassifier(
            model, tokenizer, labels, self.name, config, list(info.get("head_modules", [])), self
        )
