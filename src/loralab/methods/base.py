"""One protocol for every method, and the registry that names them.

A :class:`Method` turns training data into a :class:`Classifier` and reads a saved one back
(``load``); its traits (class attributes) tell the rest of loralab how to run it. Methods
that train in seconds do it in ``fit``. Neural methods share
:class:`~loralab.methods.neural.NeuralMethod`, in a module of its own because it needs torch.

The registry imports a method's module only when that method is asked for: predicting with a
TF-IDF run then never imports torch, transformers or PEFT (seconds of start-up).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from loralab.config import TrainConfig
from loralab.data import DataSplits
from loralab.data.long_text import TextInput
from loralab.errors import LoralabError, RunError, closest

MODEL_INFO = "loralab.json"


class Classifier(ABC):
    """A trained classifier in memory: class names in, probabilities out."""

    method: str
    labels: list[str]
    config: TrainConfig
    # Predicts in bf16/fp16 autocast when ``precision`` says so (transformer runs); others
    # predict in the precision their arrays have, and ``precision`` stays fp32.
    mixed_precision: ClassVar[bool] = False
    precision: str = "fp32"

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
    # The best epoch's validation accuracy on texts that did not choose it (methods that choose one).
    crossfit_validation_accuracy: float | None = None
    crossfit_validation_balanced_accuracy: float | None = None  # the same, every class counted alike
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
            "validation_accuracy_crossfit": self.crossfit_validation_accuracy,
            "validation_balanced_accuracy_crossfit": self.crossfit_validation_balanced_accuracy,
            "stopped_early": self.stopped_early,
            "features": self.features,
            **self.details,
        }


# The settings only methods built on LoRA adapters read.
LORA_SETTINGS = frozenset(
    {
        "lora_rank",
        "lora_alpha",
        "lora_dropout",
        "target_modules",
        "lora_bias",
        "lora_init",
        "use_rslora",
        "use_dora",
        "loraplus_lr_ratio",
    }
)


def class_weights(config: TrainConfig, labels: Sequence[int] | np.ndarray, classes: int) -> np.ndarray | None:
    """Each class's weight in the loss as ``config.class_weight`` asks: ``None`` for none; for
    balanced, scikit-learn's ``n / (classes · n_class)``, so every class weighs as much in total.

    >>> class_weights(TrainConfig(class_weight="balanced"), [0, 0, 0, 1], 2).tolist()
    [0.6666666666666666, 2.0]
    """
    if config.class_weight == "none":
        return None
    # deferred: scikit-learn is imported only by the methods that fit with it or weigh classes
    from sklearn.utils.class_weight import compute_class_weight

    return compute_class_weight("balanced", classes=np.arange(classes), y=np.asarray(labels))


def sample_weights(config: TrainConfig, labels: Sequence[int] | np.ndarray) -> np.ndarray | None:
    """Per training text, its class's weight (:func:`class_weights`), for a scikit-learn ``fit``."""
    weights = class_weights(config, labels, int(max(labels)) + 1)
    return None if weights is None else weights[np.asarray(labels)]


