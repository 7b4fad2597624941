"""Grid sweeps: every point of a grid of training settings is an ordinary run folder.

``run_sweep`` trains the points that are not completed yet — so an interrupted sweep, run
again, redoes only what is missing — one after another in this process, or in up to ``jobs``
parallel ``loralab train`` processes with a fair share of the CPU threads each (every point
goes through :func:`loralab.runs.execute.execute` either way), and summarises the folder: one row per point
sorted by validation accuracy, the best configuration, and a heatmap over two axes. Selection
uses validation accuracy only; the test accuracy is reported for the chosen point.
"""

from __future__ import annotations

import ctypes
import dataclasses
import fcntl
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from loralab.config import TrainConfig
from loralab.errors import LoralabError, Terminated, closest, known_failure
from loralab.runs.execute import execute
from loralab.runs.folder import RunFolder, write_json

SWEEP_FILE = "sweep.json"
AXIS_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig) if f.name != "extra"}
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def coerce(name: str, text: str):
    if AXIS_FIELDS[name].metadata.get("keep_text"):  # the setting reads its own words
        return text
    kind = str(AXIS_FIELDS[name].type)
    if text.lower() == "none" and "None" in kind:
        return None
    try:
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
        if kind.startswith("bool"):
            if text.lower() in TRUE + FALSE:
                return text.lower() in TRUE
            raise ValueError
    except ValueError:
        expected = {"int": "an integer", "float": "a number", "bool": "true or false"}[kind.split(" ")[0]]
        raise LoralabError(f"grid value '{text}' for {name} is not {expected}.") from None
    if kind.startswith("list"):
        return [part for part in text.split("+") if part]
    return text


def parse_axes(specs: list[str]) -> dict[str, list]:
    """``["lora_rank=4,8,16", "lora_alpha=8,16"]`` → ``{"lora_rank": [4, 8, 16], ...}``.

    List-valued settings join their items with ``+`` (``target_modules=query+value,all-linear``).
    """
    axes: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise LoralabError(f"grid axis '{spec}' should look like name=value1,value2.")
        if name not in AXIS_FIELDS:
            raise LoralabError(
                f"'{name}' is not a training setting"
                + closest(name, sorted(AXIS_FIELDS))
                + f"; settings: {', '.join(sorted(AXIS_FIELDS))}."
            )
        if name in axes:
            raise LoralabError(f"grid axis {name} is given twice.")
        axes[name] = distinct(name, [coerce(name, v.strip()) for v in values.split(",")])
    if not axes:
        raise LoralabError("give at least one grid axis, e.g. --grid lora_rank=4,8,16.")
    return axes


def distinct(name: str, values: list) -> list:
    """``values`` without repeats (``lora_rank=4,4`` would train one point twice), with a note."""
    counts = Counter(_label(v) for v in values)
    repeated = [label for label, n in counts.items() if n > 1]
    if repeated:
        warnings.warn(
            f"{name}: {', '.join(repeated)} given more than once; each value is used once.", stacklevel=2
        )
    kept: dict[str, Any] = {}
    for value in values:
        kept.setdefault(_label(value), value)
    return list(kept.values())


