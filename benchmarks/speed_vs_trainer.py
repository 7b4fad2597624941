"""LoRA training and prediction speed: 🤗 Trainer + PEFT against loralab, same machine, model,
data, hyperparameters and epochs.

    python benchmarks/speed_vs_trainer.py ../shared/data/rotten_tomatoes [--epochs 3]

Recipes, each in its own process (so peak memory is its own):
  a  the seeds' recipe: Trainer + PEFT, ``padding="max_length"`` (128), random batches;
  b  a well-configured Trainer + PEFT: dynamic padding, ``train_sampling_strategy="group_by_length"``;
  c  loralab with its defaults (``loralab.runs.train.train_run``, method ``lora``);
  d  loralab with ``--lora-layers K`` (LoRA on the top K layers, the frozen ones cached; the
     caching pass counts as training time);
  e  recipe b with ``bf16=True`` (the Trainer's CPU autocast), for the precision loralab's
     ``auto`` picks on CPUs with bf16 instructions.
All use LoRA r=8, alpha=16, dropout 0.1 on query/value, lr 1e-3, batch 32, 3 epochs, linear
schedule with 6 % warm-up, weight decay 0.01, max length 128, seed 42. Training time excludes
evaluation. Useful-token utilisation = non-padding tokens/s × training FLOP per token / the
GEMM rate, in the precision the recipe trained in, measured at the start of the run.
Prediction: 🤗 ``pipeline`` on the PEFT model against ``loralab predict`` (the run's
classifier, fp32), on the test split. Time to accuracy: the
training time (evaluation excluded) until the validation accuracy, measured after every epoch,
first reaches ``--target`` (0.80).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

LR, BATCH, RANK, ALPHA, DROPOUT, MAX_LENGTH, SEED = 1e-3, 32, 8, 16, 0.1, 128, 42


def gemm_peak(dtype_name: str = "fp32") -> float:
    """Best GEMM rate (GFLOP/s) over a few square sizes, with the threads torch uses."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    best = 0.0
    for n in (1024, 2048):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        for _ in range(3):
            a @ b
        begin, repeats = time.perf_counter(), 10
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - begin) / 1e9)
    return best


