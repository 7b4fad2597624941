"""Sweeps: grid parsing, every point a run, resume after a real kill, the summary and heatmap."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from loralab.cli import app
from loralab.errors import LoralabError
from loralab.runs.sweep import grid_points, parse_axes, point_name, run_sweep, summarise


def test_axes_are_parsed_by_the_settings_types():
    axes = parse_axes(
        ["lora_rank=4,8", "lr=1e-3,5e-4", "use_rslora=true,false", "target_modules=query+value,all-linear"]
    )
    assert axes == {
        "lora_rank": [4, 8],
        "lr": [1e-3, 5e-4],
        "use_rslora": [True, False],
        "target_modules": [["query", "value"], ["all-linear"]],
    }
    assert len(grid_points(axes)) == 16
    assert (
        point_name({"lora_rank": 4, "target_modules": ["query", "value"]})
        == "lora_rank-4_target_modules-query+value"
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        (["lora_rnk=4"], r"'lora_rnk' is not a training setting \(did you mean 'lora_rank'\?\)"),
        (["lora_rank=four"], "grid value 'four' for lora_rank is not an integer"),
        (["use_rslora=maybe"], "grid value 'maybe' for use_rslora is not true or false"),
        (["lora_rank"], "should look like name=value1,value2"),
        ([], "give at least one grid axis"),
    ],
)
def test_bad_axes_are_named(spec, message):
    with pytest.raises(LoralabError, match=message):
        parse_axes(spec)


def _base(tiny_bert):
    return {"model": str(tiny_bert), "epochs": 1, "lr": 5e-3, "batch_size": 16, "threads": 1}


def test_a_sweep_trains_each_point_and_summarises(tiny_bert, synthetic_dir, tmp_path):
    folder = tmp_path / "sweep"
    result = CliRunner().invoke(
        app,
        ["sweep", str(synthetic_dir), "--grid", "lora_rank=2,4", "lora_alpha=4,8", "--model", str(tiny_bert),
         "--epochs", "1", "--set", "lr=5e-3", "--set", "threads=1", "-o", str(folder), "--jobs", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((folder / "results.json").read_text())
    assert summary["trained"] == 4 and summary["skipped"] == 0 and not summary["failed"]
    accuracies = [r["validation_accuracy"] for r in summary["rows"]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert summary["best"]["point"] == summary["rows"][0]["point"]
    assert (folder / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    for row in summary["rows"]:
        config = json.loads((folder / row["point"] / "config.json").read_text())
        assert (config["lora_rank"], config["lora_alpha"]) == (
            int(row["lora_rank"]),
            float(row["lora_alpha"]),
        )
        assert config["lr"] == 5e-3
    assert "Best: lora_rank=" in result.output
    from loralab.reports.report import write_report

    _, md = write_report(folder)
    assert "## Points" in md.read_text() and "heatmap.png" in md.read_text()
    # Run again: nothing left to train.
    again = run_sweep(str(synthetic_dir), parse_axes(["lora_rank=2,4", "lora_alpha=4,8"]),
                      json.loads((folder / "sweep.json").read_text())["base"], folder)  # fmt: skip
    assert again["trained"] == 0 and again["skipped"] == 4


def test_a_folder_holding_another_grid_is_refused(tiny_bert, synthetic_dir, tmp_path):
    base = _base(tiny_bert)
    run_sweep(str(synthetic_dir), parse_axes(["lora_rank=2"]), base, tmp_path / "s")
    with pytest.raises(LoralabError, match=r"holds a sweep with other settings \(grid:"):
        run_sweep(str(synthetic_dir), parse_axes(["lora_rank=2,4"]), base, tmp_path / "s")


def test_an_invalid_point_stops_the_sweep_before_anything_runs(tiny_bert, synthetic_dir, tmp_path):
    with pytest.raises(LoralabError, match="--lora-rank must be a positive integer"):
        run_sweep(str(synthetic_dir), parse_axes(["lora_rank=4,0"]), _base(tiny_bert), tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_a_killed_sweep_redoes_only_the_missing_points(tiny_bert, synthetic_dir, tmp_path):
    folder = tmp_path / "sweep"
    command = [sys.executable, "-m", "loralab", "sweep", str(synthetic_dir), "--grid", "lora_rank=1,2,3,4",
               "--model", str(tiny_bert), "--set", "threads=1", "--set", "lr=5e-3", "--epochs", "3",
               "-o", str(folder)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = folder / "lora_rank-1" / "manifest.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if first.exists() and json.loads(first.read_text())["status"] == "completed":
            break
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=60)
    statuses = summarise(folder)["rows"]
    done = {r["point"] for r in statuses if r["status"] == "completed"}
    assert "lora_rank-1" in done and len(done) < 4
    started = {p: json.loads((folder / p / "manifest.json").read_text())["started"] for p in done}
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((folder / "results.json").read_text())
    assert summary["skipped"] == len(done) and summary["trained"] == 4 - len(done)
    assert all(r["status"] == "completed" for r in summary["rows"])
    for point, stamp in started.items():  # finished points were not trained again
        assert json.loads((folder / point / "manifest.json").read_text())["started"] == stamp


def test_a_point_that_fails_is_recorded_and_the_others_still_train(tiny_bert, synthetic_dir, tmp_path):
    # One job trains in this process; a failing point must not stop the sweep.
    axes = parse_axes(["target_modules=query,no_such_layer"])
    folder = tmp_path / "s"
    codes = {}
    summary = run_sweep(str(synthetic_dir), axes, _base(tiny_bert), folder, on_point=codes.__setitem__)
    assert summary["failed"] == ["target_modules-no_such_layer"]
    # A user's mistake, reported with the exit code `loralab train` gives it
    assert codes == {"target_modules-query": 0, "target_modules-no_such_layer": 2}
    assert summary["trained"] == 2
    statuses = {r["point"]: r["status"] for r in summary["rows"]}
    assert statuses == {"target_modules-query": "completed", "target_modules-no_such_layer": "missing"}
    log = (folder / "logs" / "target_modules-no_such_layer.log").read_text()
    assert "no_such_layer" in log


def test_a_value_repeated_on_an_axis_is_one_point():
    with pytest.warns(UserWarning, match="lora_rank: 4 given more than once; each value is used once"):
        axes = parse_axes(["lora_rank=4,8,4", "lr=1e-3,0.001"])
    assert axes == {"lora_rank": [4, 8], "lr": [1e-3]}
    assert len(grid_points(axes)) == 2


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ["--grid", "lora_rank=2,4", "--space", "lr=float:1e-4:1e-2"],
            "--space: only used with --search optuna",
        ),
        (
            ["--grid", "lora_rank=2", "--storage", "sqlite:///x.db", "--study", "s"],
            "--storage, --study: only",
        ),
        (
            ["--search", "optuna", "--space", "lora_rank=int:2:4", "--trials", "1", "--jobs", "2"],
            "--jobs: only used by a --grid",
        ),
        (["--grid", "lora_rank=2", "--trials", "5"], "--trials: only used with --search optuna"),
    ],
)
def test_options_of_the_other_kind_of_sweep_are_refused(tiny_bert, synthetic_dir, tmp_path, options, message):
    folder = tmp_path / "s"
    cheap = ["--model", str(tiny_bert), "--epochs", "1", "--set", "threads=1"]
    result = CliRunner().invoke(app, ["sweep", str(synthetic_dir), *options, *cheap, "-o", str(folder)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not folder.exists()