def unused_text_settings(config: TrainConfig) -> str | None:
    """A sentence naming long-text settings given away from their default that ``config``'s
    way of reading texts does not use (``--stride`` without chunks, say), or ``None``."""
    defaults = TrainConfig()
    text_input = TextInput.of(config)
    unused = []
    if not text_input.chunks:
        unused += [
            f"--{name.replace('_', '-')} applies with --long-text chunks"
            for name in ("stride", "chunk_aggregation")
            if getattr(config, name) != getattr(defaults, name)
        ]
    elif config.train_on_chunks and config.truncation != defaults.truncation:  # windows cover it all
        unused.append("--truncation applies unless --train-on-chunks")
    truncates = not (text_input.chunks and config.train_on_chunks)  # in training, at least
    if not (truncates and config.truncation == "head+tail") and config.head_share != defaults.head_share:
        unused.append("--head-share applies with --truncation head+tail")
    return "; ".join(unused) or None


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
    # The initial values of LoRA adapters when --lora-init is not given (methods without
    # adapters never read it).
    default_lora_init: ClassVar[str] = "normal"
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
    # Its update of the encoder is made of LoRA adapters (kept apart or merged into the weights).
    lora_based: ClassVar[bool] = False
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
    # Built for a few labelled texts per class (SetFit's contrastive pairs): with so few texts that
    # validation cannot separate it from the best, the recommendation prefers it (runs.recommend).
    few_shot: ClassVar[bool] = False
    # ``loralab export`` writes it as one folder that loads without loralab (a transformers model,
    # a scikit-learn pipeline); see loralab.runs.exportable.
    single_file_export: ClassVar[bool] = False

    def fit(self, splits: DataSplits, config: TrainConfig, *, progress: bool = True) -> FitResult:
        """Train on ``splits.train`` in one go (methods that train in seconds).

        Methods that :attr:`trains_in_epochs` are trained by
        :func:`loralab.training.fit.fit_method` instead, which runs the loop on what they prepare.
        """
        raise NotImplementedError(f"method {self.name} trains through loralab.training.fit.fit_method.")

    @abstractmethod
    def load(self, folder: Path, info: dict) -> Classifier:
        """Rebuild the classifier saved in ``folder``."""

    def load_for_prediction(self, folder: Path, info: dict) -> Classifier:
        """The classifier saved in ``folder``, in the fastest form that predicts the same;
        a method whose saved form is already that one (the default) just loads it."""
        return self.load(folder, info)

    def settled(self, config: TrainConfig) -> TrainConfig:
        """``config`` with the settings whose default depends on the method filled in."""
        return config if config.lora_init is not None else config.replace(lora_init=self.default_lora_init)

    def comparable_settings(self, settings: dict) -> dict:
        """A run's settings (a config dict) as far as they decide this method's result, for telling
        whether a saved run was asked for the same thing: a setting left unset reads as the
        method's default (a run saved before that setting could be unset recorded the value
        itself), and a setting the method never reads is left out, so an unrelated default
        changing (or a compare asking other LoRA settings) does not make every saved run stale."""
        if not self.lora_based:  # a run asked for other LoRA settings is the same run
            settings = {k: v for k, v in settings.items() if k not in LORA_SETTINGS}
        elif settings.get("lora_init") is None:
            settings = {**settings, "lora_init": self.default_lora_init}
        if not self.supports_lora_layers:
            settings = {k: v for k, v in settings.items() if k != "lora_layers"}
        if self.reference:  # a reference answers the same whatever the loss would weigh
            settings = {k: v for k, v in settings.items() if k != "class_weight"}
        return self.read_settings(settings)

    def read_settings(self, settings: dict) -> dict:
        """The part of :meth:`comparable_settings` a method changes: which settings it reads, as
        it reads them."""
        return {k: v for k, v in settings.items() if k != "baseline_c"}

    def check(self, config: TrainConfig) -> None:
        """Validate the parts of ``config`` this method uses, before any work starts."""
        reason = self.unavailable(config)
        if reason is not None:
            raise LoralabError(reason)
        if config.lora_layers is not None and not self.supports_lora_layers:
            _register_all()
            with_it = " or ".join(sorted(m.name for m in _REGISTRY.values() if m.supports_lora_layers))
            raise LoralabError(f"--lora-layers applies to --method {with_it}, not {self.name}.")
        if not self.reads_long_text and not TextInput.of(config).reads_first_tokens:
            raise LoralabError(
                f"--truncation, --long-text and their settings apply to methods that fine-tune a "
                f"transformer; '{self.name}' does not read them."
            )
        unused = unused_text_settings(config)
        if unused:
            warnings.warn(f"{unused}; ignored here.", UserWarning, stacklevel=2)
        unread = self.unread_settings(config)
        if unread:
            flags = ", ".join(f"--{name.replace('_', '-')}" for name in unread)
            verb = "is" if len(unread) == 1 else "are"
            warnings.warn(f"{flags} {verb} not read by --method {self.name}; ignored here.", stacklevel=2)

    def unread_settings(self, config: TrainConfig) -> list[str]:
        """The settings ``config`` gives away from their default that this method never reads:
        those :meth:`comparable_settings` leaves out (the LoRA settings of a method without
        adapters, ``--baseline-c`` of a method without such a constant, …)."""
        given, defaults = config.to_dict(), TrainConfig().to_dict()
        read = self.comparable_settings(given)
        return [name for name, value in given.items() if name not in read and value != defaults[name]]

    def check_model(self, config: TrainConfig, labels: list[str]) -> None:
        """Validate the settings that only the model can tell wrong (LoRA's target modules, say),
        by building what training builds first; a comparison calls it for every method before
        its first run. Most methods have none."""
        return None

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
# The module (under loralab.methods) that registers each method, so that asking for one
# imports only its module: the neural ones import torch and transformers (~3 s). A name not
# listed here (an alias, a typo) imports them all. tests/test_startup.py keeps it complete.
DEFINED_IN: dict[str, str] = {
    "majority": "baselines",
    "tfidf-logreg": "baselines",
    "tfidf-nb": "baselines",
    "embed-logreg": "embedding",
    "embed-svm": "embedding",
    "embed-ridge": "embedding",
    "untrained": "finetune",
    "head": "finetune",
    "full": "finetune",
    "lora": "lora",
    "lora-scratch": "lora",
    "setfit": "setfit",
    "setfit-lora": "setfit",
}


def _import_method_module(module: str) -> None:
    importlib.import_module(f"loralab.methods.{module}")  # its @register calls fill the registry


def _register_all() -> None:
    for module in dict.fromkeys(DEFINED_IN.values()):
        _import_method_module(module)


def register(cls: type[Method]) -> type[Method]:
    _REGISTRY[cls.name] = cls()
    _ALIASES.update({alias: (cls.name, reason) for alias, reason in cls.aliases.items()})
    return cls


def method_names() -> list[str]:
    _register_all()
    return list(_REGISTRY)


def default_ladder() -> list[str]:
    """The methods a comparison runs when none are named, cheapest first."""
    _register_all()
    rungs = [m for m in _REGISTRY.values() if m.ladder_position is not None]
    return [m.name for m in sorted(rungs, key=lambda m: m.ladder_position or 0)]


def untrained_method() -> Method:
    """The method whose classifier is the pretrained encoder with an untrained head."""
    _register_all()
    return next(m for m in _REGISTRY.values() if m.untrained)


def get_method(name: str) -> Method:
    if name in DEFINED_IN:
        _import_method_module(DEFINED_IN[name])
    if name not in _REGISTRY:
        _register_all()
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


def load_saved_classifier(folder: str | Path, *, for_prediction: bool = False) -> Classifier:
    """Load a classifier from a ``model/`` folder written by :meth:`Classifier.save`;
    ``for_prediction`` gives the fastest form that predicts the same
    (:meth:`Method.load_for_prediction`: adapters merged into the weights, for one)."""
    folder = Path(folder)
    info_path = folder / MODEL_INFO
    if not info_path.exists():
        raise RunError(f"{folder}: not a saved loralab model (no {MODEL_INFO}).")
    info = json.loads(info_path.read_text())
    method = get_method(info["method"])
    return method.load_for_prediction(folder, info) if for_prediction else method.load(folder, info)
