"""Speed-ups as plugins: each one switchable, and checked against the plain forward.

A speed-up changes how a model computes, never what it computes. Each is a
:class:`SpeedUp` with four steps: ``applies(model, config)`` (does this model have what it
needs), ``enter(model)``, ``exit(model)`` (which restores the plain model exactly, the very
same module objects) and ``verify(model, batch)``, which returns how far the entered
model's logits are from the plain forward's on ``batch``. A speed-up that does not verify
within its tolerance is left out with a :class:`FastPathWarning` naming it and the
difference; it never falls back silently.

:data:`SPEEDUPS` lists them all. ``TrainConfig.fast_paths`` chooses among them
(``--fast-paths NAME,…``; ``--no-fast-paths`` turns them all off); the ones a run used are
recorded in its manifest. They live with the models because loading a model for prediction
(:mod:`loralab.methods`) enters those that pay off there, as training does. Each module
holding a speed-up says why it pays: :mod:`loralab.models.first_token`,
:mod:`loralab.models.fast`, :mod:`loralab.models.frozen_bottom`.

Most are entered by the training loop around the whole of training. The frozen-bottom cache
is entered by the method instead (``in_training_loop`` is false), because it also changes the
training data: token ids become rows of the cache, so it can only be switched on where the
data is prepared. It follows the same four steps and the same switch.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from loralab.config import check_speedup_names
from loralab.data.batching import collate
from loralab.models import fast, first_token
from loralab.models.frozen_bottom import CachedBottom, bottom_swapped, frozen_layer_count

if TYPE_CHECKING:
    from loralab.config import TrainConfig

Batch = dict[str, torch.Tensor]
# Probabilities so small that nothing is dropped, yet every dropout code path still runs.
NEGLIGIBLE_DROPOUT = 1e-12


class FastPathWarning(UserWarning):
    """A speed-up was left out because it did not give the plain model's logits."""


class SpeedUp(ABC):
    """One speed-up: see the module docstring for the protocol."""

    name: ClassVar[str]
    summary: ClassVar[str]
    tolerance: ClassVar[float] = 1e-4  # largest absolute logit difference accepted by verify
    in_prediction: ClassVar[bool] = False  # also pays off when predicting (kept on a loaded model)
    in_training_loop: ClassVar[bool] = True  # entered by the loop (else by the method, with its data)

    @abstractmethod
    def applies(self, model: nn.Module, config: TrainConfig) -> bool:
        """Whether ``model`` has what this speed-up needs (before :meth:`enter`)."""

    @abstractmethod
    def active(self, model: nn.Module) -> bool:
        """Whether the speed-up is on in ``model``."""

    @abstractmethod
    def enter(self, model: nn.Module) -> None:
        """Switch the speed-up on in ``model``."""

    @abstractmethod
    def exit(self, model: nn.Module) -> None:
        """Switch it off again, restoring the plain model's own modules and settings."""

    def comparable(self, model: nn.Module) -> contextlib.AbstractContextManager[None]:
        """The state in which the plain and the fast forward must agree (default: eval mode)."""
        return _mode(model, training=False)

    def verify(self, model: nn.Module, batch: Batch) -> float:
        """The largest absolute difference between the logits of the entered ``model`` and of
        the plain forward on ``batch`` (``inf`` if their shapes differ). The random number
        generator is left as it was, so a seeded run draws the same numbers either way."""
        with torch.random.fork_rng(devices=[]), torch.no_grad(), self.comparable(model):
            fast_logits = _logits(model, batch)
            self.exit(model)
            try:
                plain_logits = _logits(model, batch)
            finally:
                self.enter(model)
        return _difference(fast_logits, plain_logits)

    @contextlib.contextmanager
    def entered(self, model: nn.Module) -> Iterator[None]:
        """On in ``model`` for the length of a ``with`` block."""
        self.enter(model)
        try:
            yield
        finally:
            self.exit(model)


class FirstTokenOnly(SpeedUp):
    name = "first-token"
    summary = "the last encoder layer computes only the first token, which is all the head reads"
    in_prediction = True

    def applies(self, model: nn.Module, config: TrainConfig) -> bool:
        layers = first_token.encoder_layer_list(model)
        return layers is not None and first_token.fits(layers[-1])

    def active(self, model: nn.Module) -> bool:
        layers = first_token.encoder_layer_list(model)
        return layers is not None and isinstance(layers[-1], first_token.FirstTokenLayer)

    def enter(self, model: nn.Module) -> None:
        first_token.first_token_only(model)

    def exit(self, model: nn.Module) -> None:
        first_token.full_forward(model)


