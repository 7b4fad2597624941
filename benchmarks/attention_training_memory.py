"""What attention dropout costs a training step on a CPU, in memory and time, as inputs grow.

    python benchmarks/attention_training_memory.py [--lengths 128,256,512] [--batch 16]

One training step (forward, cross-entropy, backward) of the embedded MiniLM for sequence
classification on a batch of random token ids, each configuration in a fresh process so that
its peak resident memory is its own:

- ``sdpa, dropout 0.1``: transformers' default attention with the model's own attention
  dropout. On a CPU, PyTorch's fused kernels take no dropout, so SDPA falls back to the
  explicit softmax and keeps the (batch × heads × T × T) probabilities for the backward pass.
- ``loralab, dropout 0.1``: loralab's fast-dropout attention (:mod:`loralab.models.fast`, the
  ``fast-dropout`` speed-up), the same explicit softmax with cheaper dropout masks.
- ``sdpa, dropout 0``: the fused kernel, nothing of size T × T kept.

Prints the peak RSS of the process after the step, its growth during the step, and the
step's wall time (one thread; on a shared machine the times are upper bounds, the memory is not).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CONFIGS = (("sdpa", 0.1), ("loralab", 0.1), ("sdpa", 0.0))


def one_step(length: int, batch: int, implementation: str, dropout: float) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification

    from loralab.models import fast
    from loralab.models.loading import quiet_transformers, resolve_model

    torch.set_num_threads(1)
    quiet_transformers()
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_model("minilm"),
        num_labels=2,
        attn_implementation="sdpa",
        attention_probs_dropout_prob=dropout,
    )
    if implementation == "loralab":
        fast.register_fast_dropout_attention()
        model.set_attn_implementation(fast.ATTENTION_NAME)
    model.train()
    generator = torch.Generator().manual_seed(length)
    input_ids = torch.randint(1000, model.config.vocab_size, (batch, length), generator=generator)
    labels = torch.zeros(batch, dtype=torch.long)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    begin = time.perf_counter()
    loss = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=labels).loss
    loss.backward()
    seconds = time.perf_counter() - begin
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "length": length,
        "batch": batch,
        "attention": implementation,
        "attention_dropout": dropout,
        "peak_rss_mib": peak / 1024,
        "step_growth_mib": (peak - before) / 1024,
        "step_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="128,256,512")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # LENGTH,IMPLEMENTATION,DROPOUT: run in this process
    args = parser.parse_args()
    if args.one:
        length, implementation, dropout = args.one.split(",")
        print(json.dumps(one_step(int(length), args.batch, implementation, float(dropout))))
        return
    rows = []
    for length in args.lengths.split(","):
        for implementation, dropout in CONFIGS:
            command = [sys.executable, __file__, "--batch", str(args.batch), "--one"]
            done = subprocess.run(
                [*command, f"{length},{implementation},{dropout}"], capture_output=True, text=True
            )
            if done.returncode:
                sys.exit(
                    f"{length} tokens, {implementation}, dropout {dropout}: {done.stderr.strip()[-400:]}"
                )
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"batch {args.batch}, one thread")
    print("| T | attention | attention dropout | peak RSS MiB | step growth MiB | step s |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['length']} | {r['attention']} | {r['attention_dropout']:g} | {r['peak_rss_mib']:,.0f} "
            f"| {r['step_growth_mib']:,.0f} | {r['step_seconds']:.1f} |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
