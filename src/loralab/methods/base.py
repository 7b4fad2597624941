"""One protocol for every method, and the registry that names them.

A :class:`Method` turns training data into a :class:`Classifier` and reads a saved one back
(``load``); its traits (class attributes) tell the rest of loralab how to run it. Methods
that train in seconds do it in ``fit``. Neural methods share :class:`NeuralMethod`: it loads
the encoder with its head, lets the method choose what trains (``prepare``) and what the loop
reads (``training_data``), and saves what the method owns (``save_weights`` /
``load_weights``); the loop itself is :mod:`loralab.training`'s, one layer up.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoTokenizer

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.data.long_text import TextInput
from loralab.errors import LoralabError, RunError, closest
from loralab.methods.steps import Schedule, floored_schedule
from loralab.models.inference import predict_logits, softmax
from loralab.models.loading import LoadedModel, count_parameters, load_classifier
from loralab.models.speedups import prediction_fast_paths

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


@dataclass
class FitResult:
    """What fitting a method hands on: the classifier and the facts of its training.

    Fields a method does not have stay ``None`` (a TF-IDF baseline has no epochs); the
    manifest of a run records them as they are (see :meth:`manifest_fields`).
    """

    classifier: Classifier
    history: list[dict] = field(default_factory=list)  # one row per epoch
    train_seconds: float = 0.0
    train_tokens: int | None = None
    cache_seconds: float | None = None  # computing what frozen layers output, once
    best_epoch: int | None = None
    stopped_early: bool | None = None
    lr: float | None = None  # resolved: the config's, or the method's default
    epochs: int | None = None
    batch_size: int | None = None
    precision: str | None = None  # what the matrix products ran in
    fast_paths: list[str] | None = None  # speed-ups used in training (loralab.models.speedups)
    head_modules: list[str] | None = None  # trained from scratch and saved with the run
    newly_initialised: list[str] | None = None
    features: dict | None = None  # where frozen features came from (embedding baselines)
    vocabulary_size: int | None = None  # TF-IDF baselines
    # What only some methods record, each under its own manifest key (step floor, SetFit pairs, pooling).
    details: dict[str, Any] = field(default_factory=dict)

    def manifest_fields(self) -> dict:
        """The run manifest's fields about training (its keys are read by reports)."""
        trainable, total = self.classifier.parameter_counts()
        return {
            "trainable_parameters": trainable,
            "total_parameters": total,
            "trainable_share": trainable / total if total else None,
            "train_seconds": self.train_seconds,
            "train_tokens": self.train_tokens,
            "cache_seconds": self.cache_seconds or None,
            "resolved": {
                "lr": self.lr,
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "precision": self.precision,
            },
            "fast_paths": self.fast_paths,
            "head_modules": self.head_modules,
            "newly_initialised": self.newly_initialised,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "features": self.features,
            **self.details,
        }


