"""Peak memory of ``loralab predict --input/--output`` against file size, and a kill + resume.

    python benchmarks/batch_scoring.py RUN --rows 20000,200000 \
        --texts ../shared/data/rotten_tomatoes/train.csv

Builds CSV files of the given row counts by repeating the texts, scores each in a separate
process while sampling its resident memory every 50 ms, then kills a scoring job of the
largest file half-way with SIGKILL and resumes it with ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil


def score(run: str, source: Path, target: Path, extra: list[str], kill_after_rows: int | None = None) -> dict:
    command = [
        sys.executable,
        "-m",
        "loralab",
        "predict",
        run,
        "--input",
        str(source),
        "--output",
        str(target),
    ]
    command += extra
    begin = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watched = psutil.Process(process.pid)
    peak = 0
    parts = target.parent / f".{target.name}.parts"
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        if kill_after_rows and len(list(parts.glob("0*.csv"))) * 4096 >= kill_after_rows:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return {
                "killed_after_parts": len(list(parts.glob("0*.csv"))),
                "peak_rss_mib": round(peak / 2**20),
            }
        time.sleep(0.05)
    if process.returncode != 0:
        raise SystemExit(process.stderr.read().decode())
    seconds = time.perf_counter() - begin
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(peak / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run")
    parser.add_argument("--rows", default="20000,200000")
    parser.add_argument("--texts", required=True)
    args = parser.parse_args()
    texts = pd.read_csv(args.texts)["text"].astype(str)
    result: dict = {"run": args.run, "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [int(n) for n in args.rows.split(",")]
        for n in sizes:
            source = Path(tmp) / f"in-{n}.csv"
            repeated = pd.DataFrame({"id": range(n), "text": [texts.iloc[i % len(texts)] for i in range(n)]})
            repeated.to_csv(source, index=False)
            measured = score(args.run, source, Path(tmp) / f"out-{n}.csv", [])
            measured["rows_per_second"] = round(n / measured["seconds"])
            result["sizes"][n] = measured
            print(n, measured, flush=True)
        n = sizes[-1]
        source, target = Path(tmp) / f"in-{n}.csv", Path(tmp) / f"resumed-{n}.csv"
        killed = score(args.run, source, target, [], kill_after_rows=n // 2)
        resumed = score(args.run, source, target, ["--resume"])
        rows = sum(1 for _ in open(target, encoding="utf-8")) - 1
        result["kill_and_resume"] = {"killed": killed, "resumed": resumed, "rows_in_output": rows}
        print(result["kill_and_resume"], flush=True)
    out = Path(__file__).with_name("results") / "batch_scoring.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
