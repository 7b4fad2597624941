"""``loralab train``, ``loralab evaluate`` and ``loralab predict``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from loralab.cli.common import (
    confusion_table,
    console,
    default_run_dir,
    fmt,
    handle_errors,
    metrics_table,
    per_class_table,
    table,
)
from loralab.config import DEFAULT_MODEL, TrainConfig
from loralab.errors import LoralabError

DATA_HELP = (
    "CSV/TSV/JSON/JSONL/Parquet file, folder of train/validation/test files, hf:NAME[:CONFIG] or demo."
)


def _config_file(path: Path | None) -> dict:
    if path is None:
        return {}
    if not path.exists():
        raise LoralabError(f"{path}: no such config file.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise LoralabError(f"{path}: not valid JSON (line {err.lineno}: {err.msg}).") from err


def print_run_summary(result) -> None:
    manifest = result.manifest
    trainable, total = manifest["trainable_parameters"], manifest["total_parameters"]
    share = f" ({trainable / total:.2%})" if total else ""
    console.print(metrics_table({s: result.metrics[s] for s in ("validation", "test")}, title="Metrics"))
    if len(result.classifier.labels) > 2:
        console.print(per_class_table(result.metrics["test"], "Per class (test)"))
    console.print(confusion_table(result.metrics["test"], "Confusion matrix (test)"))
    console.print(
        f"Trainable parameters: {trainable:,} of {total:,}{share}; "
        f"training {manifest['train_seconds']:.0f} s; "
        f"inference {result.metrics['test']['inference_texts_per_second']:,.0f} texts/s"
    )
    floor = manifest.get("step_floor")
    if floor:
        console.print(
            f"Small training set: {floor['epochs']} epochs instead of {floor['raised_from']} "
            f"({floor['steps_per_epoch']} optimizer step(s) per epoch; --min-train-steps), the best epoch "
            f"on validation kept, stopping after {floor['patience']} epochs without a better one.",
            markup=False,
        )
    if manifest.get("pooling"):
        console.print(f"The head reads the sentence vector: {manifest['pooling']['source']}.", markup=False)
    contrastive = manifest.get("contrastive")
    if contrastive:
        budget = " (the --setfit-max-pairs budget)" if contrastive["limited_by_budget"] else ""
        console.print(
            f"SetFit: {contrastive['pairs']:,} contrastive pairs{budget} drawn from "
            f"{contrastive['texts']:,} training texts, {contrastive['steps']:,} optimizer steps.",
            markup=False,
        )
    features = manifest.get("features")
    if features:
        how = "read from the feature cache" if features["source"] == "cache" else "encoded (and cached)"
        console.print(
            f"Training features ({features['pooling']} pooling): {features['texts']:,} texts {how} "
            f"in {features['seconds']:.1f} s",
            markup=False,
        )
        if features.get("pooling_source"):
            console.print(f"Pooling: {features['pooling_source']}.", markup=False)
    console.print(f"Run saved to [bold]{result.folder}[/] (reload check passed)")


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def train(
        data: str = typer.Argument(..., help=DATA_HELP),
        method: str | None = typer.Option(
            None,
            "--method",
            "-m",
            help="lora (default), lora-scratch, full, head, zero-shot, tfidf-logreg, tfidf-nb, "
            "embed-logreg, embed-svm, embed-ridge, majority, setfit.",
        ),
        model: str | None = typer.Option(
            None, "--model", help=f"Hugging Face name or local folder (default: {DEFAULT_MODEL})."
        ),
        text_col: str = typer.Option("text", "--text-col"),
        label_col: str = typer.Option("label", "--label-col"),
        subset: int | None = typer.Option(
            None, "--subset", help="Stratified subset of at most N rows per split."
        ),
        output_dir: Path | None = typer.Option(
            None,
            "--output-dir",
            "-o",
            help="Run folder (default: runs/DATA-METHOD-TIME, or under $LORALAB_RUNS_DIR).",
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run already in --output-dir."),
        resume: bool = typer.Option(
            False, "--resume", help="Continue the interrupted run in --output-dir from its last checkpoint."
        ),
        report_to: str | None = typer.Option(
            None,
            "--report-to",
            help="Track with tensorboard, mlflow and/or wandb (comma-separated), or none.",
        ),
        checkpoint_every: int | None = typer.Option(
            None, "--checkpoint-every", help="Also checkpoint every N optimizer steps (default: each epoch)."
        ),
        config_file: Path | None = typer.Option(
            None, "--config", help="JSON file of settings; flags override it."
        ),
        lr: float | None = typer.Option(
            None, "--lr", help="Learning rate (default per method: lora 1e-3, full 5e-5, head 2e-3)."
        ),
        epochs: int | None = typer.Option(None, "--epochs", help="Epochs (default per method)."),
        batch_size: int | None = typer.Option(None, "--batch-size"),
        max_length: int | None = typer.Option(
            None, "--max-length", help="Truncate texts to this many tokens."
        ),
        lora_rank: int | None = typer.Option(None, "--lora-rank"),
        lora_alpha: float | None = typer.Option(None, "--lora-alpha"),
        lora_dropout: float | None = typer.Option(None, "--lora-dropout"),
        target_modules: str | None = typer.Option(
            None,
            "--target-modules",
            help="Comma-separated module names or all-linear (default: family preset).",
        ),
        lora_bias: str | None = typer.Option(None, "--lora-bias", help="none, all or lora_only."),
        lora_init: str | None = typer.Option(
            None,
            "--lora-init",
            help="normal (A ~ N(0, 1/rank²)), kaiming, or pissa (principal singular vectors of W).",
        ),
        use_rslora: bool | None = typer.Option(
            None, "--use-rslora/--no-rslora", help="Scale by alpha/sqrt(rank) (rsLoRA)."
        ),
        use_dora: bool | None = typer.Option(
            None, "--use-dora/--no-dora", help="DoRA: magnitude and direction (PEFT)."
        ),
        loraplus_lr_ratio: float | None = typer.Option(
            None,
            "--loraplus-lr-ratio",
            help="LoRA+: learning rate of the B matrices = ratio × --lr (e.g. 16).",
        ),
        lora_layers: int | None = typer.Option(
            None,
            "--lora-layers",
            help="Adapt only the top K encoder layers; the frozen layers below run once per text "
            "and are cached, so every epoch runs only the top K.",
        ),
        weight_decay: float | None = typer.Option(None, "--weight-decay"),
        warmup_ratio: float | None = typer.Option(None, "--warmup-ratio"),
        grad_accum_steps: int | None = typer.Option(None, "--grad-accum-steps"),
        max_grad_norm: float | None = typer.Option(None, "--max-grad-norm"),
        patience: int | None = typer.Option(
            None, "--patience", help="Stop after N epochs without a better validation accuracy."
        ),
        min_train_steps: int | None = typer.Option(
            None,
            "--min-train-steps",
            help="Without --epochs, train at least this many optimizer steps on small data (100; 0: off).",
        ),
        seed: int | None = typer.Option(None, "--seed"),
        threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch."),
        precision: str | None = typer.Option(
            None,
            "--precision",
            help="auto (bf16 autocast where measured faster, else fp32), fp32, bf16, or fp16 (GPU).",
        ),
        tfidf_ngram_max: int | None = typer.Option(
            None, "--tfidf-ngram-max", help="TF-IDF baselines: longest n-gram (2)."
        ),
        tfidf_max_features: int | None = typer.Option(
            None, "--tfidf-max-features", help="TF-IDF baselines: vocabulary size (50000)."
        ),
        tfidf_sublinear_tf: bool | None = typer.Option(
            None, "--tfidf-sublinear-tf/--no-tfidf-sublinear-tf", help="TF-IDF baselines: 1 + log(tf)."
        ),
        pooling: str | None = typer.Option(
            None,
            "--pooling",
            help="Embedding baselines: auto (the model's sentence-transformers pooling, else [CLS]), "
            "cls, mean or max (auto).",
        ),
        baseline_c: float | None = typer.Option(
            None, "--baseline-c", help="Baselines: inverse regularisation strength (1.0)."
        ),
        setfit_max_pairs: int | None = typer.Option(
            None, "--setfit-max-pairs", help="SetFit: at most this many contrastive pairs (2000)."
        ),
    ) -> None:
        """Train a classifier and save it as a run folder."""
        from loralab.runs.train import train_run

        settings = _config_file(config_file)
        flags = dict(
            method=method,
            model=model,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            max_length=max_length,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=target_modules,
            lora_bias=lora_bias,
            lora_init=lora_init,
            use_rslora=use_rslora,
            use_dora=use_dora,
            loraplus_lr_ratio=loraplus_lr_ratio,
            lora_layers=lora_layers,
            weight_decay=weight_decay,
            warmup_ratio=warmup_ratio,
            grad_accum_steps=grad_accum_steps,
            max_grad_norm=max_grad_norm,
            patience=patience,
            min_train_steps=min_train_steps,
            seed=seed,
            threads=threads,
            precision=precision,
            checkpoint_every=checkpoint_every,
            report_to=report_to,
            tfidf_ngram_max=tfidf_ngram_max,
            tfidf_max_features=tfidf_max_features,
            tfidf_sublinear_tf=tfidf_sublinear_tf,
            pooling=pooling,
            baseline_c=baseline_c,
            setfit_max_pairs=setfit_max_pairs,
        )
        settings.update({k: v for k, v in flags.items() if v is not None})
        config = TrainConfig.from_dict(settings)
        if resume and output_dir is None:
            raise LoralabError("--resume needs the --output-dir of the run to continue.")
        out = output_dir or default_run_dir(data, config.method)
        result = train_run(
            data,
            config,
            out,
            text_col=text_col,
            label_col=label_col,
            subset=subset,
            overwrite=overwrite,
            resume=resume,
        )
        if not result.metrics:  # another process of a distributed run: the main one reports
            return
        for note in result.splits.notes:
            console.print(f"[yellow]note:[/] {note}")
        print_run_summary(result)

    @app.command()
    @handle_errors
    def evaluate(
        run: Path = typer.Argument(..., help="A run folder."),
        data: str = typer.Argument(..., help=DATA_HELP),
        split: str = typer.Option("test", "--split", help="train, validation or test."),
        text_col: str = typer.Option("text", "--text-col"),
        label_col: str = typer.Option("label", "--label-col"),
        before: bool = typer.Option(
            False,
            "--before",
            help="Also evaluate the untrained model (same base, fresh head) for a before/after comparison.",
        ),
        output: Path | None = typer.Option(None, "--output", help="Write the metrics as JSON here."),
    ) -> None:
        """Evaluate a trained run on any data with the same label set."""
        from loralab.runs.evaluate import evaluate_run

        results = evaluate_run(run, data, split=split, text_col=text_col, label_col=label_col, before=before)
        for note in results.pop("_notes", []):
            console.print(f"[yellow]note:[/] {note}")
        where = results.pop("_data")
        console.print(metrics_table(results, title=f"{run} on {where}"))
        main = results["after" if before else "trained"]
        if len(main["labels"]) > 2:
            console.print(per_class_table(main, "Per class"))
        console.print(confusion_table(main, "Confusion matrix"))
        if output:
            from loralab.runs.folder import write_json

            write_json(output, results)
            console.print(f"Metrics written to {output}")

    @app.command()
    @handle_errors
    def predict(
        run: Path = typer.Argument(..., help="A run folder."),
        texts: list[str] | None = typer.Argument(None, help="Texts to classify."),
        input_file: Path | None = typer.Option(
            None, "--input", "-i", help="CSV/TSV/JSONL/Parquet file to score."
        ),
        output_file: Path | None = typer.Option(
            None, "--output", "-o", help="Where to write the scored file (same formats)."
        ),
        text_col: str = typer.Option("text", "--text-col"),
        chunk_size: int = typer.Option(4096, "--chunk-size", help="Rows read and scored at a time."),
        batch_size: int | None = typer.Option(None, "--batch-size"),
        resume: bool = typer.Option(
            False, "--resume", help="Continue an interrupted --input/--output job where it stopped."
        ),
        backend: str = typer.Option(
            "torch",
            "--backend",
            help="torch, or onnx (ONNX Runtime; a run is exported to RUN/onnx/ on first use).",
        ),
        int8: bool = typer.Option(False, "--int8", help="With --backend onnx: dynamic int8 weights."),
        precision: str = typer.Option(
            "fp32",
            "--precision",
            help="fp32 (the run's own numbers), bf16 or fp16 autocast, or auto (bf16 where measured faster).",
        ),
    ) -> None:
        """Classify texts given on the command line, or a whole file in chunks."""
        from loralab.runs.predict import load_for_prediction, predict_file

        if bool(input_file) != bool(output_file):
            raise LoralabError("--input and --output go together.")
        if not texts and not input_file:
            raise LoralabError("Give texts to classify, or --input FILE --output FILE.")
        if texts and input_file:
            raise LoralabError("Give texts or --input, not both.")
        classifier = load_for_prediction(run, backend, int8, precision)
        if input_file:
            rows = predict_file(
                classifier, input_file, output_file, text_col, chunk_size, batch_size, resume=resume
            )
            console.print(f"Scored {rows:,} rows into {output_file}")
            return
        probs = classifier.predict_proba(texts, batch_size)
        rows = [
            [t[:80], classifier.labels[p.argmax()], float(p.max())] for t, p in zip(texts, probs, strict=True)
        ]
        console.print(table(None, ["text", "label", "probability"], rows))


__all__ = ["register", "fmt"]
