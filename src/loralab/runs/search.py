"""Hyperparameter search with Optuna: trials are run folders, pruned on validation accuracy.

Every worker process running the same command joins one Optuna study through its storage —
SQLite in the search folder by default (several processes on one machine), or a PostgreSQL /
MySQL URL shared by workers on many machines — and trains trials until the study holds
``trials`` of them. Each trial reports its validation accuracy after every epoch, so Optuna's
median pruner can stop trials that trail the others. Selection uses validation accuracy
only; the test split is evaluated once, for the best trial, at the end.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import time
import warnings
from pathlib import Path

import psutil

from loralab.config import TrainConfig
from loralab.data import load_data
from loralab.errors import LoralabError
from loralab.evaluation.evaluate import evaluate_classifier
from loralab.runs.execute import CHECKPOINTS, execute
from loralab.runs.folder import write_json
from loralab.runs.sweep import AXIS_FIELDS, coerce, distinct
from loralab.runs.train import load_run

INTERRUPTED = "interrupted"  # a trial's user attribute: stopped by the user, redone later
WORKER = "worker"  # a trial's user attribute: the host, process id and start time training it
RANGE = re.compile(r"^(int|float):([^:]+):([^:]+)(:log)?$")


def parse_space(specs: list[str]) -> dict[str, dict]:
    """``lr=float:1e-4:1e-2:log``, ``lora_rank=int:2:32``, ``lora_alpha=8,16,32`` (choices)."""
    space: dict[str, dict] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in AXIS_FIELDS:
            raise LoralabError(
                f"search dimension '{spec}' should be setting=int:LOW:HIGH[:log], "
                "setting=float:LOW:HIGH[:log] or setting=A,B,C with a training setting "
                f"({', '.join(sorted(AXIS_FIELDS))})."
            )
        match = RANGE.match(text.strip())
        if not match and text.strip().lower().startswith(("int:", "float:")):
            raise LoralabError(
                f"search dimension {name}: range '{text.strip()}' is malformed; use int:LOW:HIGH[:log], "
                "float:LOW:HIGH[:log] or choices A,B,C."
            )
        if match:
            kind, low, high, log = match.groups()
            cast = int if kind == "int" else float
            try:
                low, high = cast(low), cast(high)
            except ValueError:
                raise LoralabError(f"search dimension {name}: bounds '{text}' are not {kind}s.") from None
            if low >= high or (log and low <= 0):
                raise LoralabError(
                    f"search dimension {name}: need 0 < LOW < HIGH for a log range, LOW < HIGH else."
                )
            space[name] = {"kind": kind, "low": low, "high": high, "log": bool(log)}
        else:
            values = [coerce(name, v.strip()) for v in text.split(",")]
            space[name] = {"kind": "choice", "values": distinct(name, values)}
    if not space:
        raise LoralabError("give at least one --space dimension, e.g. --space lr=float:1e-4:1e-2:log.")
    return space


def _suggest(trial, name: str, dim: dict):
    if dim["kind"] == "int":
        return trial.suggest_int(name, dim["low"], dim["high"], log=dim["log"])
    if dim["kind"] == "float":
        return trial.suggest_float(name, dim["low"], dim["high"], log=dim["log"])
    labels = ["+".join(v) if isinstance(v, list) else v for v in dim["values"]]
    chosen = trial.suggest_categorical(name, labels)
    return dim["values"][labels.index(chosen)]


def open_study(storage: str, name: str, attempts: int = 5):
    """Create or join the study. Workers that start together race to create SQLite's tables;
    the losers see an error once and succeed when they try again."""
    import optuna  # the 'search' extra

    for attempt in range(attempts):
        try:
            return optuna.create_study(
                study_name=name,
                storage=storage,
                load_if_exists=True,
                direction="maximize",
                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
            )
        except ImportError as err:
            raise LoralabError(
                f"Optuna storage {storage}: its database driver is not installed ({err.name})."
            ) from None
        except Exception as err:  # SQLAlchemy and the drivers raise many kinds; all mean "unreachable"
            if attempt + 1 < attempts:
                time.sleep(0.2 + random.random())
                continue
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise LoralabError(f"Optuna storage {storage} cannot be opened: {first}") from None
    raise AssertionError("unreachable")


def run_search(
    data: str,
    space: dict[str, dict],
    base: dict,
    folder: str | Path,
    *,
    trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    subset: int | None = None,
    text_col: str = "text",
    label_col: str = "label",
) -> dict:
    """Run trials in this process until the study holds ``trials``; return the study summary."""
    import optuna  # the 'search' extra

    folder = Path(folder)
    if trials < 1:
        raise LoralabError(f"--trials must be ≥ 1, got {trials}.")
    TrainConfig.from_dict(base)
    seed = base.get("seed", TrainConfig().seed)
    splits = load_data(data, text_col, label_col, seed=seed, subset=subset)  # before any folder is made
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(folder / 'optuna.db').resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # before "A new study created" is said
    try:
        study = open_study(storage, study_name or folder.name)
    except LoralabError:
        if created:  # a storage that cannot be opened leaves no empty search folder behind
            shutil.rmtree(folder, ignore_errors=True)
        raise

    def objective(trial) -> float:
        trial.set_user_attr(WORKER, _this_worker())
        point = {name: _suggest(trial, name, dim) for name, dim in space.items()}
        config = TrainConfig.from_dict({**base, **point})
        run_dir = folder / f"trial-{trial.number:04d}"
        trial.set_user_attr("run", str(run_dir))

        def report(row: dict) -> None:
            trial.report(row["val_accuracy"], row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {row['epoch']}")

        try:
            result = execute(
                config,
                splits,
                run_dir,
                text_col=text_col,  # recorded in the trial's manifest: predict reads the columns,
                label_col=label_col,  # and its config.json reruns it with them and the subset
                subset=subset,
                progress=False,
                on_epoch_hook=report,
                evaluate_splits=("validation",),
            )
        except optuna.TrialPruned:
            manifest = json.loads((run_dir / "manifest.json").read_text())
            write_json(run_dir / "manifest.json", {**manifest, "status": "pruned"})
            shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)  # a pruned trial is never resumed
            raise
        return result.metrics["validation"]["accuracy"]

    # Trials are asked for and told here rather than through study.optimize, which logs a
    # traceback for every failed trial (a Ctrl-C included) and counts an interrupted trial
    # towards the study's total.
    redo_lost_trials(study)
    while _counted(study) < trials:
        _run_trial(study, objective)
    return summarise_study(study, splits, folder)


def _counted(study) -> int:
    """Trials that count towards ``--trials``: finished, failed or running in any worker —
    not those a user interrupted or whose worker was lost, and not their redos waiting in
    the queue, which the next ``ask`` takes before anything new."""
    import optuna  # the 'search' extra

    trials = study.get_trials(deepcopy=False)
    stopped = _stopped(trials)
    return sum(1 for t in trials if t.state != optuna.trial.TrialState.WAITING and t.number not in stopped)


def _stopped(trials) -> set[int]:
    """The numbers of the trials stopped before their end and redone: by the user (Ctrl-C), or
    by a worker lost (a trial that redoes another names it)."""
    redone = {t.user_attrs.get("redoes") for t in trials}
    return {t.number for t in trials if t.user_attrs.get(INTERRUPTED) or t.number in redone}


def _this_worker() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def _is_gone(worker: dict) -> bool:
    """Whether the process that trained a trial on this host has ended (killed, say, by the
    out-of-memory killer, where no handler runs); one on another host is taken as alive."""
    if worker.get("host") != socket.gethostname():
        return False
    try:  # a process id used again by a later process has another start time
        return bool(psutil.Process(worker["pid"]).create_time() != worker["started"])
    except (psutil.NoSuchProcess, KeyError):
        return True


def redo_lost_trials(study) -> None:
    """Fail the running trials whose worker on this host has died (SIGKILL leaves them
    running for ever, counted and never finished), remove their half-trained folders and
    queue their settings again, as for a trial stopped with Ctrl-C. Optuna's own heartbeat
    is for ``study.optimize``, which this module does not use (see :func:`run_search`)."""
    import optuna  # the 'search' extra

    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER)
        if not worker or not _is_gone(worker):
            continue
        try:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        except (ValueError, RuntimeError):  # another worker told it first
            continue
        study.enqueue_trial(trial.params, user_attrs={"redoes": trial.number})
        run = trial.user_attrs.get("run")
        if run:
            shutil.rmtree(run, ignore_errors=True)
        warnings.warn(
            f"trial {trial.number}: its worker (process {worker['pid']}) ended without finishing "
            "it; its settings are trained again.",
            stacklevel=2,
        )


def _run_trial(study, objective) -> None:
    import optuna  # the 'search' extra

    trial = study.ask()
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    except LoralabError as err:  # this trial's settings cannot train; the others still can
        trial.set_user_attr("error", str(err))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        warnings.warn(f"trial {trial.number} failed: {err}", stacklevel=2)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: the trial does not count, its half-trained folder goes, and its
        # settings wait in the study for the next worker, or the same command run again.
        trial.set_user_attr(INTERRUPTED, True)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"redoes": trial.number})
        run = trial.user_attrs.get("run")
        if run:
            shutil.rmtree(run, ignore_errors=True)
        raise
    except BaseException:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    else:
        study.tell(trial, value)


def summarise_study(study, splits, folder: Path) -> dict:
    """Trials best-first; the best trial's run is evaluated on the test split once."""
    import optuna  # the 'search' extra

    stopped = _stopped(study.trials)
    rows = [
        {
            "number": t.number,
            "state": INTERRUPTED if t.number in stopped else t.state.name.lower(),
            "value": t.value,
            "params": t.params,
            "run": None if t.number in stopped else t.user_attrs.get("run"),
            **({"error": t.user_attrs["error"]} if "error" in t.user_attrs else {}),
        }
        for t in study.trials
        if t.state != optuna.trial.TrialState.WAITING
    ]
    rows.sort(key=lambda r: (r["value"] is None, -(r["value"] or 0)))
    summary = {"study": study.study_name, "trials": rows, "best": None}
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        test_file = Path(best.user_attrs["run"]) / "test_metrics.json"
        if not test_file.exists():
            metrics = evaluate_classifier(load_run(best.user_attrs["run"]), splits.test).metrics.to_dict()
            write_json(test_file, metrics)
        test = json.loads(test_file.read_text())
        summary["best"] = {
            "number": best.number,
            "params": best.params,
            "validation_accuracy": best.value,
            "test_accuracy": test["accuracy"],
            "run": best.user_attrs["run"],
        }
    write_json(folder / "search.json", summary)
    return summary