class Method(ABC):
    """A way of turning labelled texts into a :class:`Classifier`, and of reading one back.

    The class attributes below are the method's traits: the rest of loralab asks them
    instead of testing the method's name.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    # Former names that still select this method, each with a warning that says what it is now.
    aliases: ClassVar[dict[str, str]] = {}
    default_lr: ClassVar[float] = 1e-3
    default_epochs: ClassVar[int] = 3
    default_batch_size: ClassVar[int] = 32
    # Its figures vary with the seed (training order, dropout), so a comparison repeats it per seed.
    seeded: ClassVar[bool] = False
    # Trained by loralab.training's loop: epochs, history, checkpoints, resuming.
    trains_in_epochs: ClassVar[bool] = False
    # --lora-layers N (adapt only the top N layers) applies.
    supports_lora_layers: ClassVar[bool] = False
    # Its trained weights differ from the base model's, so the low-rank analysis can study ΔW.
    has_weight_update: ClassVar[bool] = False
    # It trains low-rank adapters of rank config.lora_rank on a frozen encoder.
    trains_adapters: ClassVar[bool] = False
    # The pretrained encoder with an untrained head: the "before" of an evaluation.
    untrained: ClassVar[bool] = False
    # It runs the pretrained encoder (its features, a head on its outputs, fine-tuning it);
    # False for word-feature baselines. None leaves it undeclared, and then nothing is assumed
    # about what it costs (the ui estimates a cost from this before a method has ever run).
    uses_encoder: ClassVar[bool | None] = None
    # The optional dependency group (pip install 'loralab[EXTRA]') it needs, if any, and a
    # module of it whose absence means the group is not installed.
    extra: ClassVar[str | None] = None
    extra_module: ClassVar[str | None] = None
    # Its place in the default comparison ladder, cheapest first; None keeps it out.
    ladder_position: ClassVar[int | None] = None
    # Honours --truncation and --long-text (the others read whole texts, or the first tokens).
    reads_long_text: ClassVar[bool] = False
    # Cost to train and serve, to prefer the cheaper of two methods that are equally good
    # (loralab.runs.recommend): 0 nothing learned, 1 sparse word features, 2 one frozen-encoder
    # pass, 3 a head trained on frozen features, 5 the encoder adapted, 6 every weight trained.
    # Unlike ladder_position (an order of presentation) equal costs tie.
    cost_rank: ClassVar[int] = 6
    # A yardstick every method must beat (majority class, untrained head): shown, never recommended.
    reference: ClassVar[bool] = False

    def fit(self, splits: DataSplits, config: TrainConfig, *, progress: bool = True) -> FitResult:
        """Train on ``splits.train`` in one go (methods that train in seconds).

        Methods that :attr:`trains_in_epochs` are trained by
        :func:`loralab.training.fit.fit_method` instead, which runs the loop on what they prepare.
        """
        raise NotImplementedError(f"method {self.name} trains through loralab.training.fit.fit_method.")

    @abstractmethod
    def load(self, folder: Path, info: dict) -> Classifier:
        """Rebuild the classifier saved in ``folder``."""

    def check(self, config: TrainConfig) -> None:
        """Validate the parts of ``config`` this method uses, before any work starts."""
        reason = self.unavailable(config)
        if reason is not None:
            raise LoralabError(reason)
        if config.lora_layers is not None and not self.supports_lora_layers:
            with_it = " or ".join(m.name for m in _REGISTRY.values() if m.supports_lora_layers)
            raise LoralabError(f"--lora-layers applies to --method {with_it}, not {self.name}.")
        if not self.reads_long_text and not TextInput.of(config).reads_first_tokens:
            raise LoralabError(
                f"--truncation, --long-text and their settings apply to methods that fine-tune a "
                f"transformer; '{self.name}' does not read them."
            )

    def unavailable(self, config: TrainConfig) -> str | None:
        """Why this method cannot run with ``config`` here (an extra not installed, a model of
        the wrong kind), or ``None``; the default comparison leaves such methods out and says why."""
        if self.extra_module is not None and importlib.util.find_spec(self.extra_module) is None:
            return (
                f"--method {self.name} needs the {self.extra} extra, which is not installed "
                f"(no module {self.extra_module}): pip install 'loralab[{self.extra}]'."
            )
        return None


_REGISTRY: dict[str, Method] = {}
_ALIASES: dict[str, tuple[str, str]] = {}  # alias → (method name, why it was renamed)


def register(cls: type[Method]) -> type[Method]:
    _REGISTRY[cls.name] = cls()
    _ALIASES.update({alias: (cls.name, reason) for alias, reason in cls.aliases.items()})
    return cls


def method_names() -> list[str]:
    return list(_REGISTRY)


def default_ladder() -> list[str]:
    """The methods a comparison runs when none are named, cheapest first."""
    rungs = [m for m in _REGISTRY.values() if m.ladder_position is not None]
    return [m.name for m in sorted(rungs, key=lambda m: m.ladder_position or 0)]


def untrained_method() -> Method:
    """The method whose classifier is the pretrained encoder with an untrained head."""
    return next(m for m in _REGISTRY.values() if m.untrained)


def get_method(name: str) -> Method:
    if name in _ALIASES:
        renamed, reason = _ALIASES[name]
        warnings.warn(f"Method '{name}' is now called '{renamed}': {reason}", FutureWarning, stacklevel=2)
        return _REGISTRY[renamed]
    if name not in _REGISTRY:
        raise LoralabError(
            f"Unknown method '{name}'{closest(name, list(_REGISTRY))}; "
            f"the methods are {', '.join(_REGISTRY)}."
        )
    return _REGISTRY[name]


def load_weights_file(model: nn.Module, path: Path, model_name: str) -> nn.Module:
    """Copy the tensors of a safetensors file into ``model``'s parameters of the same names."""
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
        self.model: Any = model  # a transformers model, possibly wrapped by PEFT
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
            TextInput.of(self.config),
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


