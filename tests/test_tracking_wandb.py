"""--report-to wandb, in offline mode: what W&B recorded, read back from its run file.

W&B writes an offline run as one ``run-ID.wandb`` file: LevelDB's log format (32 KiB blocks
of checksummed, possibly fragmented records) holding ``wandb.proto`` ``Record`` messages. The
Python package no longer ships a reader for it (its service is written in Go), so the few
lines below read it, the way ``wandb sync`` does before uploading.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from loralab.config import TrainConfig
from loralab.runs.train import train_run

BLOCK = 32768
RECORD_HEADER = 7  # crc32 (4 bytes), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path):
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, _magic, _version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B", f"{path} is not a W&B run file"
    position, pending = 7, b""
    while position + RECORD_HEADER <= len(data):
        left = BLOCK - position % BLOCK
        if left < RECORD_HEADER:  # a block's tail too short for a header is padding
            position += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position : position + RECORD_HEADER])
        chunk = data[position + RECORD_HEADER : position + RECORD_HEADER + length]
        position += RECORD_HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk)
            pending = b""
            yield record
        elif kind in (FIRST, MIDDLE):
            pending += chunk


def items(update) -> dict:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in update}


def test_wandb_offline_receives_config_per_step_loss_and_final_metrics(
    synthetic_dir, tiny_bert, tmp_path, monkeypatch
):
    pytest.importorskip("wandb")
    for name in ("WANDB_MODE", "WANDB_DIR", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = TrainConfig(method="lora", model=str(tiny_bert), epochs=2, lr=5e-3, batch_size=16,
                         report_to="wandb")  # fmt: skip
    result = train_run(synthetic_dir, config, tmp_path / "run", progress=False)
    where = Path(json.loads((tmp_path / "run" / "manifest.json").read_text())["tracking"]["wandb"])
    [run_file] = where.glob("wandb/offline-run-*/run-*.wandb")
    configuration, history, summary = {}, [], {}
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            configuration.update(items(record.run.config.update))
        elif kind == "config":
            configuration.update(items(record.config.update))
        elif kind == "history":
            history.append(items(record.history.item))
        elif kind == "summary":
            summary.update(items(record.summary.update))
    assert configuration["method"] == "lora" and configuration["lora_rank"] == 8, configuration
    steps = 2 * 10  # 160 texts in batches of 16, two epochs
    loss_steps = [row["_step"] for row in history if "train/loss" in row]
    assert loss_steps == list(range(1, steps + 1))
    assert all(row["train/loss"] > 0 for row in history if "train/loss" in row)
    assert summary["test/accuracy"] == pytest.approx(result.metrics["test"]["accuracy"])
    assert summary["validation/macro_f1"] == pytest.approx(result.metrics["validation"]["macro_f1"])
