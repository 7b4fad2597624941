"""Export a run and check the plain transformers folder against the run on a whole split.

    python benchmarks/export_check.py RUN ../shared/data/rotten_tomatoes/test.csv OUT

Loads OUT with ``pipeline("text-classification")`` (no loralab involved), classifies every
text of the CSV, and counts label disagreements with the run's own predictions.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run")
    parser.add_argument("data")
    parser.add_argument("out")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "loralab", "export", args.run, args.out, "--overwrite"], check=True)
    texts = pd.read_csv(args.data)["text"].astype(str).tolist()
    from transformers import pipeline

    from loralab.runs.train import load_run

    begin = time.perf_counter()
    classify = pipeline("text-classification", model=args.out, truncation=True)
    exported = [answer["label"] for answer in classify(texts, batch_size=64)]
    seconds = time.perf_counter() - begin
    classifier = load_run(args.run)
    own = classifier.predict(texts)
    result = {
        "run": args.run,
        "texts": len(texts),
        "label_disagreements": sum(a != b for a, b in zip(exported, own, strict=True)),
        "pipeline_seconds": round(seconds, 1),
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).with_name("results") / "export_check.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