def training_flop_per_token(model_name: str) -> float:
    """2 FLOP per weight of the encoder's linear layers for the forward pass, and as much again
    for the backward pass to the inputs (LoRA needs no gradients of the frozen weights)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_name)
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = layers * (4 * h * h + 2 * h * i)
    return 2 * (2 * linear)


def read(data: Path, split: str) -> pd.DataFrame:
    return pd.read_csv(data / f"{split}.csv")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_to_target(curve: list[dict], target: float) -> float | None:
    """Training seconds when the validation accuracy first reached ``target`` (None: never)."""
    return next((row["seconds"] for row in curve if row["val_accuracy"] >= target), None)


def trainer_recipe(data: Path, model_name: str, epochs: int, recipe: str) -> dict:
    from loralab.models.loading import resolve_model

    model_name = resolve_model(model_name)  # the same local files loralab reads
    import torch
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        pipeline,
    )

    torch.manual_seed(SEED)
    labels = sorted(read(data, "train")["label"].unique())
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_name,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    model = get_peft_model(
        model,
        LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=RANK,
            lora_alpha=ALPHA,
            lora_dropout=DROPOUT,
            target_modules=["query", "value"],
        ),
    )
    padding = "max_length" if recipe == "a" else False

    def encode(frame: pd.DataFrame) -> Dataset:
        dataset = Dataset.from_dict(
            {"text": frame["text"].tolist(), "label": [labels.index(x) for x in frame["label"]]}
        )
        return dataset.map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=MAX_LENGTH, padding=padding),
            batched=True,
            remove_columns=["text"],
        )

    train = encode(read(data, "train"))
    validation = read(data, "validation")

    class Curve(TrainerCallback):
        """Validation accuracy after every epoch; its time is kept out of the training time."""

        def __init__(self) -> None:
            self.begin, self.eval_seconds, self.rows = time.perf_counter(), 0.0, []

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            start = time.perf_counter()
            seconds = start - self.begin - self.eval_seconds  # training time so far
            model.eval()
            with torch.inference_mode():
                predicted = []
                for i in range(0, len(validation), 128):
                    batch = tokenizer(
                        validation["text"].tolist()[i : i + 128],
                        truncation=True,
                        max_length=MAX_LENGTH,
                        padding=True,
                        return_tensors="pt",
                    )
                    predicted += model(**batch).logits.argmax(-1).tolist()
            model.train()
            truth = validation["label"].tolist()
            accuracy = float(np.mean([labels[p] == y for p, y in zip(predicted, truth, strict=True)]))
            self.eval_seconds += time.perf_counter() - start
            self.rows.append({"epoch": len(self.rows) + 1, "seconds": seconds, "val_accuracy": accuracy})

    curve = Curve()
    useful_tokens = sum(
        min(len(x), MAX_LENGTH) for x in tokenizer(read(data, "train")["text"].tolist())["input_ids"]
    )
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=BATCH,
            per_device_eval_batch_size=128,
            learning_rate=LR,
            num_train_epochs=epochs,
            warmup_steps=0.06,  # a float below 1 is a ratio of the total steps in v5
            weight_decay=0.01,
            lr_scheduler_type="linear",
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            seed=SEED,
            use_cpu=True,
            disable_tqdm=True,
            train_sampling_strategy="random" if recipe == "a" else "group_by_length",
            bf16=recipe == "e",
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train,
            data_collator=DataCollatorWithPadding(tokenizer),
            callbacks=[curve],
        )
        begin = curve.begin = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - begin - curve.eval_seconds
    model.eval()
    test = read(data, "test")
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    begin = time.perf_counter()
    answers = classify(test["text"].tolist(), batch_size=64, truncation=True, max_length=MAX_LENGTH)
    predict_seconds = time.perf_counter() - begin
    accuracy = float(np.mean([a["label"] == y for a, y in zip(answers, test["label"], strict=True)]))
    return {
        "train_seconds": train_seconds,
        "train_texts": len(train) * epochs,
        "useful_tokens": useful_tokens * epochs,
        "test_accuracy": accuracy,
        "predict_seconds": predict_seconds,
        "predict_texts": len(test),
        "curve": curve.rows,
        "precision": "bf16" if recipe == "e" else "fp32",
    }


def loralab_recipe(data: Path, model_name: str, epochs: int, lora_layers: int | None = None) -> dict:
    from loralab.config import TrainConfig
    from loralab.runs.predict import load_for_prediction
    from loralab.runs.train import train_run

    config = TrainConfig(
        method="lora",
        model=model_name,
        epochs=epochs,
        lr=LR,
        batch_size=BATCH,
        lora_rank=RANK,
        lora_alpha=ALPHA,
        lora_layers=lora_layers,
    )
    with tempfile.TemporaryDirectory() as tmp:
        run = train_run(data, config, Path(tmp) / "run", progress=False)
        history = pd.read_csv(Path(tmp) / "run" / "history.csv")
        classifier = load_for_prediction(Path(tmp) / "run")  # what loralab predict uses
        test = read(data, "test")
        begin = time.perf_counter()
        predicted = classifier.predict(test["text"].tolist())
        predict_seconds = time.perf_counter() - begin
    cache = run.manifest.get("cache_seconds") or 0.0
    seconds = cache + history["epoch_seconds"].cumsum()
    return {
        "train_seconds": float(seconds.iloc[-1]),
        "cache_seconds": cache,
        "curve": [
            {"epoch": int(e), "seconds": float(t), "val_accuracy": float(a)}
            for e, t, a in zip(history["epoch"], seconds, history["val_accuracy"], strict=True)
        ],
        "train_texts": run.manifest["data"]["splits"]["train"]["size"] * epochs,
        "useful_tokens": run.manifest.get("train_tokens"),
        "test_accuracy": run.metrics["test"]["accuracy"],
        "best_epoch": run.manifest.get("best_epoch"),
        "predict_seconds": predict_seconds,
        "predict_texts": len(test),
        "predict_accuracy": float(np.mean(np.array(predicted) == test["label"].to_numpy())),
        "precision": run.manifest["resolved"]["precision"],
    }


def child(args) -> None:
    data = Path(args.data)
    if args.recipe in ("a", "b", "e"):
        result = trainer_recipe(data, args.model, args.epochs, args.recipe)
    else:
        layers = args.lora_layers if args.recipe == "d" else None
        result = loralab_recipe(data, args.model, args.epochs, layers)
    result["peak_rss_mib"] = peak_rss_mib()
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--recipes", default="a,b,c,d,e")
    parser.add_argument("--lora-layers", type=int, default=2, help="K for recipe d (2).")
    parser.add_argument("--target", type=float, default=0.80, help="Validation accuracy to reach.")
    parser.add_argument("--model", default=None, help="Default: loralab's embedded MiniLM.")
    parser.add_argument("--recipe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model is None:
        from loralab.config import TrainConfig

        args.model = TrainConfig().model
    if args.recipe:
        return child(args)
    import torch

    peaks = {"fp32": gemm_peak("fp32")}
    from loralab.training.precision import cpu_has_bf16

    if cpu_has_bf16():
        peaks["bf16"] = gemm_peak("bf16")
    from loralab.models.loading import resolve_model

    flop = training_flop_per_token(resolve_model(args.model))
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "gemm_peak_gflops": {name: round(value, 1) for name, value in peaks.items()},
        "training_mflop_per_token": round(flop / 1e6, 1),
        "epochs": args.epochs,
        "target_val_accuracy": args.target,
        "lora_layers_d": args.lora_layers,
        "recipes": {},
    }
    for recipe in args.recipes.split(","):
        command = [sys.executable, __file__, args.data, "--epochs", str(args.epochs), "--recipe", recipe]
        command += ["--model", args.model, "--lora-layers", str(args.lora_layers)]
        output = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
        lines = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
        if output.returncode != 0 or not lines:
            raise SystemExit(f"recipe {recipe} failed:\n{output.stderr[-3000:]}")
        r = json.loads(lines[-1][len("RESULT ") :])
        r["texts_per_second"] = r["train_texts"] / r["train_seconds"]
        r["useful_tokens_per_second"] = r["useful_tokens"] / r["train_seconds"]
        r["utilisation"] = r["useful_tokens_per_second"] * flop / (peaks[r["precision"]] * 1e9)
        r["predict_texts_per_second"] = r["predict_texts"] / r["predict_seconds"]
        r["seconds_to_target"] = time_to_target(r["curve"], args.target)
        results["recipes"][recipe] = r
        print(recipe, json.dumps(r), flush=True)
    got = results["recipes"]
    if {"a", "b", "c"} <= set(got):
        results["ratios"] = {
            "train_c_over_a": got["c"]["texts_per_second"] / got["a"]["texts_per_second"],
            "train_c_over_b": got["c"]["texts_per_second"] / got["b"]["texts_per_second"],
            "predict_c_over_pipeline_b": got["c"]["predict_texts_per_second"]
            / got["b"]["predict_texts_per_second"],
        }
    for first, second in (("d", "b"), ("c", "e")):
        if {first, second} <= set(got):
            results.setdefault("ratios", {})[f"train_{first}_over_{second}"] = (
                got[first]["texts_per_second"] / got[second]["texts_per_second"]
            )
    out = Path(__file__).with_name("results") / f"speed_vs_trainer-{Path(args.data.rstrip('/')).name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
