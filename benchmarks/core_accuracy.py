"""Train each neural method with its defaults on a shared data set through the CLI and
record test accuracy and wall time.

    python benchmarks/core_accuracy.py ../shared/data/rotten_tomatoes --methods lora,full,head

Writes ``benchmarks/results/core_accuracy-DATA.json`` and prints a Markdown table for docs/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data")
    parser.add_argument("--methods", default="lora,full,head")
    parser.add_argument("--extra", default="", help="Extra flags for loralab train.")
    args = parser.parse_args()
    name = Path(args.data.rstrip("/")).name
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            out = Path(tmp) / method
            command = ["loralab", "train", args.data, "--method", method, "--output-dir", str(out)]
            command += args.extra.split()
            start = time.perf_counter()
            subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            wall = time.perf_counter() - start
            metrics = json.loads((out / "metrics.json").read_text())
            manifest = json.loads((out / "manifest.json").read_text())
            rows.append(
                {
                    "method": method,
                    "command": " ".join(command[:5]),
                    "validation_accuracy": metrics["validation"]["accuracy"],
                    "test_accuracy": metrics["test"]["accuracy"],
                    "test_f1": metrics["test"]["f1"],
                    "trainable_parameters": manifest["trainable_parameters"],
                    "total_parameters": manifest["total_parameters"],
                    "train_seconds": manifest["train_seconds"],
                    "wall_seconds": wall,
                    "epochs": manifest["resolved"]["epochs"],
                    "lr": manifest["resolved"]["lr"],
                    "best_epoch": manifest["best_epoch"],
                }
            )
    result = {
        "data": args.data,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "rows": rows,
    }
    target = Path(__file__).parent / "results" / f"core_accuracy-{name}.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n")
    print("| method | epochs | lr | trainable | val acc | test acc | test F1 | train s | wall s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['method']} | {r['epochs']} | {r['lr']:g} | {r['trainable_parameters']:,} "
            f"({r['trainable_parameters'] / r['total_parameters']:.2%}) | {r['validation_accuracy']:.4f} "
            f"| {r['test_accuracy']:.4f} | {r['test_f1']:.4f} | {r['train_seconds']:.0f} "
            f"| {r['wall_seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
