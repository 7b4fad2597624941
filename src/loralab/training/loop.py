"""The training loop: explicit, on 🤗 Accelerate.

Accelerate owns device placement, mixed precision, gradient accumulation and DDP; the loop
owns what makes CPU training fast (tokenise once, length-bucketed batches, dynamic padding)
and the model selection (evaluate every epoch, keep the best, stop early).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed as accelerate_set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from loralab.config import TrainConfig
from loralab.data.batching import collate
from loralab.errors import LoralabError
from loralab.methods.base import class_weights
from loralab.methods.neural import TrainingData
from loralab.models.inference import autocast, predict_logits_from_ids
from loralab.models.speedups import fast_paths, sample_batch
from loralab.training import checkpoints as checkpoint_files
from loralab.training.batching import LengthBucketBatches
from loralab.training.checkpoints import Checkpointing
from loralab.training.precision import resolve_precision
from loralab.training.selection import cross_fitted_accuracy, cross_fitted_balanced_accuracy

# Scores of an epoch on the validation split from its logits ``(N, C)`` and class ids ``(N,)``:
# at least ``val_accuracy``, which chooses the best epoch. The evaluation layer provides them.
ValidationScores = Callable[[np.ndarray, np.ndarray], dict[str, float]]


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_validation_accuracy: float | None = None
    # The best epoch's accuracy on validation texts that did not choose it (see
    # loralab.training.selection): what the recommendation reads, free of the choice's optimism.
    crossfit_validation_accuracy: float | None = None
    crossfit_validation_balanced_accuracy: float | None = None  # the same choice, every class counted alike
    # Per epoch, whether each validation text was classified right (what cross-fitting reads).
    validation_correct: list[list[bool]] = field(default_factory=list)
    train_seconds: float = 0.0
    train_tokens: int = 0
    stopped_early: bool = False
    precision: str = "fp32"  # what the matrix products ran in (see loralab.training.precision)
    fast_paths: list[str] = field(default_factory=list)  # speed-ups used (loralab.models.speedups)


def cpu_only() -> bool:
    """No accelerator here. Accelerate then needs ``cpu=True`` to run DDP over gloo when
    launched by torchrun; on a GPU or Apple machine it picks the device itself."""
    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


def _accelerator(precision: str, **settings: Any) -> Any:
    """An ``Accelerator`` whose ``mixed_precision`` fits ``precision``. Only fp16 goes through
    Accelerate (it needs loss scaling); bf16 is a plain autocast around the forward pass, so
    evaluation and the trained model stay fp32. Accelerate keeps that setting for the whole
    process and refuses to change it, which it reports as a ``ValueError``."""
    mixed_precision = "fp16" if precision == "fp16" else "no"
    try:
        return Accelerator(mixed_precision=mixed_precision, **settings)
    except ValueError as err:
        if "already been initialized" not in str(err):
            raise
        raise LoralabError(
            f"--precision {precision}: this process already trained with Accelerate's mixed precision "
            "set otherwise, and Accelerate keeps one setting per process; train this model in a "
            "separate loralab command."
        ) from err


def set_seed(seed: int) -> None:
    accelerate_set_seed(seed)


def param_groups(
    model: nn.Module, weight_decay: float, lr: float, loraplus_lr_ratio: float | None = None
) -> list[dict]:
    """AdamW groups: biases and norm weights are not decayed (standard for transformers);
    with LoRA+ (Hayou et al., 2024) the B matrices learn ``loraplus_lr_ratio`` times faster."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim < 2 or "LayerNorm" in name or "norm" in name.lower()
        is_b = loraplus_lr_ratio is not None and "lora_B" in name
        groups.setdefault((no_decay, is_b), []).append(param)
    return [
        {
            "params": params,
            "weight_decay": 0.0 if no_decay else weight_decay,
            "lr": lr * ((loraplus_lr_ratio or 1.0) if is_b else 1.0),
        }
        for (no_decay, is_b), params in groups.items()
    ]


