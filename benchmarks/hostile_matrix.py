"""A matrix of hostile inputs and faults run against the real CLI and the real HTTP server.

    python benchmarks/hostile_matrix.py [--json results/hostile_matrix.json]

CLI cases run the ``loralab`` Typer app in process (the same entry point as the console
script, with stdout and stderr captured) so that ~200 cases take minutes, not an hour of
interpreter start-ups; the cases that need a real process — SIGTERM, SIGKILL, two writers at
once — run ``python -m loralab`` as subprocesses. Server cases send raw HTTP to ``loralab
serve`` started as a subprocess. Runs are tiny: TF-IDF runs and LoRA on a random 2-layer BERT.
Full disks and read-only folders are real tmpfs mounts when the script runs as root, and
are skipped (and counted as skipped) otherwise.

Each case is tallied for: a traceback shown to the user; exit code 0 although the command
had to fail; a server answer of 5xx; a protected file (an existing run, an output, the
input) changed or lost. A case passes when none of these happens and it succeeded or failed
as expected. Prints the tally and the failing cases, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.conftest: tiny models, data

from typer.testing import CliRunner  # noqa: E402

from loralab.cli import app  # noqa: E402
from tests.conftest import build_base_model, synthetic_frame  # noqa: E402

runner = CliRunner()


@dataclass
class Case:
    group: str
    name: str
    args: list | Callable[[], tuple[int, str]]
    fails: bool = True  # the command is expected to refuse
    protect: list[Path] = field(default_factory=list)
    skip: str | None = None


@dataclass
class Outcome:
    case: Case
    code: int | None
    traceback: bool
    zero_on_failure: bool
    server_5xx: bool
    lost: list[str]
    output: str

    @property
    def ok(self) -> bool:
        expected = self.code != 0 if self.case.fails else self.code == 0
        return expected and not (self.traceback or self.zero_on_failure or self.server_5xx or self.lost)


def digest(paths: list[Path]) -> dict[str, str]:
    out = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if path.name.endswith(".lock"):
                continue
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_cli(args: list) -> tuple[int, str, bool]:
    result = runner.invoke(app, [str(a) for a in args])
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    return result.exit_code, result.output, escaped


def run_case(case: Case) -> Outcome:
    before = digest(case.protect)
    try:
        if callable(case.args):
            code, output = case.args()
            escaped = False
        else:
            code, output, escaped = run_cli(case.args)
    except Exception as error:  # the matrix's own failure: counted as not as expected
        code, output, escaped = None, f"the case itself failed: {error!r}", False
    after = digest(case.protect)
    lost = sorted(k for k in before if after.get(k) != before[k])
    traceback = escaped or "Traceback (most recent call last)" in output
    return Outcome(
        case,
        code,
        traceback,
        zero_on_failure=case.fails and code == 0,
        server_5xx=code is not None and code >= 500 and case.group == "server",
        lost=lost,
        output=output[-600:],
    )


# --- the world the cases run in -----------------------------------------------------------------


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.data.mkdir()
        synthetic_frame(80, 1).to_csv(self.data / "train.csv", index=False)
        synthetic_frame(20, 2).to_csv(self.data / "validation.csv", index=False)
        synthetic_frame(20, 3).to_csv(self.data / "test.csv", index=False)
        self.model = build_base_model(root / "tiny-bert")
        self.tfidf = self.train("tfidf", "-m", "tfidf-logreg")
        self.tfidf_other = self.train("tfidf-other", "-m", "tfidf-logreg", "--baseline-c", "0.1")
        self.lora = self.train("lora", "-m", "lora", "--model", self.model, "--epochs", "1")
        self.n = 0

    def train(self, name: str, *args) -> Path:
        out = self.root / "runs" / name
        code, output, _ = run_cli(["train", self.data, *args, "-o", out])
        assert code == 0, output
        return out

    def fresh(self, label: str) -> Path:
        self.n += 1
        folder = self.root / "cases" / f"{self.n:03d}-{label}"
        folder.mkdir(parents=True)
        return folder

    def copy_run(self, run: Path, label: str) -> Path:
        target = self.fresh(label) / run.name
        shutil.copytree(run, target)
        return target


def data_files(folder: Path) -> dict[str, Path]:
    """Hostile data files, by name."""
    good = synthetic_frame(60, 5)
    csv_text = good.to_csv(index=False)
    files: dict[str, bytes | str] = {
        "empty.csv": b"",
        "header-only.csv": "text,label\n",
        "binary.csv": os.urandom(2000),
        "latin1.csv": "text,label\n" + "\n".join(f"caf\xe9 good {i},positive" for i in range(30)),
        "utf16.csv": csv_text,
        "truncated.csv.gz": gzip.compress(csv_text.encode())[:300],
        "truncated.csv.bz2": bz2.compress(csv_text.encode())[:300],
        "not-gzip.csv.gz": csv_text,
        "duplicate-label.csv": "text,label,label\n"
        + "\n".join(f"good {i},positive,negative" for i in range(30)),
        "duplicate-text.csv": "text,text,label\n" + "\n".join(f"a {i},b,positive" for i in range(30)),
        "no-text-column.csv": good.rename(columns={"text": "review"}).to_csv(index=False),
        "no-label-column.csv": good.rename(columns={"label": "bias"}).to_csv(index=False),
        "single-class.csv": good.assign(label="positive").to_csv(index=False),
        "all-empty-text.csv": good.assign(text="   ").to_csv(index=False),
        "ragged.csv": "text,label\n" + "\n".join(f"good {i},positive,extra,more" for i in range(30)),
        "nul-bytes.csv": csv_text.replace("good", "go\x00od"),
        "unsupported.xlsx": b"PK\x03\x04 not really",
        "not-json.json": "{ this is not json",
        "bad-line.jsonl": good.to_json(orient="records", lines=True) + "{ broken\n",
        "surrogate.jsonl": '{"text": "caf\\udce9", "label": "positive"}\n' * 30,
        "nulls.jsonl": '{"text": null, "label": "positive"}\n{"label": "negative"}\n' * 15,
        "garbage.parquet": os.urandom(500),
        "three-rows.csv": "text,label\ngood,positive\nbad,negative\nfine,positive\n",
        "whitespace-rows.csv": "text,label\n"
        + "\n".join(
            ("   " if i % 3 else f"good {i}") + f",{('positive', 'negative')[i % 2]}" for i in range(60)
        ),
        "bom-crlf.csv": "\ufeff" + csv_text.replace("\n", "\r\n"),
        "huge-cell.csv": "text,label\n" + "good " * 200_000 + ",positive\n" + "bad,negative\n" * 30,
        "unicode-columns.csv": good.rename(columns={"text": "téxt 🙂"}).to_csv(index=False),
        "quoted-newlines.csv": "text,label\n"
        + "\n".join(f'"good\nfilm {i}",{("positive", "negative")[i % 2]}' for i in range(30)),
    }
    paths = {}
    for name, content in files.items():
        path = folder / name
        if name == "utf16.csv":
            path.write_bytes(content.encode("utf-16"))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="latin-1" if name == "latin1.csv" else "utf-8")
        paths[name] = path
    (folder / "a-folder.csv").mkdir()
    paths["a-folder.csv"] = folder / "a-folder.csv"
    paths["missing.csv"] = folder / "missing.csv"
    return paths


# Files whose content is legitimate: scoring them must succeed (and training, when it can).
SCORABLE = {
    "bom-crlf.csv",
    "huge-cell.csv",
    "whitespace-rows.csv",
    "nulls.jsonl",
    "three-rows.csv",
    "quoted-newlines.csv",
    "no-label-column.csv",
    "single-class.csv",
    "all-empty-text.csv",
    "header-only.csv",
    "ragged.csv",
    "nul-bytes.csv",
}
TRAINABLE = {"bom-crlf.csv", "huge-cell.csv", "whitespace-rows.csv", "quoted-newlines.csv", "nul-bytes.csv"}


def data_cases(world: World) -> list[Case]:
    folder = world.fresh("data")
    cases = []
    for name, path in data_files(folder).items():
        protect = [path] if path.is_file() else []
        out = world.fresh("train") / "run"
        cases.append(
            Case(
                "data",
                f"train {name}",
                ["train", path, "-m", "tfidf-logreg", "-o", out],
                fails=name not in TRAINABLE,
                protect=protect,
            )
        )
        target = world.fresh("predict") / "scored.csv"
        cases.append(
            Case(
                "data",
                f"predict -i {name}",
                ["predict", world.tfidf, "-i", path, "-o", target],
                fails=name not in SCORABLE or name == "header-only.csv",
                protect=protect,
            )
        )
        cases.append(
            Case(
                "data",
                f"evaluate {name}",
                ["evaluate", world.tfidf, path],
                fails=name not in TRAINABLE | {"three-rows.csv", "single-class.csv"},
                protect=protect,
            )
        )
        cases.append(
            Case(
                "data",
                f"data inspect {name}",
                ["data", "inspect", path],
                fails=name not in TRAINABLE | {"three-rows.csv"},
                protect=protect,
            )
        )
    return cases


def flag_cases(world: World) -> list[Case]:
    def train(*args, fails=True, method=("-m", "tfidf-logreg")):
        out = world.fresh("flag") / "run"
        return ["train", world.data, *method, *args, "-o", out], fails

    lora = ("-m", "lora", "--model", world.model, "--epochs", "1")
    configs = {
        "lr-fast": {"lr": "fast"},
        "epochs-float": {"epochs": 2.5},
        "rank-list": {"lora_rank": [4]},
        "dora-string": {"use_dora": "yes"},
        "unknown-key": {"lora_rnak": 4},
        "not-object": [1, 2],
    }
    specs: dict[str, tuple[list, bool]] = {
        "--max-length 100000 (capped, said)": train("--max-length", "100000", fails=False, method=lora),
        "--max-length 0": train("--max-length", "0"),
        "--lr -1": train("--lr", "-1", method=lora),
        "--lr fast": train("--lr", "fast", method=lora),
        "--epochs 0": train("--epochs", "0", method=lora),
        "--batch-size 0": train("--batch-size", "0", method=lora),
        "--lora-rank 0": train("--lora-rank", "0", method=lora),
        "--lora-rank 10000": train("--lora-rank", "10000", method=lora),
        "--lora-dropout 1.5": train("--lora-dropout", "1.5", method=lora),
        "--method nope": train(method=("-m", "nope")),
        "--model missing folder": train(method=("-m", "lora", "--model", world.root / "no-model")),
        "--model unknown hub name": train(method=("-m", "lora", "--model", "no-such-org/no-such-model")),
        "--target-modules nothing": train("--target-modules", "nothing", method=lora),
        "--precision weird": train("--precision", "weird", method=lora),
        "--text-col = --label-col": train("--text-col", "label", "--label-col", "label"),
        "--subset 1": train("--subset", "1"),
        "--report-to nope": train("--report-to", "nope"),
        "--resume without -o": (["train", world.data, "-m", "tfidf-logreg", "--resume"], True),
    }
    for name, settings in configs.items():
        path = world.fresh("config") / "config.json"
        path.write_text(json.dumps(settings))
        specs[f"--config {name}"] = train("--config", path)
    broken = world.fresh("config") / "broken.json"
    broken.write_text("{ nope")
    specs["--config invalid JSON"] = train("--config", broken)
    specs["--config missing file"] = train("--config", world.root / "nope.json")
    bad_model = world.fresh("model") / "model"
    shutil.copytree(world.model, bad_model)
    (bad_model / "config.json").write_text("{ not json")
    specs["--model folder with broken config.json"] = train(method=("-m", "lora", "--model", bad_model))
    source = world.fresh("predict") / "in.csv"
    synthetic_frame(10).to_csv(source, index=False)
    for name, extra in {
        "--chunk-size 0": ["--chunk-size", "0"],
        "--chunk-size -1": ["--chunk-size", "-1"],
        "--batch-size 0": ["--batch-size", "0"],
        "--backend weird": ["--backend", "weird"],
        "--int8 without onnx": ["--int8"],
        "--text-col missing": ["--text-col", "nope"],
        "--precision bf16 on tfidf": ["--precision", "bf16"],
    }.items():
        out = world.fresh("predict") / "out.csv"
        specs[f"predict {name}"] = (["predict", world.tfidf, "-i", source, "-o", out, *extra], True)
    specs["predict non-Unicode text"] = (["predict", world.lora, "caf\udce9"], True)
    specs["predict long text on LoRA run"] = (["predict", world.lora, "good " * 5000], False)
    # Without --output the scored rows go to stdout as CSV: a success.
    specs["predict --input without --output (CSV to stdout)"] = (
        ["predict", world.tfidf, "-i", source],
        False,
    )
    specs["predict no texts"] = (["predict", world.tfidf], True)
    specs["predict on a data folder"] = (["predict", world.data, "good"], True)
    specs["export without its extra flag pairing (--int8)"] = (
        ["export", world.tfidf, world.fresh("export") / "out", "--int8"],
        True,
    )
    specs["serve --max-texts 0"] = (["serve", world.tfidf, "--max-texts", "0"], True)
    specs["serve a missing run"] = (["serve", world.root / "nope"], True)
    specs["serve a bad NAME=PATH name"] = (["serve", f"../x={world.tfidf}"], True)
    return [Case("flags", name, args, fails=fails, protect=[source]) for name, (args, fails) in specs.items()]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage_cases(world: World) -> list[Case]:
    def forget_sizes(run: Path) -> None:
        manifest = json.loads((run / "manifest.json").read_text())
        manifest.pop("model_files", None)
        (run / "manifest.json").write_text(json.dumps(manifest))

    damage = {
        "truncated adapter": ("lora", "model/adapter_model.safetensors", _truncate, False),
        "deleted adapter": ("lora", "model/adapter_model.safetensors", Path.unlink, False),
        "truncated adapter (no sizes)": ("lora", "model/adapter_model.safetensors", _truncate, True),
        "deleted adapter (no sizes)": ("lora", "model/adapter_model.safetensors", Path.unlink, True),
        "truncated loralab.json": ("lora", "model/loralab.json", _truncate, True),
        "truncated adapter_config.json": ("lora", "model/adapter_config.json", _truncate, True),
        "truncated tokenizer.json": ("lora", "model/tokenizer.json", _truncate, True),
        "truncated baseline.safetensors": ("tfidf", "model/baseline.safetensors", _truncate, True),
        "truncated baseline.json": ("tfidf", "model/baseline.json", _truncate, True),
        "truncated manifest.json": ("tfidf", "manifest.json", _truncate, False),
        "deleted manifest.json": ("tfidf", "manifest.json", Path.unlink, False),
        "deleted model/": ("tfidf", "model", shutil.rmtree, False),
    }
    cases = []
    for name, (kind, file, how, old) in damage.items():
        run = world.copy_run(world.lora if kind == "lora" else world.tfidf, "damaged")
        if old:
            forget_sizes(run)
        how(run / file)
        earlier = world.fresh("export") / "earlier"
        earlier.mkdir()
        (earlier / "keep.txt").write_text("an earlier export")
        for command in (
            ["predict", run, "good film"],
            ["export", run, world.fresh("export") / "out"],
            ["export", run, earlier, "--overwrite"],
            ["evaluate", run, world.data],
        ):
            cases.append(
                Case(
                    "damaged runs",
                    f"{' '.join(map(str, command[:1] + command[3:]))} — {name}",
                    command,
                    protect=[earlier],
                )
            )
    return cases


def output_cases(world: World) -> list[Case]:
    source = world.fresh("outputs") / "in.csv"
    synthetic_frame(30).to_csv(source, index=False)
    unrelated = source.parent / "notes.csv"
    unrelated.write_text("precious\n")
    metrics = source.parent / "metrics.json"
    metrics.write_text('{"mine": 1}')
    existing = world.copy_run(world.tfidf, "existing")
    interrupted = world.copy_run(world.tfidf, "interrupted")
    manifest = json.loads((interrupted / "manifest.json").read_text())
    (interrupted / "manifest.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    a_file = source.parent / "a-file"
    a_file.write_text("not a folder")
    cases = [
        Case(
            "outputs",
            "predict -o an unrelated existing file",
            ["predict", world.tfidf, "-i", source, "-o", unrelated],
            protect=[unrelated, source],
        ),
        Case(
            "outputs",
            "predict -o the input itself",
            ["predict", world.tfidf, "-i", source, "-o", source],
            protect=[source],
        ),
        Case(
            "outputs",
            "predict -o the input itself --overwrite",
            ["predict", world.tfidf, "-i", source, "-o", source, "--overwrite"],
            protect=[source],
        ),
        Case(
            "outputs",
            "evaluate --output an existing file",
            ["evaluate", world.tfidf, world.data, "--output", metrics],
            protect=[metrics],
        ),
        Case(
            "outputs",
            "train -o an existing run",
            ["train", world.data, "-m", "tfidf-logreg", "-o", existing],
            protect=[existing],
        ),
        Case(
            "outputs",
            "train -o an interrupted run",
            ["train", world.data, "-m", "tfidf-logreg", "-o", interrupted],
            protect=[interrupted],
        ),
        Case(
            "outputs",
            "train -o a file",
            ["train", world.data, "-m", "tfidf-logreg", "-o", a_file],
            protect=[a_file],
        ),
        Case(
            "outputs",
            "train -o an existing run --overwrite, bad column",
            ["train", world.data, "-m", "tfidf-logreg", "--text-col", "nope", "-o", existing, "--overwrite"],
            protect=[existing],
        ),
        Case(
            "outputs",
            "train -o an existing run --overwrite, bad model",
            [
                "train",
                world.data,
                "-m",
                "lora",
                "--model",
                world.root / "nope",
                "-o",
                existing,
                "--overwrite",
            ],
            protect=[existing],
        ),
        Case(
            "outputs",
            "train --resume a completed run",
            ["train", world.data, "-m", "tfidf-logreg", "-o", existing, "--resume"],
            protect=[existing],
        ),
        Case(
            "outputs",
            "predict -o a deep new folder (works)",
            ["predict", world.tfidf, "-i", source, "-o", source.parent / "a" / "b" / "out.csv"],
            fails=False,
            protect=[source],
        ),
    ]
    return cases + mount_cases(world, source, existing) + resume_case(world, source)


def _mount(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )


def mount_cases(world: World, source: Path, existing: Path) -> list[Case]:
    big = world.fresh("big") / "big.csv"
    synthetic_frame(4000).assign(text=lambda f: f.text * 10).to_csv(big, index=False)
    read_only, small, full = world.root / "mnt-ro", world.root / "mnt-small", world.root / "mnt-full"
    mounted = [
        m for m, o in ((read_only, "size=1m,ro"), (small, "size=64k"), (full, "size=2m")) if _mount(m, o)
    ]
    world.mounts = mounted
    skip = None if len(mounted) == 3 else "needs root to mount tmpfs"
    if skip is None:  # a completed run on a disk that is then filled up, to be overwritten
        shutil.copytree(world.tfidf, full / "run")
        try:  # fill the disk; the last flush, on close, fails too
            with open(full / "filler", "wb") as filler:
                while True:
                    filler.write(b"\0" * 4096)
                    filler.flush()
        except OSError:
            pass
    cases = [
        Case(
            "disks",
            "predict -o on a read-only folder",
            ["predict", world.tfidf, "-i", source, "-o", read_only / "o.csv"],
        ),
        Case(
            "disks",
            "train -o on a read-only folder",
            ["train", world.data, "-m", "tfidf-logreg", "-o", read_only / "r"],
        ),
        Case(
            "disks",
            "evaluate --output on a read-only folder",
            ["evaluate", world.tfidf, world.data, "--output", read_only / "m.json"],
        ),
        Case("disks", "export to a read-only folder", ["export", world.tfidf, read_only / "export"]),
        Case(
            "disks", "predict -o on a full disk", ["predict", world.tfidf, "-i", big, "-o", small / "o.csv"]
        ),
        Case(
            "disks",
            "train -o on a full disk",
            ["train", world.data, "-m", "lora", "--model", world.model, "--epochs", "1", "-o", small / "new"],
        ),
        Case(
            "disks",
            "train --overwrite a run on a full disk",
            [
                "train",
                world.data,
                "-m",
                "lora",
                "--model",
                world.model,
                "--epochs",
                "1",
                "-o",
                full / "run",
                "--overwrite",
            ],
            protect=[full / "run"],
        ),
        Case("disks", "export to a full disk", ["export", world.lora, small / "export"]),
    ]
    for case in cases:
        case.skip = skip
    return cases


def resume_case(world: World, source: Path) -> list[Case]:
    out = world.fresh("resume") / "out.csv"

    def interrupted_then_resumed_with_another_run() -> tuple[int, str]:
        import loralab.runs.predict as predict

        original, calls = predict._write_part, {"n": 0}

        def stop_after_one(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] > 1:
                raise KeyboardInterrupt
            return original(*args, **kwargs)

        predict._write_part = stop_after_one
        try:
            run_cli(["predict", world.tfidf, "-i", source, "-o", out, "--chunk-size", "10"])
        finally:
            predict._write_part = original
        code, output, escaped = run_cli(
            ["predict", world.tfidf_other, "-i", source, "-o", out, "--chunk-size", "10", "--resume"]
        )
        return code, output + ("\nTraceback (most recent call last)" if escaped else "")

    return [Case("outputs", "predict --resume with another run", interrupted_then_resumed_with_another_run)]


# --- real processes --------------------------------------------------------------------------------


def loralab(*args) -> list[str]:
    return [sys.executable, "-m", "loralab", *map(str, args)]


def process_cases(world: World) -> list[Case]:
    def training(run: Path) -> subprocess.Popen:
        command = loralab(
            "train", world.data, "-m", "lora", "--model", world.model, "--epochs", "300", "-o", run
        )
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 180
        while not (run / "history.csv").exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        return process

    def sigterm() -> tuple[int, str]:
        run = world.fresh("sigterm") / "run"
        process = training(run)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
        status = json.loads((run / "manifest.json").read_text())["status"]
        # Success here is exit 143 with the run recorded as interrupted.
        ok = code == 143 and status == "interrupted"
        return (1 if ok else 0), process.stderr.read() + f"\nexit {code}, status {status}"

    def sigkill_then_predict() -> tuple[int, str]:
        run = world.fresh("sigkill") / "run"
        process = training(run)
        process.kill()
        process.wait(timeout=60)
        code, output, _ = run_cli(["predict", run, "good"])
        return code, output + ("" if "'stale'" in output else "\n(stale run not recognised)")

    def two_trains(flag: str) -> Callable[[], tuple[int, str]]:
        def both() -> tuple[int, str]:
            run = world.copy_run(world.tfidf, "two-writers")
            command = loralab(
                "train",
                world.data,
                "-m",
                "lora",
                "--model",
                world.model,
                "--epochs",
                "1000",  # still training when the second writer arrives, on any machine
                "-o",
                run,
                "--overwrite",
            )
            first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 120
            while not (run / "history.csv").exists() and first.poll() is None and time.time() < deadline:
                time.sleep(0.1)
            second = subprocess.run(
                loralab(
                    "train",
                    world.data,
                    "-m",
                    "lora",
                    "--model",
                    world.model,
                    "--epochs",
                    "12",
                    "-o",
                    run,
                    flag,
                ),
                capture_output=True,
                text=True,
            )
            first.send_signal(signal.SIGTERM)
            first.wait(timeout=300)
            refused = "another loralab process is writing this run" in second.stderr
            return second.returncode if refused else 0, second.stderr

        return both

    return [
        Case("processes", "SIGTERM during train (expect exit 143, 'interrupted')", sigterm),
        Case("processes", "SIGKILL during train, then predict (stale)", sigkill_then_predict),
        Case("processes", "train --overwrite while another process trains there", two_trains("--overwrite")),
        Case("processes", "train --resume while another process trains there", two_trains("--resume")),
    ]


# --- the server ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, world: World) -> None:
        self.port = free_port()
        command = loralab(
            "serve",
            f"tfidf={world.tfidf}",
            f"lora={world.lora}",
            "--port",
            self.port,
            "--token",
            "T",
            "--max-texts",
            "20",
            "--max-chars",
            "20000",
            "--max-body",
            "200000",
        )
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(self.process.stdout.read())

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        token: str | None = "T",
        headers: dict | None = None,
    ) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def server_cases(world: World, server: Server) -> list[Case]:
    def call(method, path, body=None, token="T", headers=None, expect_ok=False):
        def send() -> tuple[int, str]:
            payload = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
            try:
                status, text = server.request(method, path, payload, token, headers)
            except (OSError, http.client.HTTPException) as error:  # the server dropped the line
                return -1, f"no answer: {error!r}"
            try:
                json.loads(text or "null")
            except json.JSONDecodeError:
                text = f"(not JSON) {text}"
            return (0 if status < 300 else status), f"{status} {text}"

        return send

    classify = "/v1/classify"
    bodies = {
        "not JSON": b"{nope",
        "empty body": b"",
        "JSON array": [],
        "JSON string": '"x"',
        "null": b"null",
        "missing texts": {"model": "tfidf"},
        "missing model": {"texts": ["a"]},
        "texts not a list": {"model": "tfidf", "texts": "a"},
        "text a number": {"model": "tfidf", "texts": [1]},
        "text null": {"model": "tfidf", "texts": [None]},
        "model a list": {"model": ["tfidf"], "texts": ["a"]},
        "extra key": {"model": "tfidf", "texts": ["a"], "x": 1},
        "empty texts": {"model": "tfidf", "texts": []},
        "too many texts": {"model": "tfidf", "texts": ["a"] * 21},
        "too long text": {"model": "tfidf", "texts": ["a" * 20001]},
        "unknown model": {"model": "nope", "texts": ["a"]},
        "lone surrogate": '{"model": "lora", "texts": ["\\ud800"]}',
        "lone surrogate (tfidf)": '{"model": "tfidf", "texts": ["caf\\udce9"]}',
        "invalid UTF-8 bytes": b'{"model": "lora", "texts": ["caf\xe9"]}',
        "body over --max-body": {"model": "tfidf", "texts": ["a" * 1000] * 300},
        "deep nesting": b"[" * 5000 + b"]" * 5000,
        "huge number": b'{"model": "tfidf", "texts": [1e999999]}',
    }
    cases = [
        Case("server", f"POST /v1/classify: {name}", call("POST", classify, body))
        for name, body in bodies.items()
    ]
    cases += [
        Case(
            "server",
            "POST /v1/classify: long text on LoRA (works)",
            call("POST", classify, {"model": "lora", "texts": ["good " * 3000]}),
            fails=False,
        ),
        Case(
            "server",
            "POST /v1/classify: no token",
            call("POST", classify, {"model": "tfidf", "texts": ["a"]}, None),
        ),
        Case(
            "server",
            "POST /v1/classify: wrong token",
            call("POST", classify, {"model": "tfidf", "texts": ["a"]}, "x"),
        ),
        Case(
            "server",
            "POST /v1/classify: bad Content-Length",
            call("POST", classify, b"{}", headers={"Content-Length": "abc"}),
        ),
        Case("server", "GET /v1/classify", call("GET", classify)),
        Case("server", "GET /nope", call("GET", "/nope")),
        Case("server", "DELETE unknown model", call("DELETE", "/v1/models/nope")),
        Case("server", "DELETE ../../etc", call("DELETE", "/v1/models/..%2F..%2Fetc")),
    ]
    for name in ["../../x", "a/b", " ", "x" * 65, "-lead", "semi;colon", "", "ünï"]:
        cases.append(
            Case(
                "server",
                f"POST /v1/models name {name!r}",
                call("POST", "/v1/models", {"run": str(world.tfidf), "name": name}),
            )
        )
    damaged = {
        "truncated adapter": ("model/adapter_model.safetensors", _truncate),
        "deleted adapter": ("model/adapter_model.safetensors", Path.unlink),
        "truncated manifest": ("manifest.json", _truncate),
        "truncated loralab.json": ("model/loralab.json", _truncate),
    }
    for name, (file, how) in damaged.items():
        run = world.copy_run(world.lora, "serve-damaged")
        how(run / file)
        cases.append(
            Case(
                "server",
                f"POST /v1/models {name}",
                call("POST", "/v1/models", {"run": str(run), "name": "damaged"}),
            )
        )
    cases += [
        Case(
            "server",
            "POST /v1/models a missing folder",
            call("POST", "/v1/models", {"run": "/nope", "name": "m"}),
        ),
        Case("server", "POST /v1/models a data folder", call("POST", "/v1/models", {"run": str(world.data)})),
        Case(
            "server",
            "POST /v1/models a name already served",
            call("POST", "/v1/models", {"run": str(world.tfidf), "name": "tfidf"}),
        ),
        Case("server", "add and remove models while 5 threads classify", churn(world, server), fails=False),
    ]
    return cases


def churn(world: World, server: Server) -> Callable[[], tuple[int, str]]:
    def run() -> tuple[int, str]:
        statuses: list[int] = []
        stop = threading.Event()

        def classify() -> None:
            while not stop.is_set():
                body = json.dumps({"model": "churn", "texts": ["good film"]})
                statuses.append(server.request("POST", "/v1/classify", body)[0])

        threads = [threading.Thread(target=classify) for _ in range(5)]
        for thread in threads:
            thread.start()
        for _ in range(20):
            server.request("POST", "/v1/models", json.dumps({"run": str(world.tfidf), "name": "churn"}))
            server.request("DELETE", "/v1/models/churn")
        stop.set()
        for thread in threads:
            thread.join()
        errors = sum(s >= 500 for s in statuses)
        summary = f"{len(statuses)} requests: " + ", ".join(
            f"{s}×{statuses.count(s)}" for s in sorted(set(statuses))
        )
        return (500 if errors else 0), summary

    return run


# --- running and reporting ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "hostile_matrix.json"
    )
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder of the cases.")
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hostile-matrix-"))
    os.environ["LORALAB_LOG_DIR"] = str(root / "logs")
    os.environ["LORALAB_RUNS_DIR"] = str(root / "default-runs")
    world = World(root)
    world.mounts = []
    started = time.perf_counter()
    server = None
    try:
        cases = data_cases(world) + flag_cases(world) + damage_cases(world) + output_cases(world)
        cases += process_cases(world)
        server = Server(world)
        cases += server_cases(world, server)
        outcomes, skipped = [], []
        for case in cases:
            if case.skip:
                skipped.append(case)
                continue
            # (The SIGTERM case reports 1 for "exit 143 and the run recorded as interrupted".)
            outcomes.append(run_case(case))
    finally:
        if server is not None:
            server.stop()
        for mount in world.mounts:
            subprocess.run(["umount", "-l", str(mount)], check=False)
        if not options.keep:
            shutil.rmtree(root, ignore_errors=True)
    report(outcomes, skipped, time.perf_counter() - started, options.json)


def report(outcomes: list[Outcome], skipped: list[Case], seconds: float, path: Path) -> None:
    groups = sorted({o.case.group for o in outcomes})
    print("| group | cases | tracebacks | exit 0 on failure | server 5xx | files lost | not as expected |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for group in [*groups, "all"]:
        mine = [o for o in outcomes if group in ("all", o.case.group)]
        counts = [
            len(mine),
            sum(o.traceback for o in mine),
            sum(o.zero_on_failure for o in mine),
            sum(o.server_5xx for o in mine),
            sum(bool(o.lost) for o in mine),
            sum(not o.ok for o in mine),
        ]
        print(f"| {group} | " + " | ".join(map(str, counts)) + " |")
    print(f"\n{len(outcomes)} cases run, {len(skipped)} skipped, in {seconds:.0f} s.")
    for outcome in outcomes:
        if not outcome.ok:
            print(
                f"\nNOT OK: [{outcome.case.group}] {outcome.case.name} (exit {outcome.code}, "
                f"traceback {outcome.traceback}, lost {outcome.lost})\n{outcome.output.strip()[-400:]}"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "skipped": [c.name for c in skipped],
                "cases": [
                    {
                        "group": o.case.group,
                        "name": o.case.name,
                        "exit": o.code,
                        "ok": o.ok,
                        "traceback": o.traceback,
                        "zero_on_failure": o.zero_on_failure,
                        "server_5xx": o.server_5xx,
                        "lost": o.lost,
                        "output": o.output.strip()[-300:],
                    }
                    for o in outcomes
                ],
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
