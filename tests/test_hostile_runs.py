"""Hostile conditions around run folders and batch jobs: damaged files, concurrent writers,
SIGTERM and SIGKILL, and a batch job resumed with another run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loralab.runs.folder import RunFolder
from tests import hostile_fixtures
from tests.conftest import synthetic_frame
from tests.hostile_fixtures import copy_run, invoke, one_sentence

hostile_data = hostile_fixtures.hostile_data
tfidf_run = hostile_fixtures.tfidf_run
lora_run = hostile_fixtures.lora_run


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _forget_sizes(run: Path) -> None:
    """Make ``run`` look like one saved before file sizes were recorded in the manifest."""
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.pop("model_files", None)
    (run / "manifest.json").write_text(json.dumps(manifest))


DAMAGE = [
    ("lora", "model/adapter_model.safetensors", "truncate", "has", False),
    ("lora", "model/adapter_model.safetensors", "delete", "missing", False),
    ("lora", "model/adapter_model.safetensors", "truncate", "damaged (", True),
    ("lora", "model/loralab.json", "truncate", "has", False),
    ("lora", "model/loralab.json", "truncate", "damaged, not valid JSON", True),
    ("lora", "model/adapter_config.json", "truncate", "damaged, not valid JSON", True),
    ("tfidf", "model/baseline.safetensors", "truncate", "damaged (", True),
    ("tfidf", "model/baseline.json", "truncate", "damaged, not valid JSON", True),
    ("tfidf", "manifest.json", "truncate", "damaged, not valid JSON", False),
    ("lora", "manifest.json", "truncate", "damaged, not valid JSON", False),
]


@pytest.mark.parametrize("kind, name, how, expected, old_run", DAMAGE)
def test_a_damaged_run_file_is_named_by_every_command(kind, name, how, expected, old_run, request, tmp_path):
    run = copy_run(request.getfixturevalue(f"{kind}_run"), tmp_path)
    if old_run:
        _forget_sizes(run)
    target = run / name
    _truncate(target) if how == "truncate" else target.unlink()
    previous_export = tmp_path / "export"
    previous_export.mkdir()
    (previous_export / "keep.txt").write_text("an earlier export")
    for args in (
        ("predict", run, "a good film"),
        ("export", run, tmp_path / "new-export"),
        ("export", run, previous_export, "--overwrite"),
        ("evaluate", run, request.getfixturevalue("hostile_data")),
    ):
        message = one_sentence(invoke(*args))
        assert str(target) in message and expected in message, message
        assert "--overwrite" in message or "restore" in message
    assert (previous_export / "keep.txt").read_text() == "an earlier export"
    assert not (tmp_path / "new-export").exists()


# --- 12. a batch job resumed with another run ------------------------------------------------


def test_resuming_a_batch_job_with_another_run_is_refused(tfidf_run, hostile_data, tmp_path, monkeypatch):
    other = tmp_path / "other"
    trained = invoke("train", hostile_data, "-m", "tfidf-logreg", "--baseline-c", 0.1, "-o", other)
    assert trained.exit_code == 0, trained.output
    synthetic_frame(40).to_csv(tmp_path / "in.csv", index=False)
    import loralab.runs.predict as predict

    original, calls = predict._write_part, {"n": 0}

    def interrupted_after_one(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(predict, "_write_part", interrupted_after_one)
    job = ("-i", tmp_path / "in.csv", "-o", tmp_path / "out.csv", "--chunk-size", 10)
    assert invoke("predict", tfidf_run, *job).exit_code == 130
    monkeypatch.setattr(predict, "_write_part", original)
    message = one_sentence(invoke("predict", other, *job, "--resume"))
    assert "cannot resume, the job changed" in message and "run:" in message
    assert not (tmp_path / "out.csv").exists()
    resumed = invoke("predict", tfidf_run, *job, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "Scored 40 rows" in resumed.output


# --- 14. one writer per run folder ---------------------------------------------------------------


def _hold_lock_in_another_process(run: Path) -> subprocess.Popen:
    code = (
        "import sys, time; from loralab.runs.folder import RunFolder; "
        f"run = RunFolder({str(run)!r}); run.acquire(); print('held', flush=True); time.sleep(120)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
def test_a_run_folder_being_written_is_refused(flag, tfidf_run, hostile_data, tmp_path):
    run = copy_run(tfidf_run, tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "status": "running", "pid": 1}))
    before = (run / "manifest.json").read_text()
    holder = _hold_lock_in_another_process(run)
    try:
        message = one_sentence(invoke("train", hostile_data, "-m", "tfidf-logreg", "-o", run, flag))
        assert "another loralab process is writing this run (process 1 on" in message
        assert (run / "manifest.json").read_text() == before
    finally:
        holder.kill()  # SIGKILL: the operating system releases the lock
        holder.wait()
    again = invoke("train", hostile_data, "-m", "tfidf-logreg", "-o", run, "--overwrite")
    assert again.exit_code == 0, again.output


def test_two_processes_writing_one_run_one_is_refused(hostile_data, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "loralab", "train", str(hostile_data), "-m", "tfidf-logreg",
               "-o", str(run), "--overwrite"]  # fmt: skip
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    outcomes = sorted([(first.wait(timeout=120), first.stderr.read()), (second.wait(), second.stderr.read())])
    codes = [code for code, _ in outcomes]
    # Either they did not overlap (both fine, one after the other) or exactly one was refused.
    assert codes in ([0, 0], [0, 2]), outcomes
    if codes == [0, 2]:
        assert "another loralab process is writing this run" in outcomes[1][1]
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"


# --- 15. SIGTERM and SIGKILL during training ------------------------------------------------------


def _start_training(run: Path, data: Path, model: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "loralab", "train", str(data), "-m", "lora", "--model", str(model),
               "--epochs", "200", "-o", str(run)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "history.csv").exists():
        assert process.poll() is None and time.time() < deadline, process.stderr.read()
        time.sleep(0.2)
    return process


def test_sigterm_records_interrupted_and_exits_143(hostile_data, tiny_bert, tmp_path):
    run = tmp_path / "run"
    process = _start_training(run, hostile_data, tiny_bert)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    assert "terminated" in process.stderr.read()
    assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"


def test_a_run_left_running_by_a_killed_process_is_stale(hostile_data, tiny_bert, tmp_path):
    run = tmp_path / "run"
    process = _start_training(run, hostile_data, tiny_bert)
    process.kill()
    process.wait(timeout=60)
    on_disk = json.loads((run / "manifest.json").read_text())
    assert on_disk["status"] == "running" and on_disk["pid"] == process.pid
    manifest = RunFolder(run).read_manifest()
    assert manifest["status"] == "stale" and f"process {process.pid}" in manifest["stale_reason"]
    assert "the run is 'stale', not completed" in one_sentence(invoke("predict", run, "good"))
    message = one_sentence(invoke("train", hostile_data, "-m", "lora", "--model", tiny_bert, "-o", run))
    assert "'stale'; continue it with --resume" in message
