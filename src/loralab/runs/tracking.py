"""Experiment tracking through Accelerate's trackers: TensorBoard, MLflow, Weights & Biases.

Each works offline and writes next to the run unless told otherwise: TensorBoard event files
in ``tracking/tensorboard``; MLflow into ``sqlite:///RUN/tracking/mlflow.db`` unless
``$MLFLOW_TRACKING_URI`` names another store; W&B in offline mode under ``tracking/`` unless
``$WANDB_MODE`` says otherwise. The run's manifest records where each one wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from loralab.errors import LoralabError

# The tracker names are checked in loralab.config (TRACKERS), with the rest of the settings.
EXTRA = {"tensorboard": "tensorboard", "mlflow": "mlflow-skinny", "wandb": "wandb"}


def _flat(config: dict) -> dict:
    """Trackers take scalars and strings: lists become comma-joined, dicts JSON, None dropped."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, list):
            value = ",".join(map(str, value))
        elif isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
        if value is not None:
            flat[key] = value
    return flat


class Trackers:
    """The chosen trackers, started for one run; ``log`` sends to all of them."""

    def __init__(self, names: list[str], run_dir: Path, config: dict) -> None:
        from accelerate import tracking  # imports the chosen trackers' packages (the 'tracking' extra)

        folder = run_dir / "tracking"
        folder.mkdir(parents=True, exist_ok=True)
        self.trackers: list = []
        self.where: dict[str, str | dict[str, str]] = {}
        for name in names:
            try:
                if name == "tensorboard":
                    tracker = tracking.TensorBoardTracker("tensorboard", folder)
                    self.where[name] = str(folder / "tensorboard")
                elif name == "mlflow":
                    import mlflow  # the 'tracking' extra

                    uri = (
                        os.environ.get("MLFLOW_TRACKING_URI")
                        or f"sqlite:///{(folder / 'mlflow.db').resolve()}"
                    )
                    mlflow.set_tracking_uri(uri)
                    tracker = tracking.MLflowTracker(experiment_name="loralab", run_name=run_dir.name)
                else:
                    os.environ.setdefault("WANDB_MODE", "offline")
                    os.environ.setdefault("WANDB_DIR", str(folder))
                    tracker = tracking.WandBTracker(run_dir.name)
                    self.where[name] = os.environ["WANDB_DIR"]
            except ImportError:
                raise LoralabError(
                    f"--report-to {name} needs {EXTRA[name]} installed (pip install 'loralab[tracking]')."
                ) from None
            tracker.start()
            tracker.store_init_configuration(_flat(config))
            if name == "mlflow":
                self.where[name] = {"uri": uri, "run_id": tracker.active_run.info.run_id}
            self.trackers.append(tracker)

    def log(self, values: dict, step: int) -> None:
        for tracker in self.trackers:
            tracker.log(values, step=step)

    def finish(self) -> None:
        for tracker in self.trackers:
            tracker.finish()
