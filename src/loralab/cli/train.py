"""``loralab train``, ``loralab evaluate`` and ``loralab predict``."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from loralab.cli.common import (
    THREADS_HELP,
    Interrupted,
    confusion_table,
    console,
    default_run_dir,
    err_console,
    fmt,
    handle_errors,
    metrics_table,
    per_class_table,
    table,
    use_threads,
)
from loralab.cli.options import (
    CONFIG_OPTIONS,
    DATA_OPTIONS,
    data_options,
    layered_job,
    run_data_option,
    training_options,
    with_options,
)
from loralab.config import TrainConfig
from loralab.config_files import DATA_HELP, JobConfig
from loralab.errors import LoralabError, Terminated


def print_run_summary(result) -> None:
    # could be at module level: loralab.reports.costs imports nothing heavy
    from loralab.reports.costs import run_cost

    manifest = result.manifest
    cost = run_cost(result.folder)
    cells = cost.cells()
    of = f" of {cost.predicting_parameters:,} ({cells['share']})" if cost.share is not None else ""
    console.print(metrics_table({s: result.metrics[s] for s in ("validation", "test")}, title="Metrics"))
    if len(result.classifier.labels) > 2:
        console.print(per_class_table(result.metrics["test"], "Per class (test)"))
    console.print(confusion_table(result.metrics["test"], "Confusion matrix (test)"))
    console.print(
        f"Trainable parameters: {cells['trainable']}{of}; training {cells['train']} s; "
        f"inference {cells['infer']} texts/s"
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
    for warning in manifest.get("warnings") or []:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}")


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    @with_options(data_options(*DATA_OPTIONS, layered=True), training_options(), CONFIG_OPTIONS)
    def train(
        data: str | None = typer.Argument(
            None, metavar="DATA", help=DATA_HELP + " May be named in --config instead.", show_default=False
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
        **options: Any,
    ) -> None:
        """Train a classifier and save it as a run folder."""
        # deferred: loralab.runs.train imports torch, transformers and the training loop (~3.5 s)
        from loralab.runs.execute import resumable
        from loralab.runs.train import train_run

        job: JobConfig
        settings, job = layered_job(options, data, output_dir)
        config = TrainConfig.from_dict(settings)
        source = job.require_data()
        if resume and job.output_dir is None:
            raise LoralabError("--resume needs the --output-dir of the run to continue.")
        out = Path(job.output_dir) if job.output_dir else default_run_dir(source, config.method)
        try:
            result = train_run(
                source,
                config,
                out,
                text_col=job.text_col,
                label_col=job.label_col,
                subset=job.subset,
                overwrite=overwrite,
                resume=resume,
            )
        except KeyboardInterrupt as err:
            # SIGTERM keeps its own exit status (143); and with nothing trained to go on from,
            # running the command again is all there is.
            if isinstance(err, Terminated) or not resumable(out):
                raise
            # -o as well: without one, the run's folder was named after the time it started.
            hint = f"continue with the same loralab train command and --resume -o {shlex.quote(str(out))}"
            raise Interrupted(hint) from None
        if not result.metrics:  # another process of a distributed run: the main one reports
            return
        for note in result.splits.notes:
            console.print(f"[yellow]note:[/] {note}")
        print_run_summary(result)

    @app.command()
    @handle_errors
    @with_options(data_options(*DATA_OPTIONS))
    def evaluate(
        run: Path = typer.Argument(..., help="A run folder."),
        data: str = typer.Argument(..., help=DATA_HELP),
        split: str = typer.Option("test", "--split", help="train, validation or test."),
        before: bool = typer.Option(
            False,
            "--before",
            help="Also evaluate the untrained model (same base, fresh head) for a before/after comparison.",
        ),
        output: Path | None = typer.Option(None, "--output", help="Write the metrics as JSON here."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --output file."),
        threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
        label_map: str | None = typer.Option(
            None, "--label-map", help="Rename the data's labels first: OLD=NEW,… (e.g. positive=fresh)."
        ),
        text_col: str | None = run_data_option("text_col"),
        label_col: str | None = run_data_option("label_col"),
        **data_settings: Any,
    ) -> None:
        """Evaluate a trained run on any data with the same label set."""
        # deferred: loralab.runs.evaluate imports torch, transformers and the training loop (~3.5 s)
        from loralab.data.label_map import parse_label_map
        from loralab.runs.evaluate import evaluate_run
        from loralab.runs.files import check_writable

        if output is not None and output.suffix.lower() != ".json":
            raise LoralabError(f"--output {output}: the metrics are written as JSON; name the file *.json.")
        if output is not None and output.is_dir():
            raise LoralabError(f"{output}: is a folder; name the file to write the metrics to.")
        if output is not None and output.exists() and not overwrite:
            raise LoralabError(f"{output}: already exists; choose another --output or pass --overwrite.")
        if output is not None:
            check_writable(output)
        use_threads(threads)
        job = JobConfig(**data_settings)
        results = evaluate_run(
            run,
            data,
            split=split,
            text_col=text_col,
            label_col=label_col,
            subset=job.subset,
            before=before,
            label_map=parse_label_map(label_map),
            # Plain lines on stderr: visible in logs and pipes too, and stdout stays the result.
            log=lambda line: err_console.print(line, markup=False, highlight=False),
        )
        for note in results.pop("_notes", []):
            console.print(f"[yellow]note:[/] {note}")
        where = results.pop("_data")
        console.print(metrics_table(results, title=f"{run} on {where}"))
        main = results["after" if before else "trained"]
        if len(main["labels"]) > 2:
            console.print(per_class_table(main, "Per class"))
        console.print(confusion_table(main, "Confusion matrix"))
        if output:
            # could be at module level: loralab.runs.folder imports nothing heavy
            from loralab.runs.folder import write_json

            write_json(output, results)
            console.print(f"Metrics written to {output}")

    @app.command()
    @handle_errors
    def predict(
        run: Path = typer.Argument(..., help="A run folder."),
        texts: list[str] | None = typer.Argument(
            None, help="Texts to classify; - reads them from standard input, one per line."
        ),
        input_file: Path | None = typer.Option(
            None, "--input", "-i", help="CSV/TSV/JSONL/Parquet file to score."
        ),
        output_file: Path | None = typer.Option(
            None,
            "--output",
            "-o",
            help="Where to write the scored file (same formats); without it, CSV goes to stdout.",
        ),
        chunk_size: int = typer.Option(4096, "--chunk-size", help="Rows read and scored at a time."),
        batch_size: int | None = typer.Option(
            None,
            "--batch-size",
            help="Most texts per forward pass; on a CPU also at most 1,024 padded tokens per thread "
            "(default: the run's eval_batch_size).",
        ),
        resume: bool = typer.Option(
            False, "--resume", help="Continue an interrupted --input/--output job where it stopped."
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --output file."),
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
        threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
        text_col: str | None = run_data_option("text_col"),
    ) -> None:
        """Classify texts given on the command line, or a whole file in chunks."""
        # could be at module level: the standard library's sys and time cost nothing
        import sys
        import time

        # deferred: loralab.runs.predict imports pandas and scikit-learn (~1 s)
        from loralab.data.readers import check_texts, is_blank, table_columns
        from loralab.runs.load import run_column
        from loralab.runs.predict import check_output, load_for_prediction, no_text_column, predict_file

        if output_file and not input_file:
            raise LoralabError("--output goes with --input FILE.")
        if not texts and not input_file:
            raise LoralabError("Give texts to classify, or --input FILE [--output FILE].")
        if texts and input_file:
            raise LoralabError("Give texts or --input, not both.")
        if batch_size is not None and batch_size < 1:
            raise LoralabError(f"--batch-size must be ≥ 1, got {batch_size}.")
        use_threads(threads)
        if texts == ["-"]:  # `… | loralab predict RUN -`: one text a line, blank lines skipped
            # Bytes that are not UTF-8 are kept as surrogates, so check_texts names their line.
            raw = getattr(sys.stdin, "buffer", None)
            read = raw.read().decode("utf-8", "surrogateescape") if raw is not None else sys.stdin.read()
            # Lines end at \n (or \r\n) only: str.splitlines would also cut a text at a lone \r,
            # a form feed or U+2028, making two texts of one.
            lines = [line.removesuffix("\r") for line in read.removesuffix("\n").split("\n")]
            blank = [number for number, line in enumerate(lines, 1) if is_blank(line)]
            texts = [line for line in lines if not is_blank(line)]
            if not texts:
                raise LoralabError("Standard input held no text to classify.")
            for number, line in enumerate(lines, 1):  # named by their line, blank ones counted
                if not is_blank(line):
                    check_texts([line], "standard input", "line", first=number)
            if blank:
                shown = ", ".join(map(str, blank[:10])) + (", …" if len(blank) > 10 else "")
                err_console.print(
                    f"note: {len(blank):,} blank line(s) of standard input skipped (line {shown}).",
                    markup=False,
                    highlight=False,
                )
        elif texts:
            check_texts(texts, "the command line")
        column = text_col or "text"
        if input_file:
            # Before the model loads (seconds): a misspelt column or an output that cannot be
            # written is told at once.
            if output_file:
                check_output(input_file, output_file, chunk_size, overwrite)
            columns = table_columns(input_file, chunk_size)
            column, note = run_column(run, "text", text_col, columns)
            if column not in columns:
                raise no_text_column(input_file, column, columns)
            if note:
                err_console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
        # Loading imports torch and reads the model: seconds of silence without this line.
        # It goes to stderr, so that stdout holds only results.
        err_console.print(f"Loading {run} …", markup=False, highlight=False)
        start = time.perf_counter()
        classifier = load_for_prediction(run, backend, int8, precision)
        err_console.print(
            f"Loaded {classifier.method} model in {time.perf_counter() - start:.1f} s.", highlight=False
        )
        if input_file and output_file is None:
            # could join the imports above: loralab.runs.predict has loaded it
            from loralab.runs.score_stream import score_to_stream

            streamed = score_to_stream(classifier, input_file, sys.stdout, column, chunk_size, batch_size)
            err_console.print(f"Scored {streamed:,} rows.", highlight=False)
            return
        if input_file:
            assert output_file is not None
            scored = predict_file(
                classifier,
                input_file,
                output_file,
                column,
                chunk_size,
                batch_size,
                resume=resume,
                overwrite=overwrite,
                run=run,
            )
            console.print(f"Scored {scored.rows:,} rows into {output_file}")
            if scored.without_text:
                listed = ", ".join(map(str, scored.without_text_rows))
                more = ", …" if scored.without_text > len(scored.without_text_rows) else ""
                console.print(
                    f"[yellow]note:[/] {scored.without_text:,} row(s) have no text in column "
                    f"'{column}' (rows {listed}{more}); their prediction columns are empty."
                )
            return
        texts = texts or []
        probs = classifier.predict_proba(texts, batch_size)
        rows = [
            [t[:80], classifier.labels[p.argmax()], float(p.max())] for t, p in zip(texts, probs, strict=True)
        ]
        console.print(table(None, ["text", "label", "probability"], rows))


__all__ = ["register", "fmt"]
