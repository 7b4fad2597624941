"""Optuna search: the space syntax, trials as run folders, two workers sharing one storage."""

import json
import subprocess
import sys

import pytest

from loralab.errors import LoralabError
from loralab.runs.search import parse_space, run_search


def test_space_syntax():
    space = parse_space(["lr=float:1e-4:1e-2:log", "lora_rank=int:2:8", "lora_alpha=8,16"])
    assert space["lr"] == {"kind": "float", "low": 1e-4, "high": 1e-2, "log": True}
    assert space["lora_rank"] == {"kind": "int", "low": 2, "high": 8, "log": False}
    assert space["lora_alpha"] == {"kind": "choice", "values": [8.0, 16.0]}


@pytest.mark.parametrize(
    "spec, message",
    [
        (["lr=float:1e-2:1e-4"], "need 0 < LOW < HIGH"),
        (["lr=float:a:b"], "bounds 'float:a:b' are not floats"),
        (["rank=int:1:4"], "should be setting=int:LOW:HIGH"),
        (["lora_rank=int:2"], r"lora_rank: range 'int:2' is malformed; use int:LOW:HIGH\[:log\], float:"),
        (["lr=float:1e-4:1e-2:LOG"], "lr: range 'float:1e-4:1e-2:LOG' is malformed"),
        ([], "give at least one --space dimension"),
    ],
)
def test_bad_space_is_named(spec, message):
    with pytest.raises(LoralabError, match=message):
        parse_space(spec)


def test_an_unreachable_storage_is_one_sentence(synthetic_dir, tmp_path):
    with pytest.raises(LoralabError, match="Optuna storage sqlite:////no/such/dir/x.db cannot be opened"):
        run_search(str(synthetic_dir), parse_space(["lora_rank=2,4"]), {}, tmp_path / "s", trials=1,
                   storage="sqlite:////no/such/dir/x.db")  # fmt: skip
    assert not (tmp_path / "s").exists()


def test_two_workers_share_one_study_without_duplicates(tiny_bert, synthetic_dir, tmp_path):
    folder = tmp_path / "search"
    command = [sys.executable, "-m", "loralab", "sweep", str(synthetic_dir), "--search", "optuna",
               "--space", "lr=float:1e-3:2e-2:log", "--space", "lora_rank=int:1:4", "--trials", "6",
               "--model", str(tiny_bert), "--epochs", "2", "--set", "threads=1",
               "-o", str(folder)]  # fmt: skip
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [out[-2000:] for out in outputs]
    summary = json.loads((folder / "search.json").read_text())
    trials = summary["trials"]
    assert len(trials) >= 6
    numbers = [t["number"] for t in trials]
    runs = [t["run"] for t in trials]
    assert len(set(numbers)) == len(numbers) and len(set(runs)) == len(runs)
    finished = [t for t in trials if t["state"] in ("complete", "pruned")]
    assert len(finished) >= 6
    for trial in finished:
        manifest = json.loads((folder / f"trial-{trial['number']:04d}" / "manifest.json").read_text())
        assert manifest["status"] == ("completed" if trial["state"] == "complete" else "pruned")
        assert not (folder / f"trial-{trial['number']:04d}" / "checkpoints").exists()
        metrics = folder / f"trial-{trial['number']:04d}" / "metrics.json"
        if trial["state"] == "complete":  # selection saw validation only
            assert set(json.loads(metrics.read_text())) == {"validation"}
    best = summary["best"]
    assert best["validation_accuracy"] == max(t["value"] for t in trials if t["state"] == "complete")
    assert (
        0 <= best["test_accuracy"] <= 1
        and (folder / f"trial-{best['number']:04d}" / "test_metrics.json").exists()
    )
    assert any("Best:" in out for out in outputs)