@dataclass
class Prepared:
    """A model ready to train: the loaded base (tokenizer, head modules) and the model the
    method made of it, with its trainable set chosen (possibly wrapped, e.g. by PEFT)."""

    loaded: LoadedModel
    model: nn.Module

    @property
    def tokenizer(self) -> Any:  # a transformers tokenizer of whichever class the model uses
        return self.loaded.tokenizer

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else 0


@dataclass
class TrainingData:
    """What the training loop reads: token ids with class ids, and the context to train in.

    A method that caches what frozen layers compute hands over row indices in place of token
    ids and a ``context`` that swaps the cache in for the frozen layers while the loop runs.
    """

    train_ids: list[list[int]]
    train_labels: list[int]
    validation: tuple[list[list[int]], list[int]] | None
    pad_id: int
    context: AbstractContextManager = field(default_factory=nullcontext)
    cache_seconds: float = 0.0
    # Checkpoints hold the model's weights; a run served from a cache of frozen outputs
    # finishes in seconds, so it does not checkpoint.
    checkpointable: bool = True


class NeuralMethod(Method):
    """Methods that adapt a transformer encoder: they load it with its head, choose what
    trains (:meth:`prepare`), say what the loop trains on (:meth:`training_data`), and save
    and load what they own (:meth:`save_weights` / :meth:`load_weights`)."""

    seeded = True
    trains_in_epochs = True
    has_weight_update = True
    uses_encoder = True
    reads_long_text = True

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

    def step_floor(self, train_texts: int, config: TrainConfig, batch_size: int) -> Schedule | None:
        """The default epochs, raised so training takes at least ``config.min_train_steps``
        optimizer steps (see :mod:`loralab.methods.steps`); ``None`` when ``--epochs`` is given,
        since the user's own epochs are kept as given."""
        if config.epochs is not None:
            return None
        return floored_schedule(
            train_texts,
            batch_size,
            self.default_epochs,
            config.min_train_steps,
            config.grad_accum_steps,
            config.patience,
        )

    def fit_details(self, config: TrainConfig) -> dict[str, Any]:
        """Facts of this method's training for the run manifest, beyond :class:`FitResult`'s."""
        return {}

    def build(self, labels: list[str], config: TrainConfig) -> Prepared:
        torch.manual_seed(config.seed)  # the new head's initialisation is part of the run
        loaded = self.base(labels, config)
        model = self.prepare(loaded, config)
        prediction_fast_paths(model, config)
        return Prepared(loaded, model)

    def classifier(self, prepared: Prepared, labels: list[str], config: TrainConfig) -> TransformerClassifier:
        loaded = prepared.loaded
        return TransformerClassifier(
            prepared.model, loaded.tokenizer, labels, self.name, config, loaded.head_modules, self
        )

    def training_data(
        self, prepared: Prepared, splits: DataSplits, config: TrainConfig, *, progress: bool = True
    ) -> TrainingData:
        """Token ids of the training and validation texts, encoded once (cut as the config's
        text input says; with ``train_on_chunks``, every window of a training text, with the
        text's label); methods that cache what frozen layers compute override this."""
        text_input = TextInput.of(config)
        label2id = splits.label2id
        validation = None
        if len(splits.validation):  # selection reads cut texts, also with chunks: one row per text
            validation = (
                text_input.encode(prepared.tokenizer, splits.validation.texts),
                [label2id[y] for y in splits.validation.labels],
            )
        labels = [label2id[y] for y in splits.train.labels]
        if config.train_on_chunks:
            train_ids, documents = text_input.encode_windows(prepared.tokenizer, splits.train.texts)
            labels = [labels[d] for d in documents]
        else:
            train_ids = text_input.encode(prepared.tokenizer, splits.train.texts)
        return TrainingData(train_ids, labels, validation, prepared.pad_id)

    def load(self, folder: Path, info: dict) -> Classifier:
        config = TrainConfig.from_dict(info["config"], strict=False)
        labels = list(info["labels"])
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = self.load_weights(labels, folder, config)
        prediction_fast_paths(model, config)
        model.eval()
        return TransformerClassifier(
            model, tokenizer, labels, self.name, config, list(info.get("head_modules", [])), self
        )
