"""Prediction throughput and accuracy of one LoRA run: 🤗 pipeline against loralab's backends.

    python benchmarks/predict_backends.py RUN DATA [--repeats 3] [--backends pipeline,torch,…] [--out F]

On the test split of DATA, in one process, each timed ``--repeats`` times (best kept) after
one warm-up pass:
  pipeline     🤗 ``pipeline("text-classification", batch_size=64)`` on the run's PEFT model;
  pipeline-bf16  the same on the model with its adapters merged and cast to bf16, as
               ``benchmarks/speed_vs_trainer.py`` does (on CPUs with bf16 only);
  torch        ``loralab predict`` (adapters merged, first-token last layer, sorted batches);
  torch-bf16   ``loralab predict --precision bf16`` (bf16 autocast; on CPUs with bf16 only);
  onnx         ``loralab predict --backend onnx`` (ONNX Runtime, fp32);
  onnx-int8    ``loralab predict --backend onnx --int8`` (dynamic int8 MatMul weights).
The ONNX files are made in a temporary copy of the run, so the run folder is not changed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def timed(predict, texts: list[str], repeats: int) -> tuple[float, list[str]]:
    labels = predict(texts)
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        predict(texts)
        best = min(best, time.perf_counter() - begin)
    return len(texts) / best, labels


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run")
    parser.add_argument("data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", help="comma-separated subset of the backends above (default: all)")
    parser.add_argument("--out", type=Path, help="result file (default: results/predict_backends-DATA.json)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import pipeline

    from loralab.runs.predict import load_for_prediction
    from loralab.runs.train import load_run
    from loralab.training.precision import cpu_has_bf16

    test = pd.read_csv(Path(args.data) / "test.csv")
    texts, truth = test["text"].astype(str).tolist(), test["label"].astype(str).to_numpy()
    results = {
        "machine": f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "run": args.run,
        "texts": len(texts),
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(args.run, run, ignore=shutil.ignore_patterns("onnx", "predictions", "*.png"))
        peft = load_run(run)
        classify = pipeline("text-classification", model=peft.model, tokenizer=peft.tokenizer, device=-1)

        def with_pipeline(batch: list[str], classify=classify) -> list[str]:
            answers = classify(batch, batch_size=64, truncation=True, max_length=peft.config.max_length)
            return [a["label"] for a in answers]

        bf16_pipeline = {}
        if cpu_has_bf16():
            merged = load_run(run).model.merge_and_unload().eval().to(torch.bfloat16)
            in_bf16 = pipeline("text-classification", model=merged, tokenizer=peft.tokenizer, device=-1)
            bf16_pipeline["pipeline-bf16"] = lambda batch: with_pipeline(batch, in_bf16)
        backends = {
            "pipeline": with_pipeline,
            **bf16_pipeline,
            "torch": load_for_prediction(run).predict,
            **({"torch-bf16": load_for_prediction(run, precision="bf16").predict} if cpu_has_bf16() else {}),
            "onnx": load_for_prediction(run, "onnx").predict,
            "onnx-int8": load_for_prediction(run, "onnx", int8=True).predict,
        }
        chosen = args.backends.split(",") if args.backends else list(backends)
        for name in chosen:
            predict = backends[name]
            rate, labels = timed(predict, texts, args.repeats)
            accuracy = float(np.mean(np.array(labels) == truth))
            results["backends"][name] = {"texts_per_second": rate, "test_accuracy": accuracy}
            print(f"{name:10s} {rate:7.1f} texts/s  accuracy {accuracy:.4f}", flush=True)
    got = results["backends"]
    if "pipeline" in got:
        pipeline_rate = got["pipeline"]["texts_per_second"]
        results["over_pipeline"] = {name: r["texts_per_second"] / pipeline_rate for name, r in got.items()}
    if "torch-bf16" in got and "pipeline-bf16" in got:
        results["bf16_over_pipeline_bf16"] = (
            got["torch-bf16"]["texts_per_second"] / got["pipeline-bf16"]["texts_per_second"]
        )
    default = (
        Path(__file__).with_name("results") / f"predict_backends-{Path(args.data.rstrip('/')).name}.json"
    )
    out = args.out or default
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if "over" in k}, indent=2))


if __name__ == "__main__":
    main()
