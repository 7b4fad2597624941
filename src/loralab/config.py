"""The training configuration: one dataclass with defaults, validation and dict round trips.

Every setting is declared once, here: its field, its help text (and its flag when the flag is
not ``--`` plus the name with dashes) in :func:`setting`'s metadata, and its range check in
``__post_init__``. The command line (``loralab train``, ``compare``, ``sweep``), config files,
``--set key=value`` and :class:`loralab.TextClassifier` all take their settings from these
fields, so adding a setting is::

    # in TrainConfig
    stride: int = setting(64, "Tokens shared by neighbouring windows of a long text.")
    # in __post_init__'s checks
    (self.stride >= 0, f"--stride must be ≥ 0, got {self.stride}."),

and nothing else: the options, the layering and the Python API follow. A field declared with
plain ``field()`` (no help) stays out of the command line.

Layering (defaults, then a file, then flags) happens in :mod:`loralab.config_files`;
:func:`TrainConfig.from_dict` checks each value's type and rejects unknown keys from users,
but only warns about unknown keys in saved runs.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
import warnings
from dataclasses import MISSING, dataclass, field
from typing import Any

from loralab.errors import LoralabError, closest

CONFIG_VERSION = 1
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TRACKERS = ("tensorboard", "mlflow", "wandb")  # --report-to; see loralab.runs.tracking


def check_tracker_names(names: list[str] | None) -> list[str]:
    """Validated tracker names; ``none`` alone means no tracking."""
    names = [n.strip().lower() for n in names or [] if n.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise LoralabError(f"--report-to {unknown[0]}: choose from {', '.join(TRACKERS)} or none.")
    return names


SPEEDUP_NAMES = ("first-token", "fast-dropout", "frozen-bottom")  # --fast-paths; see loralab.models.speedups


def check_speedup_names(names: list[str]) -> list[str] | None:
    """Validated speed-up names; ``all`` alone means every one (``None``), ``none`` alone none."""
    names = [n.strip().lower() for n in names if n.strip()]
    if names == ["all"]:
        return None
    if names == ["none"]:
        return []
    for name in names:
        if name not in SPEEDUP_NAMES:
            raise LoralabError(
                f"--fast-paths: no speed-up is called '{name}'{closest(name, list(SPEEDUP_NAMES))}; "
                f"they are {', '.join(SPEEDUP_NAMES)} (or all, or none)."
            )
    return names


def setting(
    default: Any = MISSING,
    help: str = "",
    *,
    flag: str | None = None,
    short: str | None = None,
    off_flag: str | None = None,
    off_value: str | None = None,
    keep_text: bool = False,
    default_factory: Any = MISSING,
) -> Any:
    """A dataclass field that the command line, config files and the Python API expose.

    ``flag`` replaces the derived flag (``--lora-rank`` for ``lora_rank``); booleans get
    ``--name/--no-name`` unless ``flag`` says otherwise; ``short`` adds a one-letter alias.
    ``off_flag`` adds a switch that stands for the value ``off_value`` (``--no-fast-paths``
    for ``--fast-paths none``). ``keep_text`` hands ``--set`` text to the field unparsed, for
    a field that reads its own words (where ``none`` is not ``None``).
    """
    metadata: dict[str, Any] = {"help": help, "flag": flag, "short": short}
    metadata.update(off_flag=off_flag, off_value=off_value, keep_text=keep_text)
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# How each class weighs in the loss (see loralab.methods.base.sample_weights).
CLASS_WEIGHTS = ("none", "balanced")
# Classes are uneven when the rarest has fewer than this share of the texts of the most common
# (e.g. 43 against 108: 0.40): the data notes say so, and compare judges by balanced accuracy.
UNEVEN_CLASSES = 0.5


def uneven(class_texts: dict[str, int] | None) -> bool:
    """Whether texts per class ``class_texts`` are uneven (see :data:`UNEVEN_CLASSES`).

    >>> uneven({"a": 50, "b": 50}), uneven({"a": 90, "b": 10}), uneven({"a": 100, "b": 50})
    (False, True, False)
    """
    counts = [n for n in (class_texts or {}).values() if n > 0]
    return len(counts) >= 2 and min(counts) < UNEVEN_CLASSES * max(counts)


# How frozen features become one vector per text; auto reads the model's sentence-transformers config.
POOLINGS = ("auto", "cls", "mean", "max")


@dataclass
class TrainConfig:
    """Everything that decides how a classifier is trained.

    ``lr``, ``epochs`` and ``batch_size`` left as ``None`` take the method's own defaults
    (LoRA and head tuning want a much higher learning rate than full fine-tuning).

    >>> TrainConfig(method="lora", lora_rank=4).lora_rank
    4
    """

    method: str = setting(
        "lora",
        "lora, lora-scratch, full, head, setfit, setfit-lora, untrained, majority, tfidf-logreg, "
        "tfidf-nb, embed-logreg, embed-svm, embed-ridge.",
        short="-m",
    )
    model: str = setting(DEFAULT_MODEL, "Hugging Face name or local folder.")
    max_length: int = setting(128, "Truncate texts to this many tokens.")
    # Texts longer than max_length (see loralab.data.long_text)
    truncation: str = setting(
        "head", "Tokens a long text keeps: head, tail or head+tail (a share from each end)."
    )
    head_share: float = setting(0.25, "head+tail: share of the kept tokens taken from the start.")
    long_text: str = setting(
        "truncate", "truncate, or chunks: windows of --max-length, logits pooled per text."
    )
    stride: int | None = setting(
        None, "chunks: tokens shared by consecutive windows (default: a quarter of --max-length)."
    )
    chunk_aggregation: str = setting("mean", "chunks: mean or max of the windows' logits.")
    train_on_chunks: bool = setting(False, "chunks: train on every window, with its text's label.")
    epochs: int | None = setting(None, "Epochs (default per method).")
    lr: float | None = setting(None, "Learning rate (default per method: lora 1e-3, full 5e-5, head 2e-3).")
    batch_size: int | None = setting(None, "Training batch size (default per method).")
    eval_batch_size: int = setting(
        128,
        "Most texts per evaluation and prediction batch (on a CPU, also at most 1,024 "
        "padded tokens per thread).",
    )
    weight_decay: float = setting(0.01, "AdamW weight decay.")
    warmup_ratio: float = setting(0.06, "Share of the steps spent warming the learning rate up.")
    grad_accum_steps: int = setting(1, "Batches whose gradients add up to one optimizer step.")
    max_grad_norm: float = setting(1.0, "Clip the gradient norm to this.")
    patience: int | None = setting(None, "Stop after N epochs without a better validation accuracy.")
    min_train_steps: int = setting(
        100,
        "Without --epochs, train at least this many optimizer steps on small data (0: off); "
        "the default epochs are raised to reach it.",
    )
    seed: int = setting(42, "Seed for carved splits, subsets, initialisation and batch order.")
    # LoRA
    lora_rank: int = setting(8, "LoRA rank r.")
    lora_alpha: float = setting(16.0, "LoRA alpha; the update is scaled by alpha / rank.")
    lora_dropout: float = setting(0.1, "Dropout on the LoRA input.")
    target_modules: list[str] | None = setting(
        None,
        "Comma-separated module names, all-linear (the default for LoRA) or preset (the model "
        "family's query/value layers).",
    )
    lora_bias: str = setting("none", "Which biases train with LoRA: none, all or lora_only.")
    lora_init: str | None = setting(
        None,
        "normal (A ~ N(0, 1/rank²)), kaiming (PEFT's default), or pissa (principal singular "
        "vectors of W). Default: normal for lora and lora-scratch, kaiming for setfit-lora.",
    )
    use_rslora: bool = setting(False, "Scale by alpha/sqrt(rank) (rsLoRA).", flag="--use-rslora/--no-rslora")
    use_dora: bool = setting(False, "DoRA: magnitude and direction (PEFT).", flag="--use-dora/--no-dora")
    loraplus_lr_ratio: float | None = setting(
        None, "LoRA+: learning rate of the B matrices = ratio × --lr (e.g. 16)."
    )
    lora_layers: int | None = setting(
        None,
        "Adapt only the top K encoder layers; the frozen layers below run once per text and are "
        "cached, so every epoch runs only the top K.",
    )
    # TF-IDF baselines
    tfidf_ngram_max: int = setting(2, "TF-IDF baselines: longest n-gram.")
    tfidf_max_features: int | None = setting(50000, "TF-IDF baselines: vocabulary size.")
    tfidf_sublinear_tf: bool = setting(True, "TF-IDF baselines: 1 + log(tf).")
    baseline_c: float | None = setting(
        None,
        "Baselines: inverse regularisation strength (default: embed-logreg chooses it by "
        "cross-validation on the training texts; the others use 1.0).",
    )
    class_weight: str = setting(
        "none",
        "Each class's weight in the loss: none, or balanced (inversely to its number of training "
        "texts, as scikit-learn's class_weight='balanced'), so a rare class is not given up.",
    )
    pooling: str = setting(
        "auto",
        "Embedding baselines and head tuning: auto (the model's sentence-transformers pooling, "
        "else [CLS]), cls, mean or max.",
    )
    setfit_max_pairs: int = setting(
        2000, "SetFit: at most this many contrastive pairs per run, whatever the data size."
    )
    # Execution
    threads: int | None = setting(None, "CPU threads for torch.")
    precision: str = setting(
        "auto", "auto (bf16 autocast where measured faster, else fp32), fp32, bf16, or fp16 (GPU)."
    )  # see loralab.training.precision
    # None: every speed-up that applies; [] none of them.
    fast_paths: list[str] | None = setting(
        None,
        "Speed-ups to use, each checked against the plain forward: all (the default), none, or a "
        f"comma-separated list of {', '.join(SPEEDUP_NAMES)}.",
        off_flag="--no-fast-paths",
        off_value="none",
        keep_text=True,
    )
    checkpoint_every: int | None = setting(
        None, "Also checkpoint every N optimizer steps (default: each epoch)."
    )
    report_to: list[str] | None = setting(
        None, "Track with tensorboard, mlflow and/or wandb (comma-separated), or none."
    )
    trust_remote_code: bool = setting(False, "Run the model repository's own code (off unless asked).")
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_types()
        if isinstance(self.target_modules, str):
            self.target_modules = [t.strip() for t in self.target_modules.split(",") if t.strip()]
        if isinstance(self.report_to, str):
            self.report_to = [t.strip() for t in self.report_to.split(",") if t.strip()]
        if self.report_to:
            self.report_to = check_tracker_names(self.report_to) or None
        if isinstance(self.fast_paths, str):
            self.fast_paths = self.fast_paths.replace("+", ",").split(",")  # "+" as in a grid axis
        if self.fast_paths is not None:
            self.fast_paths = check_speedup_names(self.fast_paths)
        checks = [
            (self.max_length >= 8, f"--max-length must be at least 8, got {self.max_length}."),
            (
                self.truncation in ("head", "tail", "head+tail"),
                f"--truncation must be head, tail or head+tail; got '{self.truncation}'.",
            ),
            (0 <= self.head_share <= 1, f"--head-share must be in [0, 1], got {self.head_share}."),
            (
                self.long_text in ("truncate", "chunks"),
                f"--long-text must be truncate or chunks; got '{self.long_text}'.",
            ),
            (
                self.stride is None
                or (0 <= self.stride and (self.long_text != "chunks" or self.stride <= self.max_length // 2)),
                f"--stride must be between 0 and half of --max-length ({self.max_length // 2}), "
                f"got {self.stride}.",
            ),
            (
                self.chunk_aggregation in ("mean", "max"),
                f"--chunk-aggregation must be mean or max; got '{self.chunk_aggregation}'.",
            ),
            (
                not self.train_on_chunks or self.long_text == "chunks",
                "--train-on-chunks goes with --long-text chunks.",
            ),
            (self.epochs is None or self.epochs >= 1, f"--epochs must be ≥ 1, got {self.epochs}."),
            (self.lr is None or self.lr > 0, f"--lr must be positive, got {self.lr}."),
            (
                self.batch_size is None or self.batch_size >= 1,
                f"--batch-size must be ≥ 1, got {self.batch_size}.",
            ),
            (self.eval_batch_size >= 1, f"--eval-batch-size must be ≥ 1, got {self.eval_batch_size}."),
            (0 <= self.warmup_ratio < 1, f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}."),
            (self.grad_accum_steps >= 1, f"--grad-accum-steps must be ≥ 1, got {self.grad_accum_steps}."),
            (self.patience is None or self.patience >= 1, f"--patience must be ≥ 1, got {self.patience}."),
            (self.min_train_steps >= 0, f"--min-train-steps must be ≥ 0, got {self.min_train_steps}."),
            (self.lora_rank >= 1, f"--lora-rank must be a positive integer, got {self.lora_rank}."),
            (self.lora_alpha > 0, f"--lora-alpha must be positive, got {self.lora_alpha}."),
            (0 <= self.lora_dropout < 1, f"--lora-dropout must be in [0, 1), got {self.lora_dropout}."),
            (
                self.lora_bias in ("none", "all", "lora_only"),
                f"--lora-bias must be one of none, all, lora_only; got '{self.lora_bias}'.",
            ),
            (self.tfidf_ngram_max >= 1, f"--tfidf-ngram-max must be ≥ 1, got {self.tfidf_ngram_max}."),
            (
                self.tfidf_max_features is None or self.tfidf_max_features >= 1,
                f"--tfidf-max-features must be ≥ 1, got {self.tfidf_max_features}.",
            ),
            (
                self.baseline_c is None or self.baseline_c > 0,
                f"--baseline-c must be positive, got {self.baseline_c}.",
            ),
            (
                self.class_weight in CLASS_WEIGHTS,
                f"--class-weight must be {' or '.join(CLASS_WEIGHTS)}; got '{self.class_weight}'.",
            ),
            (self.setfit_max_pairs >= 2, f"--setfit-max-pairs must be ≥ 2, got {self.setfit_max_pairs}."),
            (
                self.pooling in POOLINGS,
                f"--pooling must be one of {', '.join(POOLINGS)}; got '{self.pooling}'.",
            ),
            (
                self.lora_init in (None, "normal", "kaiming", "pissa"),
                f"--lora-init must be normal, kaiming or pissa; got '{self.lora_init}'.",
            ),
            (
                not (self.lora_init == "pissa" and self.use_dora),
                "--lora-init pissa and --use-dora cannot be combined: DoRA's magnitude is taken from "
                "the full weight, which PiSSA replaces by its residual.",
            ),
            (
                self.lora_layers is None or self.lora_layers >= 1,
                f"--lora-layers must be a positive number of layers, got {self.lora_layers}.",
            ),
            (
                self.loraplus_lr_ratio is None or self.loraplus_lr_ratio > 0,
                f"--loraplus-lr-ratio must be positive, got {self.loraplus_lr_ratio}.",
            ),
            (self.threads is None or self.threads >= 1, f"--threads must be ≥ 1, got {self.threads}."),
            (
                self.precision in ("auto", "fp32", "bf16", "fp16"),
                f"--precision must be one of auto, fp32, bf16, fp16; got '{self.precision}'.",
            ),
            (
                self.checkpoint_every is None or self.checkpoint_every >= 1,
                f"--checkpoint-every must be ≥ 1, got {self.checkpoint_every}.",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise LoralabError(message)

    def _check_types(self) -> None:
        """Refuse a value of the wrong type (``lr="fast"``, from Python or a saved run) with
        one sentence; integers become floats where a float is expected."""
        for item in dataclasses.fields(self):
            setattr(self, item.name, check_value(type(self), item.name, getattr(self, item.name)))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["config_version"] = CONFIG_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = True) -> TrainConfig:
        """Build a config from a dict; unknown keys are errors (``strict``) or warnings.

        Each value must have its field's type (``{"lr": "fast"}`` is refused in one sentence).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k != "config_version"}
        unknown = sorted(set(data) - known)
        if unknown:
            message = f"unknown configuration key(s) {', '.join(unknown)}" + closest(
                unknown[0], sorted(known)
            )
            if strict:
                raise LoralabError(message[0].upper() + message[1:] + ".")
            warnings.warn(f"Ignoring {message}.", stacklevel=2)
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @property
    def lora_init_used(self) -> str:
        """--lora-init once the method has filled in its default (``Method.settled``)."""
        if self.lora_init is None:
            raise ValueError("lora_init is unset: pass the config through Method.settled first.")
        return self.lora_init


TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
EXPECTED = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a list of names or one comma-separated string",
    dict: "a mapping",
}


@functools.cache
def setting_types(cls: type) -> dict[str, tuple[type, bool]]:
    """Each field of the dataclass ``cls`` as (base type, whether ``None`` is allowed):
    ``int | None`` → ``(int, True)``, ``list[str] | None`` → ``(list, True)``."""
    hints = typing.get_type_hints(cls)
    result = {}
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        args = typing.get_args(hint)
        is_union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        base = next(a for a in args if a is not type(None)) if is_union else hint
        result[item.name] = (typing.get_origin(base) or base, is_union and type(None) in args)
    return result


def check_value(cls: type, name: str, value: Any) -> Any:
    """``value`` for the field ``name`` of ``cls``, checked against the field's type.

    Integers pass as floats, and numbers written as text pass as floats too (YAML reads
    ``1e-3`` as a string); anything else of the wrong type is one sentence naming the key.
    """
    kind, optional = setting_types(cls)[name]
    if value is None and optional:
        return None
    if kind is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is list and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    ok = isinstance(value, str) if kind is list else isinstance(value, kind)
    if kind in (int, float) and isinstance(value, bool):
        ok = False
    if not ok:
        raise LoralabError(f"{name}: expected {EXPECTED.get(kind, kind.__name__)}, got {value!r}.")
    return value


def parse_value(cls: type, name: str, text: str) -> Any:
    """The typed value of the field ``name`` of ``cls`` written as text (``--set``, grids).

    ``none`` stands for ``None`` where the field allows it; list items are separated by
    commas or ``+``.
    """
    kind, optional = setting_types(cls)[name]
    if next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("keep_text"):
        return text
    word = text.strip().lower()
    if optional and word in ("none", "null"):
        return None
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise LoralabError(f"{name}: expected {EXPECTED[kind]}, got {text!r}.") from None
    if kind is bool:
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise LoralabError(f"{name}: expected {EXPECTED[bool]}, got {text!r}.")
        return word in TRUE_WORDS
    if kind is list:
        return [part.strip() for part in text.replace("+", ",").split(",") if part.strip()]
    return text