class FastDropoutMasks(SpeedUp):
    name = "fast-dropout"
    summary = "CPU dropout masks cut from 64-bit random words, in dropout modules and in attention"

    def applies(self, model: nn.Module, config: TrainConfig) -> bool:
        on_cpu = not (torch.cuda.is_available() or torch.backends.mps.is_available())
        return on_cpu and not self.active(model) and any(m.p > 0 for m in _plain_dropouts(model))

    def active(self, model: nn.Module) -> bool:
        return any(isinstance(m, fast.FastDropout) for m in model.modules())

    def enter(self, model: nn.Module) -> None:
        for parent in list(model.modules()):
            if isinstance(parent, fast.FastDropout):
                continue
            for child_name, child in list(parent.named_children()):
                if type(child) is nn.Dropout:
                    setattr(parent, child_name, fast.FastDropout(child))
        pretrained = _pretrained(model)
        if pretrained is not None and pretrained.config._attn_implementation == "sdpa":
            fast.register_fast_dropout_attention()
            pretrained.set_attn_implementation(fast.ATTENTION_NAME)

    def exit(self, model: nn.Module) -> None:
        for parent in list(model.modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, fast.FastDropout):
                    setattr(parent, child_name, child.plain)
        pretrained = _pretrained(model)
        if pretrained is not None and pretrained.config._attn_implementation == fast.ATTENTION_NAME:
            pretrained.set_attn_implementation("sdpa")

    @contextlib.contextmanager
    def comparable(self, model: nn.Module) -> Iterator[None]:
        """Training mode with every drop probability negligible: the fast masks and the
        explicit attention run, and must give what the plain forward gives."""
        dropouts = _plain_dropouts(model)
        saved = [m.p for m in dropouts]
        try:
            for module in dropouts:
                module.p = NEGLIGIBLE_DROPOUT if module.p > 0 else 0.0
            with _mode(model, training=True):
                yield
        finally:
            for module, p in zip(dropouts, saved, strict=True):
                module.p = p


class FrozenBottomCache(SpeedUp):
    """With ``--lora-layers``, the frozen layers below the adapters, served from a cache.

    The instance in :data:`SPEEDUPS` names the speed-up; the method that prepares the training
    data builds one around its cache (:func:`loralab.models.frozen_bottom.cache_bottom_layers`).
    Entered, the model reads rows of the cache where token ids were: ``input_ids[:, 0]`` is the
    row, the rest of the ids keep the batch's shape.
    """

    name = "frozen-bottom"
    summary = "with --lora-layers, the frozen layers below the adapters run once per text, then a cache"
    in_training_loop = False

    def __init__(self, stand_in: CachedBottom | None = None, frozen: int = 0) -> None:
        self.stand_in = stand_in
        self.frozen = frozen
        self._swap: contextlib.AbstractContextManager[None] | None = None

    def applies(self, model: nn.Module, config: TrainConfig) -> bool:
        return config.lora_layers is not None and frozen_layer_count(model, config.lora_layers) > 0

    def active(self, model: nn.Module) -> bool:
        return any(isinstance(m, CachedBottom) for m in model.modules())

    def enter(self, model: nn.Module) -> None:
        if self.stand_in is None:
            raise ValueError("the frozen-bottom speed-up needs its cache (cache_bottom_layers)")
        self._swap = bottom_swapped(model, self.stand_in, self.frozen)
        self._swap.__enter__()

    def exit(self, model: nn.Module) -> None:
        if self._swap is not None:
            swap, self._swap = self._swap, None
            swap.__exit__(None, None, None)

    def verify(self, model: nn.Module, batch: Batch) -> float:
        """``batch``: the token ids of the first texts of the cache, collated. The entered model
        reads their rows; the plain one computes them."""
        rows = dict(batch)
        rows["input_ids"] = batch["input_ids"].clone()
        rows["input_ids"][:, 0] = torch.arange(len(rows["input_ids"]))
        with torch.no_grad(), self.comparable(model):
            served = _logits(model, rows)
            self.exit(model)
            try:
                plain = _logits(model, batch)
            finally:
                self.enter(model)
        return _difference(served, plain)


SPEEDUPS: tuple[SpeedUp, ...] = (FirstTokenOnly(), FastDropoutMasks(), FrozenBottomCache())


def speedup_names() -> list[str]:
    """The names of :data:`SPEEDUPS`; the configuration checks ``--fast-paths`` against the same
    names, listed in :data:`loralab.config.SPEEDUP_NAMES` (which a test keeps equal)."""
    return [s.name for s in SPEEDUPS]


def check_names(names: Sequence[str]) -> list[str]:
    """``names`` if every one is a speed-up, else a :class:`LoralabError` naming those that exist."""
    checked = check_speedup_names(list(names))
    return speedup_names() if checked is None else checked


def chosen(config: TrainConfig) -> list[SpeedUp]:
    """The speed-ups ``config.fast_paths`` asks for (``None``: all of them)."""
    wanted = speedup_names() if config.fast_paths is None else config.fast_paths
    return [s for s in SPEEDUPS if s.name in wanted]


def is_chosen(config: TrainConfig, name: str) -> bool:
    """Whether ``config.fast_paths`` asks for the speed-up called ``name``."""
    return any(s.name == name for s in chosen(config))


