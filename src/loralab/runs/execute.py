"""Write one run folder: data → method → training → evaluation → a checked run folder.

Every route that produces a run goes through :func:`execute` — ``loralab train``, each run of
a comparison, each point of a sweep, each trial of a search, and ``TextClassifier.save`` (which
hands over a classifier it has already fitted) — so every run folder has the same files:
``config.json``, ``manifest.json``, ``history.csv``, ``metrics.json``, ``predictions/``, a
``model/`` that was reloaded and checked before the run is called completed, and a model card
(``README.md``). A trained model that is no better than a trivial rule is still saved, with
the reasons in the manifest's ``warnings`` (see :mod:`loralab.runs.guards`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState

from loralab.config import TrainConfig
from loralab.data import DataSplits, load_data
from loralab.data.dataset import SPLIT_NAMES
from loralab.data.long_text import TextInput
from loralab.errors import LoralabError, RunError
from loralab.evaluation.evaluate import evaluate_classifier, predictions_frame
from loralab.evaluation.metrics import validation_scores
from loralab.methods import Classifier, FitResult, get_method, load_saved_classifier
from loralab.models.loading import fit_max_length
from loralab.runs.card import write_model_card
from loralab.runs.files import read_json_file
from loralab.runs.folder import MANIFEST, RunFolder, write_csv, write_json
from loralab.runs.guards import quality_warnings
from loralab.runs.tracking import Trackers
from loralab.training.checkpoints import Checkpointing
from loralab.training.checkpoints import latest as latest_checkpoint
from loralab.training.fit import TrainingHooks, fit_method
from loralab.training.loop import cpu_only

# Texts used to check that the saved run predicts exactly like the model in memory.
RELOAD_CHECK_TEXTS = 32
RELOAD_TOLERANCE = 1e-5
CHECKPOINTS = "checkpoints"
# Settings that may differ between an interrupted run and its resumption.
RESUME_MAY_CHANGE = ("threads", "checkpoint_every", "eval_batch_size")


@dataclass
class RunResult:
    folder: Path
    classifier: Classifier
    metrics: dict  # as in metrics.json: split → SplitMetrics.to_dict()
    manifest: dict
    splits: DataSplits


def check_reload(classifier: Classifier, model_dir: Path, texts: list[str]) -> float:
    """Reload the saved model and return the largest probability difference on ``texts``."""
    reloaded = load_saved_classifier(model_dir)
    sample = texts[:RELOAD_CHECK_TEXTS] or ["a text to check the reload with"]
    difference = float(np.abs(classifier.predict_proba(sample) - reloaded.predict_proba(sample)).max())
    if difference > RELOAD_TOLERANCE:
        raise RunError(
            f"{model_dir}: the saved model predicts differently from the trained one "
            f"(max probability difference {difference:.2e}); the run is not usable."
        )
    return difference


def check_resumable(folder: RunFolder, config: TrainConfig, splits: DataSplits) -> None:
    """Refuse to resume a run that is complete, absent, or had other settings or data."""
    manifest = folder.read_manifest()
    if folder.is_completed():
        raise RunError(f"{folder.path}: the run is already completed; there is nothing to resume.")
    saved = manifest.get("requested") or read_json_file(
        folder.path / "config.json", "the run cannot be resumed; train it again with --overwrite"
    )
    method = get_method(config.method)
    now, saved = method.comparable_settings(config.to_dict()), method.comparable_settings(saved)
    changed = [k for k in now if k not in RESUME_MAY_CHANGE and saved.get(k) != now[k]]
    if changed:
        details = "; ".join(f"{k}: {saved.get(k)} → {now[k]}" for k in changed)
        raise RunError(f"{folder.path}: cannot resume with different settings ({details}).")
    if manifest.get("data") != json.loads(json.dumps(splits.summary())):
        raise RunError(
            f"{folder.path}: cannot resume, the data differ from the interrupted run's "
            "(split sizes, label counts or origin)."
        )


def continues(folder: RunFolder, config: TrainConfig, splits: DataSplits) -> bool:
    """Whether ``folder`` holds an interrupted run of ``config`` on ``splits`` with a checkpoint
    to go on from (a comparison started again continues such a run rather than retraining it)."""
    if not (folder.path / MANIFEST).exists() or latest_checkpoint(folder.path / CHECKPOINTS) is None:
        return False
    try:
        check_resumable(folder, config, splits)
    except LoralabError:
        return False
    return True


def resumable(output_dir: str | Path) -> bool:
    """Whether the run in ``output_dir`` stopped with a checkpoint that ``resume`` goes on from."""
    folder = RunFolder(output_dir)
    try:
        return not folder.is_completed() and latest_checkpoint(folder.path / CHECKPOINTS) is not None
    except LoralabError:  # no manifest (stopped before it was written) or an unreadable one
        return False


def _stopped(folder: RunFolder, status: str, **fields: Any) -> None:
    """Record why a run stopped, unless it had already been recorded as completed (a stop that
    lands while the completed manifest is being written leaves the run completed)."""
    if folder.manifest.get("status") == "completed":
        return
    shutil.rmtree(folder.path / "model.tmp", ignore_errors=True)
    folder.finish(status, **fields)


def execute(
    config: TrainConfig,
    data: str | Path | DataSplits,
    output_dir: str | Path,
    *,
    text_col: str = "text",
    label_col: str = "label",
    subset: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    resume: bool = False,
    on_epoch_hook: Callable[[dict], None] | None = None,
    evaluate_splits: Sequence[str] = ("validation", "test"),
    fitted: FitResult | None = None,
    manifest: dict | None = None,
) -> RunResult:
    """Train ``config.method`` on DATA (or take the ``fitted`` result) and write a complete,
    reload-checked run folder.

    Methods that train in epochs checkpoint while they train (see
    :mod:`loralab.training.checkpoints`); ``resume`` continues the interrupted run in
    ``output_dir`` from its last checkpoint, if its configuration and data are unchanged.
    Checkpoints are removed once the run completes. ``on_epoch_hook(row)`` sees each epoch's
    history row (a search uses it to prune), and ``evaluate_splits`` limits the final
    evaluation (a search keeps the test split for the end); empty splits are skipped.
    ``manifest`` adds fields to the run's manifest (the Python API records its classes).

    Launched by ``torchrun`` or ``accelerate launch``, every process trains its share of the
    batches (DDP through Accelerate) and only the main process writes the run folder,
    evaluates (each example once) and saves; the others return a result without metrics.
    """
    distributed = PartialState(cpu=cpu_only())
    method = get_method(config.method)
    method.check(config)
    if config.threads:  # from the start: encoding texts for features or a cache uses them too
        torch.set_num_threads(config.threads)
    splits = (
        data
        if isinstance(data, DataSplits)
        else load_data(data, text_col, label_col, seed=config.seed, subset=subset)
    )
    # Capped before the folder is touched (and the run an --overwrite replaces); the manifest
    # keeps what was asked for, which a resume and a compare's reuse compare with. Methods that
    # never run the encoder (TF-IDF, the majority class) need not read the model.
    requested = config
    config = method.settled(config)
    if method.uses_encoder:
        max_length = fit_max_length(config.model, config.max_length, config.trust_remote_code)
        config = config.replace(max_length=max_length)
    folder = RunFolder(output_dir)
    checkpoints = Checkpointing(folder.path / CHECKPOINTS, config.checkpoint_every, resume=resume)
    if not distributed.is_main_process:
        distributed.wait_for_everyone()  # the main process has set up the folder
        if fitted is None:
            hooks = TrainingHooks(progress=False, checkpoints=checkpoints)
            fitted = fit_method(method, splits, config, validation_scores=validation_scores, hooks=hooks)
        return RunResult(folder.path, fitted.classifier, {}, {}, splits)
    try:
        if resume:
            folder.acquire()
            check_resumable(folder, requested, splits)
        else:
            folder.create(overwrite)
    finally:
        distributed.wait_for_everyone()
    try:
        folder.start(
            config.to_dict(),
            {
                "method": config.method,
                "data": splits.summary(),
                "columns": {"text": text_col, "label": label_col},
                "subset": subset,
                "data_seed": splits.seed,
                "split_digests": {name: splits.split(name).digest() for name in SPLIT_NAMES},
                "processes": distributed.num_processes,
                "requested": requested.to_dict(),
                **(manifest or {}),
            },
        )
    except BaseException:
        # Stopped (a full disk, Ctrl-C, SIGTERM) before the manifest exists: the folder is not a
        # run yet, and left as it is, it would be refused as foreign files when run again; the
        # run an --overwrite was replacing comes back. A resumed run keeps its folder.
        if resume:
            folder.release()
        else:
            folder.discard()
        raise
    history: list[dict] = []
    trackers = Trackers(config.report_to, folder.path, config.to_dict()) if config.report_to else None
    if trackers is not None:
        folder.update(tracking=trackers.where)

    def on_epoch(row: dict) -> None:
        history.append(row)
        write_csv(folder.path / "history.csv", history)
        if trackers is not None:
            epoch_values = {"val/accuracy": row.get("val_accuracy"), "val/loss": row.get("val_loss")}
            epoch_values.update({"train/epoch_loss": row["train_loss"], "epoch": row["epoch"]})
            trackers.log({k: v for k, v in epoch_values.items() if v is not None}, row["step"])
        if on_epoch_hook is not None:
            on_epoch_hook(row)

    training_started = False
    try:
        if fitted is None:
            hooks = TrainingHooks(
                progress=progress,
                on_epoch=on_epoch,
                on_step=trackers.log if trackers is not None else None,
                checkpoints=checkpoints,
            )
            fitted = fit_method(method, splits, config, validation_scores=validation_scores, hooks=hooks)
        else:
            for row in fitted.history:
                on_epoch(row)
        classifier = fitted.classifier
        training_started = True
        # config.json holds the values the run actually used, the method's defaults filled in;
        # the manifest keeps what was asked for (a compare reuses a run on that). A method that
        # does not train reports 0 epochs, which stays "not set" rather than an invalid setting.
        used = {k: v for k, v in fitted.manifest_fields()["resolved"].items() if v}
        write_json(folder.path / "config.json", config.replace(**used).to_dict())
        folder.update(
            **fitted.manifest_fields(),
            text_input=TextInput.of(config).describe() if method.reads_long_text else None,
        )
        metrics: dict = {}
        (folder.path / "predictions").mkdir(exist_ok=True)
        for split in evaluate_splits:
            part = splits.split(split)
            if not len(part):  # a classifier fitted from Python may have no held-out texts
                continue
            evaluation = evaluate_classifier(classifier, part)
            metrics[split] = evaluation.metrics.to_dict()
            predictions_frame(part.texts, evaluation.probabilities, classifier.labels, part.labels).to_csv(
                folder.path / "predictions" / f"{split}.csv", index=False
            )
        write_json(folder.path / "metrics.json", metrics)
        # A model with nothing trained is expected to be trivial; say so only of trained ones.
        if classifier.parameter_counts()[0]:
            folder.update(warnings=quality_warnings(metrics, splits.train.label_counts()))
        if trackers is not None:
            last = history[-1]["step"] if history else 0
            trackers.log(
                {f"{s}/{k}": m[k] for s, m in metrics.items() for k in ("accuracy", "macro_f1", "f1")}, last
            )
        folder.save_model(classifier)
        difference = check_reload(classifier, folder.model_dir, splits.validation.texts or splits.train.texts)
        # Everything a completed run holds is written before its manifest says so: a stop
        # (Ctrl-C, SIGTERM) after that line must find nothing left to mark interrupted.
        final = {"reload_max_difference": difference, "resumed": resume}
        write_model_card(folder.path, {**folder.manifest, **final, "status": "completed"})
        folder.finish("completed", **final)
    except KeyboardInterrupt:
        _stopped(folder, "interrupted")
        raise
    except LoralabError as err:
        if not training_started and not history and not resume:
            # A user mistake found before any work (model name, target modules, rank):
            # leave nothing behind (or the run an --overwrite was replacing). A resumed run
            # keeps its folder and checkpoints.
            shutil.rmtree(folder.path / "model.tmp", ignore_errors=True)
            folder.discard()
        else:
            _stopped(folder, "failed", error=str(err))
        raise
    except BaseException as err:
        _stopped(folder, "failed", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        if trackers is not None:
            trackers.finish()
    shutil.rmtree(folder.path / CHECKPOINTS, ignore_errors=True)
    return RunResult(folder.path, classifier, metrics, folder.manifest, splits)