def test_an_interrupted_trial_is_redone_and_leaves_nothing_behind(
    tiny_bert, synthetic_dir, tmp_path, monkeypatch, capfd
):
    from loralab.runs import search

    real_execute = search.execute
    calls = []

    def execute_stopped_once(config, splits, run_dir, **kwargs):
        calls.append((run_dir.name, config.lora_rank, config.lr))
        if len(calls) == 1:  # Ctrl-C after the first epoch: a checkpoint has been written

            def stop(row):
                raise KeyboardInterrupt

            kwargs["on_epoch_hook"] = stop
        return real_execute(config, splits, run_dir, **kwargs)

    monkeypatch.setattr(search, "execute", execute_stopped_once)
    space = parse_space(["lora_rank=int:1:4", "lr=float:1e-3:1e-2:log"])
    base = {"model": str(tiny_bert), "epochs": 2, "threads": 1, "checkpoint_every": 1}
    folder = tmp_path / "search"
    with pytest.raises(KeyboardInterrupt):
        run_search(str(synthetic_dir), space, base, folder, trials=2)
    assert not (folder / "trial-0000").exists()
    assert "Traceback" not in capfd.readouterr().err

    summary = run_search(str(synthetic_dir), space, base, folder, trials=2)
    states = {t["number"]: t["state"] for t in summary["trials"]}
    assert states[0] == "interrupted"
    assert sum(state in ("complete", "pruned") for state in states.values()) == 2
    assert calls[1][1:] == calls[0][1:]  # the interrupted settings were trained again
    assert sorted(p.name for p in folder.glob("trial-*")) == ["trial-0001", "trial-0002"]


def test_a_trial_whose_worker_was_killed_is_redone(tiny_bert, synthetic_dir, tmp_path):
    """SIGKILL (the out-of-memory killer, say) runs no handler: the trial stays RUNNING in the
    study. The next worker on the host fails it, removes its folder and trains it again."""
    import socket

    import optuna
    import psutil

    from loralab.runs.search import WORKER, open_study

    space = parse_space(["lora_rank=int:1:4"])
    base = {"model": str(tiny_bert), "epochs": 1, "threads": 1}
    folder = tmp_path / "search"
    folder.mkdir()
    study = open_study(f"sqlite:///{folder / 'optuna.db'}", folder.name)
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = psutil.Process(killed.pid).create_time()
    killed.kill()
    killed.wait()
    lost = study.ask({"lora_rank": optuna.distributions.IntDistribution(1, 4)})
    lost.set_user_attr(WORKER, {"host": socket.gethostname(), "pid": killed.pid, "started": started})
    lost.set_user_attr("run", str(folder / "trial-0000"))
    (folder / "trial-0000").mkdir()  # half-trained
    rank = lost.params["lora_rank"]

    with pytest.warns(UserWarning, match=r"trial 0: its worker \(process \d+\) ended without finishing it"):
        summary = run_search(str(synthetic_dir), space, base, folder, trials=1)
    states = {t["number"]: t["state"] for t in summary["trials"]}
    assert states == {0: "interrupted", 1: "complete"}
    redo = next(t for t in summary["trials"] if t["number"] == 1)
    assert redo["params"] == {"lora_rank": rank}
    assert sorted(p.name for p in folder.glob("trial-*")) == ["trial-0001"]
    # A running trial of a live worker is left alone.
    alive = open_study(f"sqlite:///{folder / 'optuna.db'}", folder.name).ask()
    alive.set_user_attr(WORKER, {"host": socket.gethostname(), "pid": psutil.Process().pid,
                                 "started": psutil.Process().create_time()})  # fmt: skip
    summary = run_search(str(synthetic_dir), space, base, folder, trials=2)
    assert {t["number"]: t["state"] for t in summary["trials"]}[2] == "running"


def test_a_warning_every_trial_raises_is_said_once(tiny_bert, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from loralab.cli import app

    result = CliRunner().invoke(
        app,
        ["sweep", str(synthetic_dir), "--search", "optuna", "--space", "lora_rank=2,4", "--trials", "2",
         "--model", str(tiny_bert), "--epochs", "1", "--set", "threads=1", "-o", str(tmp_path / "s")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert said.count("--max-length 128 is more than model") == 1, result.output


def test_a_trial_records_the_columns_the_search_read(tmp_path):
    from tests.conftest import synthetic_frame

    data = tmp_path / "tweets.csv"
    synthetic_frame(80, 5).rename(columns={"text": "tweet", "label": "sentiment"}).to_csv(data, index=False)
    folder = tmp_path / "search"
    run_search(str(data), parse_space(["tfidf_ngram_max=1,2"]), {"method": "tfidf-logreg"}, folder,
               trials=1, subset=60, text_col="tweet", label_col="sentiment")  # fmt: skip
    manifest = json.loads((folder / "trial-0000" / "manifest.json").read_text())
    assert manifest["columns"] == {"text": "tweet", "label": "sentiment"} and manifest["subset"] == 60
