"""LoRA training and prediction speed: 🤗 Trainer + PEFT against loralab, same machine, model,
data, hyperparameters and epochs.

    python benchmarks/speed_vs_trainer.py ../shared/data/rotten_tomatoes [--epochs 3]
    python benchmarks/speed_vs_trainer.py ../shared/data/imdb --max-length 512   # recipes b,c,e,f
    python benchmarks/speed_vs_trainer.py ../shared/data/rotten_tomatoes --subset 200 --epochs 1 \
        --recipes b,f --out /tmp/check.json                                       # a quick check

Recipes, each in its own process (so peak memory is its own):
  a  the seeds' recipe: Trainer + PEFT, ``padding="max_length"`` (128), random batches;
  b  a well-configured Trainer + PEFT: dynamic padding, ``train_sampling_strategy="group_by_length"``;
  c  loralab (``loralab.runs.train.train_run``, method ``lora``) with the settings below;
  d  loralab with ``--lora-layers K`` (LoRA on the top K layers, the frozen ones cached; the
     caching pass counts as training time);
  e  recipe b with ``bf16=True`` (the Trainer's CPU autocast), for the precision loralab's
     ``auto`` picks on CPUs with bf16 instructions;
  f  loralab with ``--precision fp32``, the pair of recipe b.
Training is compared at equal precision: f against b (fp32) and c against e (bf16, when
``auto`` resolves to bf16 here; the ratio is left out otherwise).
All use LoRA r=8, alpha=16, dropout 0.1 on query/value, lr 1e-3, batch 32, 3 epochs, linear
schedule with 6 % warm-up, weight decay 0.01, seed 42, ``--max-length`` tokens (128) keeping
the head of longer texts on both sides (the Trainer tokenises with ``truncation=True``,
loralab trains with ``--truncation head``). Without ``--recipes`` a run at 128 tokens does
a–f, a longer one b,c,e,f (recipe a pads every text to the maximum length: hours at 512).
``--subset N`` cuts every split to a stratified N rows (loralab's ``--subset``, used by both
sides). Training time excludes evaluation. Useful-token utilisation = non-padding tokens/s ×
training FLOP per token / the GEMM rate, in the precision the recipe trained in, measured
at the start of the run.
Prediction, on the test split, at both precisions in every recipe: the 🤗 ``pipeline`` on the
PEFT model with its adapters merged (``merge_and_unload``, as one deploys it), in fp32 and
with the model cast to bf16 (what ``pipeline(..., dtype=torch.bfloat16)`` does at load; the
pipeline has no autocast option), against ``loralab predict`` and ``loralab predict
--precision bf16``. Peak memory: ``train_peak_rss_mib`` is the process's peak when training
and its evaluation ended, ``peak_rss_mib`` includes prediction. Time to accuracy: the
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

LR, BATCH, RANK, ALPHA, DROPOUT, SEED = 1e-3, 32, 8, 16, 0.1, 42
TRAINER_RECIPES = ("a", "b", "e")
# Pairs trained at the same precision: (loralab, Trainer).
SAME_PRECISION = {"fp32": ("f", "b"), "bf16": ("c", "e")}


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


def read_splits(data: Path, subset: int | None) -> dict[str, pd.DataFrame]:
    """The train/validation/test frames as loralab reads them (with ``subset``: the same
    stratified rows), so both sides train and test on the same texts."""
    from loralab.data import load_data

    splits = load_data(data, subset=subset)
    return {
        name: pd.DataFrame({"text": list(part.texts), "label": list(part.labels)})
        for name, part in (("train", splits.train), ("validation", splits.validation), ("test", splits.test))
    }


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_to_target(curve: list[dict], target: float) -> float | None:
    """Training seconds when the validation accuracy first reached ``target`` (None: never)."""
    return next((row["seconds"] for row in curve if row["val_accuracy"] >= target), None)


def trainer_recipe(
    frames: dict[str, pd.DataFrame], model_name: str, epochs: int, recipe: str, max_length: int
) -> dict:
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
    labels = sorted(frames["train"]["label"].unique())
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
            lambda b: tokenizer(b["text"], truncation=True, max_length=max_length, padding=padding),
            batched=True,
            remove_columns=["text"],
        )

    train = encode(frames["train"])
    validation = frames["validation"]

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
                        max_length=max_length,
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
        min(len(x), max_length) for x in tokenizer(frames["train"]["text"].tolist())["input_ids"]
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
    train_peak = peak_rss_mib()
    test = frames["test"]
    merged = model.merge_and_unload().eval()
    prediction = {}
    for precision in prediction_precisions():
        if precision == "bf16":
            merged = merged.to(torch.bfloat16)
        classify = pipeline("text-classification", model=merged, tokenizer=tokenizer, device=-1)
        begin = time.perf_counter()
        answers = classify(test["text"].tolist(), batch_size=64, truncation=True, max_length=max_length)
        seconds = time.perf_counter() - begin
        prediction[precision] = {
            "seconds": seconds,
            "texts_per_second": len(test) / seconds,
            "accuracy": float(
                np.mean([a["label"] == y for a, y in zip(answers, test["label"], strict=True)])
            ),
        }
    return {
        "train_seconds": train_seconds,
        "train_texts": len(train) * epochs,
        "useful_tokens": useful_tokens * epochs,
        "test_accuracy": prediction["fp32"]["accuracy"],
        "train_peak_rss_mib": train_peak,
        "predict": prediction,
        "predict_texts": len(test),
        "curve": curve.rows,
        "precision": "bf16" if recipe == "e" else "fp32",
    }


def prediction_precisions() -> list[str]:
    from loralab.training.precision import cpu_has_bf16

    return ["fp32", "bf16"] if cpu_has_bf16() else ["fp32"]


def loralab_recipe(
    data: Path,
    subset: int | None,
    test: pd.DataFrame,
    model_name: str,
    epochs: int,
    max_length: int,
    *,
    precision: str = "auto",
    lora_layers: int | None = None,
) -> dict:
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
        target_modules=["query", "value"],  # the Trainer recipes' targets, not loralab's all-linear default
        lora_layers=lora_layers,
        max_length=max_length,
        truncation="head",
        precision=precision,
    )
    prediction = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = train_run(data, config, Path(tmp) / "run", subset=subset, progress=False)
        train_peak = peak_rss_mib()
        history = pd.read_csv(Path(tmp) / "run" / "history.csv")
        for predict_precision in prediction_precisions():
            # what ``loralab predict [--precision bf16]`` scores with
            classifier = load_for_prediction(Path(tmp) / "run", precision=predict_precision)
            begin = time.perf_counter()
            predicted = classifier.predict(test["text"].tolist())
            seconds = time.perf_counter() - begin
            prediction[predict_precision] = {
                "seconds": seconds,
                "texts_per_second": len(test) / seconds,
                "accuracy": float(np.mean(np.array(predicted) == test["label"].to_numpy())),
            }
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
        "train_peak_rss_mib": train_peak,
        "predict": prediction,
        "predict_texts": len(test),
        "precision": run.manifest["resolved"]["precision"],
    }


def child(args) -> None:
    frames = read_splits(Path(args.data), args.subset)
    if args.recipe in TRAINER_RECIPES:
        result = trainer_recipe(frames, args.model, args.epochs, args.recipe, args.max_length)
    else:
        result = loralab_recipe(
            Path(args.data),
            args.subset,
            frames["test"],
            args.model,
            args.epochs,
            args.max_length,
            precision="fp32" if args.recipe == "f" else "auto",
            lora_layers=args.lora_layers if args.recipe == "d" else None,
        )
    result["peak_rss_mib"] = peak_rss_mib()
    print("RESULT " + json.dumps(result), flush=True)


def ratios(got: dict[str, dict]) -> dict[str, float]:
    """loralab over 🤗, training and prediction texts/s, at the same precision; test accuracy
    differences in points (loralab minus Trainer)."""
    out: dict[str, float] = {}
    if {"a", "c"} <= set(got):
        out["train_c_over_a"] = got["c"]["texts_per_second"] / got["a"]["texts_per_second"]
    if {"d", "b"} <= set(got):
        out["train_d_over_b"] = got["d"]["texts_per_second"] / got["b"]["texts_per_second"]
    for precision, (ours, theirs) in SAME_PRECISION.items():
        if not {ours, theirs} <= set(got) or got[ours]["precision"] != got[theirs]["precision"]:
            continue
        out[f"train_{ours}_over_{theirs}"] = got[ours]["texts_per_second"] / got[theirs]["texts_per_second"]
        out[f"test_accuracy_points_{ours}_minus_{theirs}"] = 100 * (
            got[ours]["test_accuracy"] - got[theirs]["test_accuracy"]
        )
        if precision in got[ours]["predict"] and precision in got[theirs]["predict"]:
            out[f"predict_{precision}"] = (
                got[ours]["predict"][precision]["texts_per_second"]
                / got[theirs]["predict"][precision]["texts_per_second"]
            )
    return out


def default_out(data: str, max_length: int, subset: int | None) -> Path:
    """``results/speed_vs_trainer-DATA[-LENGTH][-subsetN].json``: the committed 128-token file
    keeps its name, and a quick check on a subset never lands on it."""
    name = f"speed_vs_trainer-{Path(data.rstrip('/')).name}"
    name += f"-{max_length}" if max_length != 128 else ""
    name += f"-subset{subset}" if subset is not None else ""
    return Path(__file__).with_name("results") / f"{name}.json"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--recipes", default=None, help="Comma-separated (default: a-f at 128 tokens, else b,c,e,f)."
    )
    parser.add_argument("--max-length", type=int, default=128, help="Tokens per text (128).")
    parser.add_argument("--subset", type=int, default=None, help="Stratified N rows per split.")
    parser.add_argument("--out", type=Path, default=None, help="Result file (default: in results/).")
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
    recipes = (args.recipes or ("a,b,c,d,e,f" if args.max_length == 128 else "b,c,e,f")).split(",")
    unknown = sorted(set(recipes) - {"a", "b", "c", "d", "e", "f"})
    if unknown:
        raise SystemExit(f"--recipes: unknown recipe(s) {', '.join(unknown)}; use a, b, c, d, e, f.")
    out = args.out or default_out(args.data, args.max_length, args.subset)
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
        "max_length": args.max_length,
        "subset": args.subset,
        "target_val_accuracy": args.target,
        "lora_layers_d": args.lora_layers,
        "recipes": {},
    }
    for recipe in recipes:
        command = [sys.executable, __file__, args.data, "--epochs", str(args.epochs), "--recipe", recipe]
        command += ["--model", args.model, "--lora-layers", str(args.lora_layers)]
        command += ["--max-length", str(args.max_length)]
        command += ["--subset", str(args.subset)] if args.subset is not None else []
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
        r["seconds_to_target"] = time_to_target(r["curve"], args.target)
        results["recipes"][recipe] = r
        print(recipe, json.dumps(r), flush=True)
    results["ratios"] = ratios(results["recipes"])
    out.parent.mkdir(parents=True, exist_ok=True)
    # a temporary name, then rename: an interrupted run leaves the previous file whole
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(results, indent=2))
    partial.replace(out)
    print(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
