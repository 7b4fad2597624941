"""Train one run end to end: data → method → training → evaluation → a checked run folder."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from loralab.config import TrainConfig
from loralab.data import DataSplits, LabelledTexts, load_data
from loralab.errors import LoralabError, RunError
from loralab.evaluation.metrics import classification_metrics
from loralab.methods import Classifier, get_method, load_saved_classifier
from loralab.runs.folder import RunFolder, write_csv, write_json
from loralab.runs.tracking import Trackers
from loralab.training.checkpoints import Checkpointing

# Texts used to check that the saved run predicts exactly like the model in memory.
RELOAD_CHECK_TEXTS = 32
RELOAD_TOLERANCE = 1e-5


@dataclass
class RunResult:
    folder: Path
    classifier: Classifier
    metrics: dict
    manifest: dict
    splits: DataSplits


def evaluate_classifier(
    classifier: Classifier, part: LabelledTexts, batch_size: int | None = None
) -> tuple[dict, np.ndarray, float]:
    """Metrics, probabilities and inference texts/s of ``classifier`` on ``part``."""
    start = time.perf_counter()
    probs = classifier.predict_proba(part.texts, batch_size)
    seconds = time.perf_counter() - start
    predicted = [classifier.labels[i] for i in probs.argmax(axis=-1)]
    metrics = classification_metrics(part.labels, predicted, classifier.labels)
    metrics["inference_seconds"] = seconds
    metrics["inference_texts_per_second"] = len(part) / seconds if seconds else float("nan")
    return metrics, probs, seconds


def predictions_frame(texts: list[str], probs: np.ndarray, labels: list[str], true=None) -> pd.DataFrame:
    frame = pd.DataFrame({"text": texts})
    if true is not None:
        frame["label"] = true
    frame["predicted"] = [labels[i] for i in probs.argmax(axis=-1)]
    frame["probability"] = probs.max(axis=-1)
    for i, name in enumerate(labels):
        frame[f"p_{name}"] = probs[:, i]
    return frame


def check_reload(classifier: Classifier, model_dir: Path, texts: list[str]) -> float:
    """Reload the saved model and return the largest probability difference on ``texts``."""
    reloaded = load_saved_classifier(model_dir)
    sample = texts[:RELOAD_CHECK_TEXTS]
    difference = float(np.abs(classifier.predict_proba(sample) - reloaded.predict_proba(sample)).max())
    if difference > RELOAD_TOLERANCE:
        raise RunError(
            f"{model_dir}: the saved model predicts differently from the trained one "
            f"(max probability difference {difference:.2e}); the run is not usable."
        )
    return difference


CHECKPOINTS = "checkpoints"
# Settings that may differ between an interrupted run and its resumption.
RESUME_MAY_CHANGE = ("threads", "checkpoint_every", "eval_batch_size")


def _check_resumable(folder: RunFolder, config: TrainConfig, splits: DataSplits) -> None:
    """Refuse to resume a run that is complete, absent, or had other settings or data."""
    manifest = folder.read_manifest()
    if manifest.get("status") == "completed":
        raise RunError(f"{folder.path}: the run is already completed; there is nothing to resume.")
    saved = json.loads((folder.path / "config.json").read_text())
    now = config.to_dict()
    changed = [k for k in now if k not in RESUME_MAY_CHANGE and saved.get(k) != now[k]]
    if changed:
        details = "; ".join(f"{k}: {saved.get(k)} → {now[k]}" for k in changed)
        raise RunError(f"{folder.path}: cannot resume with different settings ({details}).")
    if manifest.get("data") != json.loads(json.dumps(splits.summary())):
        raise RunError(
            f"{folder.path}: cannot resume, the data differ from the interrupted run's "
            "(split sizes, label counts or origin)."
        )


def train_run(
    data: str | Path | DataSplits,
    config: TrainConfig,
    output_dir: str | Path,
    *,
    text_col: str = "text",
    label_col: str = "label",
    subset: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    resume: bool = False,
    on_epoch_hook=None,
    evaluate_splits: tuple[str, ...] = ("validation", "test"),
) -> RunResult:
    """Train ``config.method`` on DATA and write a complete, reload-checked run folder.

    Neural methods checkpoint while they train (see :mod:`loralab.training.checkpoints`);
    ``resume`` continues the interrupted run in ``output_dir`` from its last checkpoint, if
    its configuration and data are unchanged. Checkpoints are removed once the run completes.
    ``on_epoch_hook(row)`` sees each epoch's history row (a search uses it to prune), and
    ``evaluate_splits`` limits the final evaluation (a search keeps the test split for the end).

    Launched by ``torchrun`` or ``accelerate launch``, every process trains its share of the
    batches (DDP through Accelerate) and only the main process writes the run folder,
    evaluates (each example once) and saves; the others return a result without metrics.
    """
    from accelerate import PartialState

    from loralab.training.loop import cpu_only

    distributed = PartialState(cpu=cpu_only())
    method = get_method(config.method)
    method.check(config)
    if config.lora_layers is not None and config.method not in ("lora", "lora-scratch"):
        raise LoralabError(f"--lora-layers applies to --method lora or lora-scratch, not {config.method}.")
    splits = (
        data
        if isinstance(data, DataSplits)
        else load_data(data, text_col, label_col, seed=config.seed, subset=subset)
    )
    folder = RunFolder(output_dir)
    checkpoints = Checkpointing(folder.path / CHECKPOINTS, config.checkpoint_every, resume=resume)
    if not distributed.is_main_process:
        distributed.wait_for_everyone()  # the main process has set up the folder
        classifier, _ = method.fit(splits, config, progress=False, checkpoints=checkpoints)
        return RunResult(folder.path, classifier, {}, {}, splits)
    try:
        if resume:
            _check_resumable(folder, config, splits)
        else:
            folder.create(overwrite)
    finally:
        distributed.wait_for_everyone()
    folder.start(
        config.to_dict(),
        {
            "method": config.method,
            "data": splits.summary(),
            "columns": {"text": text_col, "label": label_col},
            "processes": distributed.num_processes,
        },
    )
    write_csv_rows: list[dict] = []
    trackers = Trackers(config.report_to, folder.path, config.to_dict()) if config.report_to else None
    if trackers is not None:
        folder.update(tracking=trackers.where)

    def on_epoch(row: dict) -> None:
        write_csv_rows.append(row)
        write_csv(folder.path / "history.csv", write_csv_rows)
        if trackers is not None:
            epoch_values = {"val/accuracy": row.get("val_accuracy"), "val/loss": row.get("val_loss")}
            epoch_values.update({"train/epoch_loss": row["train_loss"], "epoch": row["epoch"]})
            trackers.log({k: v for k, v in epoch_values.items() if v is not None}, row["step"])
        if on_epoch_hook is not None:
            on_epoch_hook(row)

    training_started = False
    try:
        classifier, facts = method.fit(
            splits,
            config,
            progress=progress,
            on_epoch=on_epoch,
            checkpoints=checkpoints,
            on_step=trackers.log if trackers is not None else None,
        )
        training_started = True
        trainable, total = classifier.parameter_counts()
        folder.update(
            trainable_parameters=trainable,
            total_parameters=total,
            trainable_share=trainable / total if total else None,
            train_seconds=facts.get("train_seconds"),
            train_tokens=facts.get("train_tokens"),
            cache_seconds=facts.get("cache_seconds") or None,
            resolved={
                "lr": facts.get("lr"),
                "epochs": facts.get("epochs"),
                "batch_size": facts.get("batch_size"),
                "precision": facts.get("precision"),
            },
            head_modules=facts.get("head_modules"),
            newly_initialised=facts.get("newly_initialised"),
            best_epoch=facts.get("best_epoch"),
            stopped_early=facts.get("stopped_early"),
            **facts.get("details", {}),  # what only some methods record (step floor, SetFit pairs, pooling)
            features=facts.get("features"),
        )
        metrics: dict = {}
        (folder.path / "predictions").mkdir(exist_ok=True)
        for split in evaluate_splits:
            part = splits.split(split)
            split_metrics, probs, _ = evaluate_classifier(classifier, part)
            metrics[split] = split_metrics
            predictions_frame(part.texts, probs, classifier.labels, part.labels).to_csv(
                folder.path / "predictions" / f"{split}.csv", index=False
            )
        write_json(folder.path / "metrics.json", metrics)
        if trackers is not None:
            last = write_csv_rows[-1]["step"] if write_csv_rows else 0
            trackers.log(
                {f"{s}/{k}": m[k] for s, m in metrics.items() for k in ("accuracy", "macro_f1", "f1")}, last
            )
        folder.save_model(classifier)
        difference = check_reload(classifier, folder.model_dir, splits.validation.texts or splits.train.texts)
        folder.finish("completed", reload_max_difference=difference, resumed=resume)
        shutil.rmtree(folder.path / CHECKPOINTS, ignore_errors=True)
    except KeyboardInterrupt:
        shutil.rmtree(folder.path / "model.tmp", ignore_errors=True)
        folder.finish("interrupted")
        raise
    except LoralabError as err:
        shutil.rmtree(folder.path / "model.tmp", ignore_errors=True)
        if not training_started and not write_csv_rows:
            # A user mistake found before any work (model name, target modules, rank):
            # leave nothing behind.
            shutil.rmtree(folder.path, ignore_errors=True)
        else:
            folder.finish("failed", error=str(err))
        raise
    except BaseException as err:
        shutil.rmtree(folder.path / "model.tmp", ignore_errors=True)
        folder.finish("failed", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        if trackers is not None:
            trackers.finish()
    return RunResult(folder.path, classifier, metrics, folder.manifest, splits)


def load_run(run_dir: str | Path) -> Classifier:
    """Load the classifier of a completed run folder."""
    folder = RunFolder(run_dir)
    if (folder.path / "compare.json").exists():
        runs = sorted(str(p.parent.relative_to(folder.path)) for p in folder.path.rglob("manifest.json"))
        raise RunError(
            f"{folder.path}: is a compare folder, not a run; pass one of its runs ({', '.join(runs[:8])})."
        )
    manifest = folder.read_manifest()
    if manifest.get("status") != "completed":
        raise RunError(
            f"{folder.path}: the run is '{manifest.get('status')}', not completed; it has no usable model."
        )
    if not folder.model_dir.exists():
        raise RunError(f"{folder.path}: the run has no model/ folder.")
    return load_saved_classifier(folder.model_dir)