def is_better(row: dict, result: TrainResult) -> bool:
    """Whether this epoch's validation beats the best so far: higher accuracy, or the same
    accuracy at a lower loss. On a few validation texts accuracy is often level (1.0 from the
    first epoch), and keeping the first of equals kept an epoch-1 model whose probabilities
    had barely left 0.5 while the loss went on falling."""
    best = result.best_validation_accuracy
    if best is None or row["val_accuracy"] > best:
        return True
    if row["val_accuracy"] < best or result.best_epoch is None:
        return False
    kept = result.history[result.best_epoch - 1]
    return bool(row.get("val_loss", float("inf")) < kept.get("val_loss", float("inf")))


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def train_model(
    model: nn.Module,
    data: TrainingData,
    config: TrainConfig,
    *,
    lr: float,
    epochs: int,
    validation_scores: ValidationScores,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    checkpoints: Checkpointing | None = None,
    on_step: Callable[[dict, int], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data`` (token ids with class ids), return per-epoch history.

    With a validation split, every epoch is scored by ``validation_scores``, the best epoch's
    trainable weights are restored at the end, and ``config.patience`` epochs without
    improvement stop training.
    With ``checkpoints``, the state is saved every ``every_steps`` optimizer steps and at
    the end of each epoch; with ``checkpoints.resume`` training continues from the latest
    checkpoint (its finished epochs are passed to ``on_epoch`` again first). The speed-ups
    of :mod:`loralab.models.speedups` that ``config`` chooses are on while training.
    """
    with fast_paths(model, config, sample_batch(data.train_ids, data.pad_id)) as used:
        result = _train_model(
            model,
            data,
            config,
            lr=lr,
            epochs=epochs,
            validation_scores=validation_scores,
            progress=progress,
            on_epoch=on_epoch,
            checkpoints=checkpoints,
            on_step=on_step,
        )
    result.fast_paths = used
    return result


def _train_model(
    model: nn.Module,
    data: TrainingData,
    config: TrainConfig,
    *,
    lr: float,
    epochs: int,
    validation_scores: ValidationScores,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    checkpoints: Checkpointing | None = None,
    on_step: Callable[[dict, int], None] | None = None,
) -> TrainResult:
    if config.threads:
        torch.set_num_threads(config.threads)
    set_seed(config.seed)
    device = torch.device("cpu" if cpu_only() else "cuda" if torch.cuda.is_available() else "mps")
    precision = resolve_precision(config.precision, device)
    accelerator = _accelerator(precision, gradient_accumulation_steps=config.grad_accum_steps, cpu=cpu_only())
    progress = progress and accelerator.is_local_main_process
    train_ids, train_labels, validation = data.train_ids, data.train_labels, data.validation
    validation_labels = np.array(validation[1]) if validation is not None else np.zeros(0, dtype=np.int64)
    # --class-weight balanced: a rare class's texts weigh more in the loss (validation's stays plain).
    weights = class_weights(config, train_labels, max(train_labels) + 1)
    loss_weight = None if weights is None else torch.from_numpy(weights).float().to(accelerator.device)
    pad_id = data.pad_id
    assert config.batch_size is not None, "the method resolves the batch size before training"
    sampler = LengthBucketBatches([len(x) for x in train_ids], config.batch_size, config.seed)
    rows: Any = list(range(len(train_ids)))  # a list serves as a map-style dataset
    loader: DataLoader[dict[str, torch.Tensor]] = DataLoader(
        rows,
        batch_sampler=sampler,
        collate_fn=lambda idx: collate([train_ids[i] for i in idx], pad_id, [train_labels[i] for i in idx]),
    )
    optimizer = torch.optim.AdamW(
        param_groups(model, config.weight_decay, lr, config.loraplus_lr_ratio), lr=lr
    )
    steps_per_epoch = math.ceil(len(sampler) / config.grad_accum_steps)
    total_steps = steps_per_epoch * epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    trainable = [p for p in model.parameters() if p.requires_grad]

    result = TrainResult(precision=precision)
    best_state: dict[str, torch.Tensor] | None = None
    stale = 0
    # Where training stands; all of it goes into a checkpoint.
    at: dict[str, Any]
    at = {"epoch": 1, "batch": 0, "step": 0, "loss_sum": 0.0, "seen": 0, "tokens": 0, "epoch_seconds": 0.0}
    elapsed = 0.0
    resumed_from = checkpoint_files.latest(checkpoints.folder) if checkpoints and checkpoints.resume else None
    if resumed_from is not None:
        saved, best_state, resume_rng = checkpoint_files.load(accelerator, resumed_from)
        at, stale, elapsed = saved["at"], saved["stale"], saved["elapsed"]
        result.history, result.best_epoch = saved["history"], saved["best_epoch"]
        result.best_validation_accuracy, result.train_tokens = saved["best_accuracy"], saved["train_tokens"]
        # Written as one string of 0s and 1s per epoch (a JSON list of booleans is ~6× larger).
        result.validation_correct = [[c == "1" for c in row] for row in saved.get("validation_correct", [])]
        for row in result.history:
            if on_epoch is not None:
                on_epoch(row)
        if progress:
            tqdm.write(f"resuming from {resumed_from.name}: epoch {at['epoch']}, batch {at['batch']}")

    def checkpoint() -> None:
        assert checkpoints is not None
        state = {
            "at": at,
            "stale": stale,
            "elapsed": time.perf_counter() - start,
            "history": result.history,
            "best_epoch": result.best_epoch,
            "best_accuracy": result.best_validation_accuracy,
            "train_tokens": result.train_tokens,
            "validation_correct": [
                "".join("1" if c else "0" for c in row) for row in result.validation_correct
            ],
        }
        checkpoint_files.save(accelerator, checkpoints, at["step"], state, best_state)

    start = time.perf_counter() - elapsed
    for epoch in range(at["epoch"], epochs + 1):
        if result.stopped_early:
            break
        sampler.set_epoch(epoch - 1)
        # Accelerate's loader hands its batch sampler its own count of passes whenever it is
        # iterated; a resumed process starts that count at 0, so it is set to the epoch too.
        set_loader_epoch = getattr(loader, "set_epoch", None)
        if callable(set_loader_epoch):
            set_loader_epoch(epoch - 1)
        model.train()
        skip = at["batch"] if epoch == at["epoch"] else 0
        if not skip:
            at.update(epoch=epoch, batch=0, loss_sum=0.0, seen=0, tokens=0, epoch_seconds=0.0)
        epoch_start = time.perf_counter() - at["epoch_seconds"]
        loss_sum, seen, tokens = at["loss_sum"], at["seen"], at["tokens"]
        bar = tqdm(
            loader,
            desc=f"epoch {epoch}/{epochs}",
            unit="batch",
            disable=None if progress else True,
            leave=False,
            dynamic_ncols=True,
        )
        for index, batch in enumerate(bar):
            if index < skip:  # trained before the interruption
                continue
            if skip and index == skip:
                torch.set_rng_state(resume_rng)
            labels = batch.pop("labels")
            with accelerator.accumulate(model):
                with autocast(precision, device):
                    logits = model(**batch).logits
                loss = F.cross_entropy(logits.float(), labels, weight=loss_weight)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.item() * len(labels)
            seen += len(labels)
            tokens += int(batch["attention_mask"].sum())
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
            if accelerator.sync_gradients:
                at["step"] += 1
                if on_step is not None:
                    on_step({"train/loss": loss.item(), "train/lr": scheduler.get_last_lr()[0]}, at["step"])
            at.update(batch=index + 1, loss_sum=loss_sum, seen=seen, tokens=tokens)
            at["epoch_seconds"] = time.perf_counter() - epoch_start
            every = checkpoints.every_steps if checkpoints else None
            if every and accelerator.sync_gradients and at["step"] % every == 0 and index + 1 < len(loader):
                checkpoint()
        bar.close()
        seconds = time.perf_counter() - epoch_start
        result.train_tokens += tokens
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / max(seen, 1),
            "lr": scheduler.get_last_lr()[0],
            "epoch_seconds": seconds,
            "train_texts_per_second": seen / seconds if seconds else float("nan"),
            "step": at["step"],
        }
        if validation is not None and len(validation[0]):
            logits = predict_logits_from_ids(
                accelerator.unwrap_model(model), validation[0], pad_id, config.eval_batch_size
            )
            row.update(validation_scores(logits, validation_labels))
            result.validation_correct.append((logits.argmax(axis=1) == validation_labels).tolist())
            if is_better(row, result):
                result.best_validation_accuracy = row["val_accuracy"]
                result.best_epoch = epoch
                best_state = trainable_state(accelerator.unwrap_model(model))
                stale = 0
            else:
                stale += 1
        result.history.append(row)
        if config.patience is not None and stale >= config.patience:
            result.stopped_early = True
        at.update(epoch=epoch + 1, batch=0, loss_sum=0.0, seen=0, tokens=0, epoch_seconds=0.0)
        # The epoch is checkpointed before ``on_epoch`` sees it: a hook that stops the run (a
        # cancelled comparison, a pruned trial) leaves it resumable from this epoch's end.
        if checkpoints is not None and epoch < epochs and not result.stopped_early:
            checkpoint()
        if on_epoch is not None:
            try:
                on_epoch(row)
            except BaseException:
                if checkpoints is not None and epoch == epochs and not result.stopped_early:
                    checkpoint()  # stopped after the last epoch: resuming only restores the best
                raise
        if progress:
            shown = ", ".join(
                f"{k} {v:.4f}" for k, v in row.items() if k in ("train_loss", "val_loss", "val_accuracy")
            )
            tqdm.write(f"epoch {epoch}/{epochs}: {shown} ({seconds:.0f} s)")
    result.train_seconds = time.perf_counter() - start
    if validation is not None and len(result.validation_correct) == len(result.history) > 0:
        correct = np.array(result.validation_correct)
        result.crossfit_validation_accuracy = cross_fitted_accuracy(correct, validation_labels, config.seed)
        result.crossfit_validation_balanced_accuracy = cross_fitted_balanced_accuracy(
            correct, validation_labels, config.seed
        )
    unwrapped = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    if best_state is not None and result.best_epoch != len(result.history):
        if progress:
            tqdm.write(f"kept epoch {result.best_epoch} of {len(result.history)}: the best on validation")
        with torch.no_grad():
            params = dict(unwrapped.named_parameters())
            for name, value in best_state.items():
                params[name].copy_(value)
    unwrapped.eval()
    return result
