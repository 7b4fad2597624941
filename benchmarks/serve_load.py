"""Load test of ``loralab serve`` on loopback: memory of one vs several runs, and throughput
and latency with and without micro-batching.

    python benchmarks/serve_load.py RUN [RUN ...] --texts ../shared/data/rotten_tomatoes/test.csv

For each ``--max-batch-wait`` value a fresh server serves every run; ``--clients`` threads,
each with its own keep-alive connection, send one-text classify requests to a random model
for ``--seconds``. Resident memory is read from the server process after start-up with the
first run alone and with all runs. Prints a Markdown table and writes JSON next to the script.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(runs: list[str], wait_ms: float, threads: int | None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [sys.executable, "-m", "loralab", "serve", *runs, "--port", str(port)]
    command += ["--max-batch-wait", str(wait_ms)] + (["--threads", str(threads)] if threads else [])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(process.stderr.read().decode())
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the server did not start within 300 s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=60)


def model_names(port: int) -> list[str]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("GET", "/v1/models")
    return [m["name"] for m in json.loads(connection.getresponse().read())["models"]]


def load(port: int, texts: list[str], clients: int, seconds: float, per_request: int) -> dict:
    names = model_names(port)
    latencies: list[float] = []
    errors = [0]
    texts_done = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < stop_at:
            body = json.dumps({"model": rng.choice(names), "texts": rng.sample(texts, per_request)})
            begin = time.perf_counter()
            try:
                connection.request("POST", "/v1/classify", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            elapsed = time.perf_counter() - begin
            with lock:
                if ok:
                    latencies.append(elapsed)
                    texts_done[0] += per_request
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - begin
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "seconds": round(wall, 1),
        "requests_per_second": round(len(latencies) / wall, 1),
        "texts_per_second": round(texts_done[0] / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
    }


def rss_mib(process: subprocess.Popen) -> float:
    return psutil.Process(process.pid).memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--texts", required=True, help="CSV with a text column to send.")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--waits", default="5,0", help="--max-batch-wait values to compare (ms).")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    texts = pd.read_csv(args.texts)["text"].astype(str).tolist()
    result: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}

    process, _ = start(args.runs[:1], 5, args.threads)
    one = rss_mib(process)
    stop(process)
    runs_memory = {"one_run_mib": round(one, 1)}
    for wait in [float(w) for w in args.waits.split(",")]:
        process, port = start(args.runs, wait, args.threads)
        runs_memory.setdefault("all_runs_mib", round(rss_mib(process), 1))
        result[f"wait_{wait:g}ms"] = load(port, texts, args.clients, args.seconds, args.texts_per_request)
        stop(process)
    runs_memory["runs"] = len(args.runs)
    runs_memory["ratio"] = round(runs_memory["all_runs_mib"] / runs_memory["one_run_mib"], 3)
    result["memory"] = runs_memory
    out = Path(__file__).with_name("results") / "serve_load.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print("\n| max batch wait | requests/s | texts/s | p50 ms | p99 ms | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for key, row in result.items():
        if key.startswith("wait_"):
            print(
                f"| {key[5:]} | {row['requests_per_second']} | {row['texts_per_second']} | {row['p50_ms']} "
                f"| {row['p99_ms']} | {row['errors']} |"
            )


if __name__ == "__main__":
    main()
