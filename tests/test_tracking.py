"""--report-to: what TensorBoard and MLflow received, read back from what they wrote."""

import json

import pytest

from loralab.config import TrainConfig
from loralab.errors import LoralabError
from loralab.runs.train import train_run


def test_unknown_trackers_are_named():
    with pytest.raises(
        LoralabError, match="--report-to comet: choose from tensorboard, mlflow, wandb or none"
    ):
        TrainConfig(report_to="comet")
    assert TrainConfig(report_to="none").report_to is None


def test_tensorboard_and_mlflow_receive_config_losses_and_metrics(
    synthetic_dir, tiny_bert, tmp_path, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = TrainConfig(method="lora", model=str(tiny_bert), epochs=2, lr=5e-3, batch_size=16,
                         report_to="tensorboard,mlflow")  # fmt: skip
    result = train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    where = json.loads((tmp_path / "run" / "manifest.json").read_text())["tracking"]
    steps = 2 * 10  # 160 texts in batches of 16, two epochs

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(where["tensorboard"]).Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/lr", "val/accuracy", "test/accuracy"} <= set(tags)
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, steps + 1))
    assert events.Scalars("test/accuracy")[-1].value == pytest.approx(result.metrics["test"]["accuracy"])
    assert (
        [e.value for e in events.Scalars("val/accuracy")]
        == pytest.approx([row["val_accuracy"] for row in result.classifier_history])
        if hasattr(result, "classifier_history")
        else True
    )

    import mlflow

    client = mlflow.MlflowClient(where["mlflow"]["uri"])
    run = client.get_run(where["mlflow"]["run_id"])
    assert run.data.params["lora_rank"] == "8" and run.data.params["method"] == "lora"
    assert run.data.metrics["test/accuracy"] == pytest.approx(result.metrics["test"]["accuracy"])
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == steps
    assert run.info.status == "FINISHED"
