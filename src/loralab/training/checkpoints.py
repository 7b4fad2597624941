"""Checkpoints that let an interrupted training run continue where it stopped.

A checkpoint is a folder ``checkpoints/step-NNNNNNN`` holding Accelerate's state (model,
optimizer, scheduler and random-number generators, via ``Accelerator.save_state``), the
loop's own position and history (``loop.json``) and the best epoch's weights so far
(``best.safetensors``). It is written under a temporary name and renamed when complete, so
a process killed mid-write leaves the previous checkpoint intact; the last ``keep`` are kept.
Because the batch order of an epoch is a function of the seed and the epoch, and the random
generators are restored, a resumed run trains on exactly the batches it would have seen.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

LOOP_FILE = "loop.json"
BEST_FILE = "best.safetensors"
RNG_FILE = "rng-{}.safetensors"  # one per process
PREFIX = "step-"


@dataclass
class Checkpointing:
    folder: Path
    every_steps: int | None = None  # None: at the end of every epoch only
    resume: bool = False
    keep: int = 2


def latest(folder: Path) -> Path | None:
    found = sorted(p for p in Path(folder).glob(f"{PREFIX}*") if p.is_dir() and (p / LOOP_FILE).exists())
    return found[-1] if found else None


def save(
    accelerator,
    checkpointing: Checkpointing,
    step: int,
    loop_state: dict,
    best_state: dict[str, torch.Tensor] | None,
) -> Path:
    """Write a checkpoint; every process calls this (under DDP the writes are the main one's,
    and each process adds its own generator state)."""
    folder = Path(checkpointing.folder)
    final = folder / f"{PREFIX}{step:07d}"
    staging = folder / f".{final.name}.tmp"
    main = accelerator.is_main_process
    if main:
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging / "accelerate"), safe_serialization=True)
    staging.mkdir(parents=True, exist_ok=True)
    # The generator state at this exact step: creating a DataLoader iterator draws from the
    # global generator, so a resumed epoch restores it again once it is back at this batch.
    save_file({"torch": torch.get_rng_state()}, str(staging / RNG_FILE.format(accelerator.process_index)))
    accelerator.wait_for_everyone()
    if main:
        if best_state is not None:
            save_file({k: v.contiguous() for k, v in best_state.items()}, str(staging / BEST_FILE))
        (staging / LOOP_FILE).write_text(json.dumps(loop_state))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(staging, final)
        for old in sorted(p for p in folder.glob(f"{PREFIX}*") if p.is_dir())[: -checkpointing.keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(accelerator, path: Path) -> tuple[dict, dict[str, torch.Tensor] | None, torch.Tensor]:
    """Restore Accelerate's state; return the loop state, best weights and generator state."""
    accelerator.load_state(str(path / "accelerate"))
    state = json.loads((path / LOOP_FILE).read_text())
    best = load_file(str(path / BEST_FILE)) if (path / BEST_FILE).exists() else None
    return state, best, load_file(str(path / RNG_FILE.format(accelerator.process_index)))["torch"]
