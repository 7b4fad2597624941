"""How big an inference batch should be on a CPU: ``loralab predict``'s texts/s and peak memory
at several token budgets per batch.

    python benchmarks/inference_batches.py RUN DATA [--limit 1000] [--threads 2] \
        [--budgets none,512,1024,2048] [--precision fp32,bf16] [--out FILE.json]

Scores the first ``--limit`` texts of DATA's test split with the run (adapters merged, sorted
batches of at most the run's ``eval_batch_size`` texts), with each batch also capped at
BUDGET × threads padded tokens (``none``: no cap, ``eval_batch_size`` texts whatever their
length). Each budget and precision runs in its own process, so its peak resident memory is its
own; the best of ``--repeats`` passes after a warm-up is kept.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def child(args: argparse.Namespace) -> None:
    import pandas as pd
    import torch

    from loralab.data import batching
    from loralab.runs.predict import load_for_prediction

    torch.set_num_threads(args.threads)
    # read by batching.token_budget at every call; "none" is a budget no batch reaches
    batching.TOKENS_PER_THREAD = 1 << 40 if args.budget == "none" else int(args.budget)
    texts = pd.read_csv(Path(args.data) / "test.csv")[args.text_col].astype(str).tolist()[: args.limit]
    classifier = load_for_prediction(Path(args.run), precision=args.precision)
    classifier.predict(texts[:16])
    best = float("inf")
    for _ in range(args.repeats):
        begin = time.perf_counter()
        classifier.predict(texts)
        best = min(best, time.perf_counter() - begin)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"texts_per_second": len(texts) / best, "peak_rss_mib": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("data")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budgets", default="none,512,1024,2048")
    parser.add_argument("--precision", default="fp32,bf16")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--budget", help=argparse.SUPPRESS)  # set in the child processes
    args = parser.parse_args()
    if args.budget is not None:
        child(args)
        return
    rows = []
    for precision in args.precision.split(","):
        for budget in args.budgets.split(","):
            command = [sys.executable, __file__, *sys.argv[1:], "--budget", budget, "--precision", precision]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            row = {
                "precision": precision,
                "tokens_per_thread": budget,
                **json.loads(done.stdout.splitlines()[-1]),
            }
            rows.append(row)
            print(
                f"{precision} {budget:>5} tokens/thread: {row['texts_per_second']:.1f} texts/s, "
                f"peak {row['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    if args.out:
        result = {"command": sys.argv, "threads": args.threads, "limit": args.limit, "rows": rows}
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
