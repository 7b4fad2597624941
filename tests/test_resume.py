"""Resumable training: a run killed with SIGKILL continues from its last checkpoint and ends
where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from loralab.config import TrainConfig
from loralab.errors import RunError
from loralab.runs.train import train_run
from tests.conftest import synthetic_frame


@pytest.fixture(scope="module")
def big_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume-data")
    synthetic_frame(3000, 1).to_csv(folder / "train.csv", index=False)
    synthetic_frame(200, 2).to_csv(folder / "validation.csv", index=False)
    synthetic_frame(200, 3).to_csv(folder / "test.csv", index=False)
    return folder


def _command(data, model, out, *extra):
    return [sys.executable, "-m", "loralab", "train", str(data), "--model", str(model), "--epochs", "3",
            "--lr", "5e-3", "--batch-size", "16", "--threads", "1", "--lora-rank", "4",
            "--checkpoint-every", "20", "--output-dir", str(out), *extra]  # fmt: skip


def test_a_killed_run_resumes_and_matches_an_uninterrupted_one(big_data, tiny_bert, tmp_path):
    whole = subprocess.run(_command(big_data, tiny_bert, tmp_path / "whole"), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    process = subprocess.Popen(
        _command(big_data, tiny_bert, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "checkpoints").glob("step-*")):
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "running"  # killed outright: nobody wrote a final status
    assert not (out / "model").exists() and list((out / "checkpoints").glob("step-*"))
    resumed = subprocess.run(_command(big_data, tiny_bert, out, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads((out / "manifest.json").read_text())
    assert final["status"] == "completed" and final["resumed"] is True
    assert not (out / "checkpoints").exists()
    got, expected = (json.loads((d / "metrics.json").read_text()) for d in (out, tmp_path / "whole"))
    for split in ("validation", "test"):  # stated tolerance: 1e-6 (CPU training here is deterministic)
        assert got[split]["accuracy"] == pytest.approx(expected[split]["accuracy"], abs=1e-6)
    history, reference = pd.read_csv(out / "history.csv"), pd.read_csv(tmp_path / "whole" / "history.csv")
    assert len(history) == 3
    pd.testing.assert_series_equal(history["val_loss"], reference["val_loss"], atol=1e-5, rtol=0)
    pd.testing.assert_series_equal(history["train_loss"], reference["train_loss"], atol=1e-5, rtol=0)


def test_resuming_is_refused_when_complete_changed_or_absent(synthetic_dir, tiny_bert, tmp_path):
    config = TrainConfig(method="lora", model=str(tiny_bert), epochs=1, lr=5e-3)
    train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    with pytest.raises(RunError, match="already completed; there is nothing to resume"):
        train_run(synthetic_dir, config, tmp_path / "run", progress=False, resume=True)
    manifest_path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "status": "interrupted"}))
    with pytest.raises(RunError, match=r"cannot resume with different settings \(lr: 0.005 → 0.001\)"):
        train_run(synthetic_dir, config.replace(lr=1e-3), tmp_path / "run", progress=False, resume=True)
    with pytest.raises(RunError, match="nothing: no such run folder"):
        train_run(synthetic_dir, config, tmp_path / "nothing", progress=False, resume=True)


def test_torchrun_trains_with_ddp_and_one_process_writes_the_run(synthetic_dir, tiny_bert, tmp_path):
    import shutil

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    out = tmp_path / "ddp"
    command = [torchrun, "--nproc-per-node", "2", "-m", "loralab", "train", str(synthetic_dir),
               "--model", str(tiny_bert), "--epochs", "2", "--lr", "5e-3", "--threads", "1",
               "--checkpoint-every", "2", "--output-dir", str(out)]  # fmt: skip
    env = {**os.environ, "LORALAB_RUNS_DIR": str(tmp_path / "runs")}
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Run saved to") == 1  # only the main process reports
    # One run folder and nothing else, besides the run's lock file (kept, see loralab.runs.locks).
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ddp.lock", "data", "ddp"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["processes"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    for split, size in (("validation", 40), ("test", 40)):  # every example evaluated exactly once
        assert metrics[split]["n"] == size and sum(map(sum, metrics[split]["confusion_matrix"])) == size
        assert len(pd.read_csv(out / "predictions" / f"{split}.csv")) == size
    assert len(pd.read_csv(out / "history.csv")) == 2


def test_a_run_stopped_after_a_later_epoch_resumes_on_the_batches_of_an_unbroken_run(
    synthetic_dir, tiny_bert, tmp_path
):
    from loralab.runs.execute import execute

    config = TrainConfig(method="lora", model=str(tiny_bert), epochs=3, lr=5e-3, batch_size=8)
    execute(config, synthetic_dir, tmp_path / "whole", progress=False)

    def stop_after_the_second_epoch(row):  # a hook that stops the run (a cancelled comparison)
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(
            config, synthetic_dir, tmp_path / "run", progress=False, on_epoch_hook=stop_after_the_second_epoch
        )
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "interrupted"
    resumed = execute(config, synthetic_dir, tmp_path / "run", progress=False, resume=True)
    assert resumed.manifest["resumed"] is True
    # Epoch 3 goes on from epoch 2's checkpoint, on the batches an unbroken run trains on.
    history, reference = (pd.read_csv(tmp_path / d / "history.csv") for d in ("run", "whole"))
    assert len(history) == 3
    for column in ("train_loss", "val_loss"):
        pd.testing.assert_series_equal(history[column], reference[column], atol=1e-5, rtol=0)


def test_a_resumed_run_that_stops_again_keeps_its_folder(synthetic_dir, tiny_bert, tmp_path):
    from loralab.runs.execute import execute

    config = TrainConfig(method="lora", model=str(tiny_bert), epochs=3, lr=5e-3, batch_size=8)

    def stop_after(epoch):
        def hook(row):
            if row["epoch"] == epoch:
                raise KeyboardInterrupt

        return hook

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        execute(config, synthetic_dir, run, progress=False, on_epoch_hook=stop_after(1))
    # What an --overwrite killed outright leaves beside its folder: the run it was replacing.
    (tmp_path / ".run.replaced").mkdir()
    (tmp_path / ".run.replaced" / "manifest.json").write_text(json.dumps({"status": "completed"}))
    with pytest.raises(KeyboardInterrupt):
        execute(config, synthetic_dir, run, progress=False, resume=True, on_epoch_hook=stop_after(2))
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and list((run / "checkpoints").glob("step-*"))
    assert len(pd.read_csv(run / "history.csv")) == 2
    # Stopped after its last epoch, it resumes with nothing left to train.
    with pytest.raises(KeyboardInterrupt):
        execute(config, synthetic_dir, run, progress=False, resume=True, on_epoch_hook=stop_after(3))
    last = sorted((run / "checkpoints").glob("step-*"))[-1]
    assert json.loads((last / "loop.json").read_text())["at"]["epoch"] == 4
    epochs_trained = []
    resumed = execute(
        config, synthetic_dir, run, progress=False, resume=True, on_epoch_hook=epochs_trained.append
    )
    assert resumed.manifest["status"] == "completed" and not (tmp_path / ".run.replaced").exists()
    assert [row["epoch"] for row in epochs_trained] == [1, 2, 3]  # replayed from the checkpoint
    assert len(pd.read_csv(run / "history.csv")) == 3


@pytest.mark.parametrize("method", ["lora", "tfidf-logreg"])
def test_ctrl_c_during_train_says_how_to_continue_when_a_checkpoint_allows_it(
    synthetic_dir, tiny_bert, tmp_path, monkeypatch, method
):
    from typer.testing import CliRunner

    import loralab.runs.execute
    from loralab.cli import app

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    # lora: after its first epoch's checkpoint, as the history is written; tfidf: while it evaluates
    monkeypatch.setattr(loralab.runs.execute, "write_csv", ctrl_c)
    monkeypatch.setattr(loralab.runs.execute, "evaluate_classifier", ctrl_c)
    out = tmp_path / "my run"
    args = ["train", str(synthetic_dir), "--method", method, "--model", str(tiny_bert), "--epochs", "2"]
    args += ["--threads", "1", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130, result.output
    last = [line for line in result.output.splitlines() if line.startswith("interrupted")][-1]
    if method == "tfidf-logreg":  # nothing to resume from: starting again is all there is
        assert last == "interrupted"
        return
    assert last == f"interrupted: continue with the same loralab train command and --resume -o '{out}'"
    monkeypatch.undo()
    result = CliRunner().invoke(app, [*args, "--resume", "-o", str(out)])  # what the hint says
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["resumed"] is True