def _label(value) -> str:
    """How a grid value appears in names and tables: ``8.0`` as ``8``, lists joined by ``+``."""
    if isinstance(value, list):
        return "+".join(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def point_name(point: dict) -> str:
    text = "_".join(f"{k}-{_label(v)}" for k, v in point.items())
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", text)


def grid_points(axes: dict[str, list]) -> list[dict]:
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


def _check_folder(folder: Path, spec: dict) -> None:
    path = folder / SWEEP_FILE
    if not path.exists():
        if folder.exists() and any(p for p in folder.iterdir() if not p.name.startswith(".")):
            raise LoralabError(f"{folder}: exists and is not a sweep folder; choose another --output-dir.")
        return
    previous = json.loads(path.read_text())
    changed = [k for k in spec if previous.get(k) != spec[k]]
    if changed:
        details = "; ".join(f"{k}: {previous.get(k)} → {spec[k]}" for k in changed)
        raise LoralabError(
            f"{folder}: holds a sweep with other settings ({details}); use another --output-dir."
        )


def _die_with_parent() -> None:
    # A sweep killed outright must not leave training processes behind (Linux).
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _interrupt(signum, frame) -> None:
    raise Terminated()  # SIGTERM stops a sweep the way Ctrl-C does


class _Launcher:
    """Runs ``loralab train`` processes and stops them all when the sweep is interrupted."""

    def __init__(self) -> None:
        self.processes: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.stopping = False

    def run(self, command: list[str], log: Path) -> int:
        with open(log, "w") as out:
            with self.lock:
                if self.stopping:
                    return -1
                process = subprocess.Popen(
                    command, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
                )
                self.processes.add(process)
            code = process.wait()
            with self.lock:
                self.processes.discard(process)
            return code

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            for process in self.processes:
                process.send_signal(signal.SIGINT)  # the run records itself as interrupted
        for process in list(self.processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def run_sweep(
    data: str,
    axes: dict[str, list],
    base: dict,
    folder: str | Path,
    *,
    jobs: int = 1,
    subset: int | None = None,
    text_col: str = "text",
    label_col: str = "label",
    on_point=None,
) -> dict:
    """Train every unfinished point of the grid into ``folder`` and return the summary."""
    folder = Path(folder)
    if jobs < 1:
        raise LoralabError(f"--jobs must be ≥ 1, got {jobs}.")
    points = grid_points(axes)
    for point in points:  # every point must be a valid configuration before anything starts
        TrainConfig.from_dict({**base, **point})
    spec = {
        "data": data,
        "grid": {k: [_label(v) for v in vs] for k, vs in axes.items()},
        "base": base,
        "subset": subset,
        "text_col": text_col,
        "label_col": label_col,
    }
    _check_folder(folder, spec)
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise LoralabError(f"{folder}: another sweep is writing into this folder.") from None
    write_json(folder / SWEEP_FILE, spec)
    (folder / "configs").mkdir(exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    threads = base.get("threads") or max(1, (os.cpu_count() or 1) // jobs)
    todo = [p for p in points if not RunFolder(folder / point_name(p)).is_completed()]
    launcher = _Launcher()

    def train_in_this_process(point: dict) -> tuple[dict, int]:
        name = point_name(point)
        settings = {**base, **point, "threads": threads}
        write_json(folder / "configs" / f"{name}.json", settings)
        log = folder / "logs" / f"{name}.log"
        try:
            execute(
                TrainConfig.from_dict(settings),
                data,
                folder / name,
                text_col=text_col,
                label_col=label_col,
                subset=subset,
                overwrite=True,
                progress=False,
            )
            log.write_text("completed\n")
            code = 0
        except Exception as err:  # a failed point is recorded, as a failed process is; the sweep goes on
            log.write_text(f"{type(err).__name__}: {err}\n")
            # The exit code `loralab train` would give: 2 for a user's mistake or a known
            # failure, 1 for a bug.
            code = LoralabError.exit_code if known_failure(err) is not None else 1
        if on_point:
            on_point(name, code)
        return point, code

    def train_in_a_subprocess(point: dict) -> tuple[dict, int]:
        name = point_name(point)
        config_path = folder / "configs" / f"{name}.json"
        write_json(config_path, {**base, **point, "threads": threads})
        command = [sys.executable, "-m", "loralab", "train", data, "--config", str(config_path)]
        command += ["--output-dir", str(folder / name), "--overwrite", "--text-col", text_col]
        command += ["--label-col", label_col] + (["--subset", str(subset)] if subset else [])
        code = launcher.run(command, folder / "logs" / f"{name}.log")
        if on_point:
            on_point(name, code)
        return point, code

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        # One job trains here, in the main thread, so Ctrl-C and SIGTERM reach the run.
        if jobs == 1:
            outcomes = [train_in_this_process(point) for point in todo]
        else:
            outcomes = list(pool.map(train_in_a_subprocess, todo))
    except KeyboardInterrupt:
        launcher.stop()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if main:
            signal.signal(signal.SIGTERM, previous)
        lock.close()
    failed = [point_name(p) for p, code in outcomes if code != 0]
    summary = summarise(folder)
    summary["trained"] = len(todo)
    summary["skipped"] = len(points) - len(todo)
    summary["failed"] = failed
    write_json(folder / "results.json", summary)
    return summary


def summarise(folder: str | Path) -> dict:
    """Rows (one per completed point, best validation accuracy first) and the best point."""
    folder = Path(folder)
    spec = json.loads((folder / SWEEP_FILE).read_text())
    axes = {k: [coerce(k, v) for v in vs] for k, vs in spec["grid"].items()}
    rows: list[dict[str, Any]] = []
    for point in grid_points(axes):
        name = point_name(point)
        run = folder / name
        row: dict[str, Any] = {"point": name, **{k: _label(v) for k, v in point.items()}, "status": "missing"}
        if RunFolder(run).exists():
            manifest = RunFolder(run).read_manifest()
            row["status"] = manifest.get("status")
            if RunFolder(run).is_completed():
                metrics = json.loads((run / "metrics.json").read_text())
                row.update(
                    validation_accuracy=metrics["validation"]["accuracy"],
                    test_accuracy=metrics["test"]["accuracy"],
                    train_seconds=manifest.get("train_seconds"),
                    trainable_parameters=manifest.get("trainable_parameters"),
                )
        rows.append(row)
    done = [r for r in rows if r["status"] == "completed"]
    done.sort(key=lambda r: -r["validation_accuracy"])
    rows = done + [r for r in rows if r["status"] != "completed"]
    best = done[0] if done else None
    return {"spec": spec, "axes": list(axes), "rows": rows, "best": best}
