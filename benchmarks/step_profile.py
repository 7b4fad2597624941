"""Where a LoRA training step's time goes on a CPU: matrix products against everything else.

    python benchmarks/step_profile.py ../shared/data/rotten_tomatoes [--subset 1500] \
        [--precision fp32,bf16] [--max-length 128] [--threads 1] [--out FILE.json]

One epoch of ``loralab train DATA --method lora`` with the settings of
``benchmarks/speed_vs_trainer.py`` (query/value targets, rank 8, batch 32), once per precision,
under ``torch.profiler``. Only the operators inside loralab's training loop are counted, and of
those not the epoch's validation pass (both marked with ``record_function``), so the table is
the training steps' alone (forward, backward, optimizer). Operators are grouped by what they
are; the share of matrix products bounds what any change outside them can gain: a step that
is 80 % matrix products is at most 1/0.8 times faster without the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

GROUPS = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm"),
    "attention softmax": (
        "aten::_softmax",
        "aten::_softmax_backward_data",
        "aten::masked_fill_",
        "aten::_scaled_dot_product_flash_attention_for_cpu",
        "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
    ),
    "dropout masks, products": ("aten::random_", "aten::ge", "aten::mul", "aten::mul_", "_Dropout"),
    "copies, casts": ("aten::copy_", "aten::_to_copy", "aten::empty", "aten::empty_strided"),
    "GELU": ("aten::gelu", "aten::gelu_backward"),
    "layer norm": ("aten::native_layer_norm", "aten::native_layer_norm_backward"),
}
TRAINING, VALIDATION = "loralab.training", "loralab.validation"


def group_of(name: str) -> str:
    return next((group for group, names in GROUPS.items() if name in names), "everything else")


def in_training_step(event) -> bool:
    """Inside the training loop and not inside its validation pass."""
    training = False
    while event is not None:
        if event.name == VALIDATION:
            return False
        training = training or event.name == TRAINING
        event = event.cpu_parent
    return training


def marked(function, label: str):
    from torch.profiler import record_function

    def run(*args, **kwargs):
        with record_function(label):
            return function(*args, **kwargs)

    return run


def profile_epoch(data: Path, precision: str, subset: int, max_length: int, threads: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from loralab.config import TrainConfig
    from loralab.runs.train import train_run

    torch.set_num_threads(threads)
    config = TrainConfig(
        method="lora",
        epochs=1,
        lr=1e-3,
        batch_size=32,
        lora_rank=8,
        lora_alpha=16,
        target_modules=["query", "value"],
        max_length=max_length,
        truncation="head",
        precision=precision,
        threads=threads,
    )
    with tempfile.TemporaryDirectory() as tmp, profile(activities=[ProfilerActivity.CPU]) as prof:
        run = train_run(data, config, Path(tmp) / "run", subset=subset, progress=False, evaluate_splits=())
    seconds: dict[str, float] = defaultdict(float)
    for event in prof.events():
        if in_training_step(event):
            seconds[group_of(event.name)] += event.self_cpu_time_total / 1e6
    total = sum(seconds.values())
    return {
        "precision": run.manifest["resolved"]["precision"],
        "profiled_seconds": total,
        "share": {group: seconds[group] / total for group in [*GROUPS, "everything else"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--subset", type=int, default=1500)
    parser.add_argument("--precision", default="fp32,bf16")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from loralab.training import loop

    # the loop and its per-epoch validation pass, marked so that only the steps are counted
    loop._train_model = marked(loop._train_model, TRAINING)
    loop.predict_logits_from_ids = marked(loop.predict_logits_from_ids, VALIDATION)
    results = [
        profile_epoch(args.data, precision, args.subset, args.max_length, args.threads)
        for precision in args.precision.split(",")
    ]
    groups = [*GROUPS, "everything else"]
    print("| precision | " + " | ".join(groups) + " |")
    print("| --- |" + " ---: |" * len(groups))
    for result in results:
        cells = " | ".join(f"{result['share'][group] * 100:.1f} %" for group in groups)
        print(f"| {result['precision']} | {cells} |")
    if args.out:
        args.out.write_text(json.dumps({"command": sys.argv, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