def enter_fast_paths(
    model: nn.Module, config: TrainConfig, batch: Batch, *, prediction: bool = False
) -> list[SpeedUp]:
    """Enter every chosen speed-up of the loop that applies to ``model`` and verifies on
    ``batch``; return them (to pass to :func:`exit_fast_paths`). ``prediction`` keeps those
    that pay off there."""
    entered: list[SpeedUp] = []
    for speedup in chosen(config):
        if not speedup.in_training_loop or (prediction and not speedup.in_prediction):
            continue
        if speedup.applies(model, config) and enter_verified(speedup, model, batch):
            entered.append(speedup)
    return entered


def enter_verified(speedup: SpeedUp, model: nn.Module, batch: Batch) -> bool:
    """Enter ``speedup`` and keep it on if it verifies on ``batch``; otherwise take it out
    again with a :class:`FastPathWarning` saying why, and return ``False``."""
    # The errors a forward raises on an architecture a speed-up misjudged; anything else
    # is a bug and propagates.
    try:
        speedup.enter(model)
        difference = speedup.verify(model, batch)
        problem = (
            None
            if difference <= speedup.tolerance
            else f"its logits differ from the plain forward's by up to {difference:.3g} "
            f"(tolerance {speedup.tolerance:g})"
        )
    except (RuntimeError, TypeError, ValueError, AttributeError, IndexError) as err:
        problem = f"its forward failed ({type(err).__name__}: {err})"
    if problem is None:
        return True
    speedup.exit(model)
    switched_off(speedup, model, problem)
    return False


def switched_off(speedup: SpeedUp, model: nn.Module, problem: str) -> None:
    """Say, as a :class:`FastPathWarning`, that ``speedup`` is off for ``model`` and why."""
    warnings.warn(
        f"Fast path '{speedup.name}' is switched off for {type(model).__name__}: {problem}.",
        FastPathWarning,
        stacklevel=3,
    )


def exit_fast_paths(model: nn.Module, entered: Sequence[SpeedUp]) -> None:
    """Undo :func:`enter_fast_paths`, last entered first."""
    for speedup in reversed(entered):
        speedup.exit(model)


@contextlib.contextmanager
def fast_paths(model: nn.Module, config: TrainConfig, batch: Batch) -> Iterator[list[str]]:
    """Train with the chosen speed-ups on; yields the names of those on (for the run's
    manifest), including any that were on before. Only those entered here are undone."""
    entered = enter_fast_paths(model, config, batch)
    try:
        yield active_names(model)
    finally:
        exit_fast_paths(model, entered)


def prediction_fast_paths(model: nn.Module, config: TrainConfig) -> list[str]:
    """Enter the chosen speed-ups that pay off in prediction, verified on :func:`probe_batch`;
    they stay on. Returns the names of those on."""
    enter_fast_paths(model, config, probe_batch(model), prediction=True)
    return active_names(model)


def active_names(model: nn.Module) -> list[str]:
    return [s.name for s in SPEEDUPS if s.active(model)]


def probe_batch(model: nn.Module) -> Batch:
    """A small padded batch of random token ids, for verifying a model without its data."""
    generator = torch.Generator().manual_seed(0)
    config: Any = model.config
    vocab = int(config.vocab_size)
    input_ids = torch.randint(5, min(vocab, 1000), (3, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    attention_mask[2, 3:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def _plain_dropouts(model: nn.Module) -> list[nn.Dropout]:
    return [m for m in model.modules() if type(m) is nn.Dropout]


def _pretrained(model: nn.Module) -> Any:
    """The transformers model inside ``model`` (PEFT wraps it), if it has a settable attention."""
    unwrap = getattr(model, "get_base_model", None)  # PEFT's wrapper
    base: Any = unwrap() if callable(unwrap) else model
    return base if callable(getattr(base, "set_attn_implementation", None)) else None


def _difference(fast_logits: torch.Tensor, plain_logits: torch.Tensor) -> float:
    if fast_logits.shape != plain_logits.shape:
        return math.inf
    return float((fast_logits.float() - plain_logits.float()).abs().max())


def _logits(model: nn.Module, batch: Batch) -> torch.Tensor:
    device = next(model.parameters()).device
    output: Any = model(**{k: v.to(device) for k, v in batch.items()})
    logits: torch.Tensor = output.logits
    return logits


@contextlib.contextmanager
def _mode(model: nn.Module, *, training: bool) -> Iterator[None]:
    was_training = model.training
    model.train(training)
    try:
        yield
    finally:
        model.train(was_training)


def sample_batch(ids: Sequence[Sequence[int]], pad_id: int, size: int = 8) -> Batch:
    """Up to ``size`` of the token id lists ``ids``, spread from the shortest to the longest so
    that the batch is padded, collated like a training batch."""
    by_length = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    step = max(1, len(by_length) // size)
    batch: Batch = collate([ids[i] for i in by_length[::step][:size]], pad_id)
    return batch
