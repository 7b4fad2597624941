"""``loralab data inspect``."""

from __future__ import annotations

import random

import typer

from loralab.cli.common import console, handle_errors, table
from loralab.config import DEFAULT_MODEL

app = typer.Typer(help="Look at a data set.", no_args_is_help=True)


@app.command("inspect")
@handle_errors
def inspect(
    data: str = typer.Argument(
        ..., help="CSV/TSV/JSON/JSONL/Parquet file, folder of splits, hf:NAME[:CONFIG] or demo."
    ),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the texts."),
    label_col: str = typer.Option("label", "--label-col", help="Column holding the class names."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", help="Model whose tokenizer counts tokens."),
    max_length: int = typer.Option(128, "--max-length", help="Token limit to report truncation against."),
    subset: int | None = typer.Option(
        None, "--subset", help="Stratified subset of at most N rows per split."
    ),
    samples: int = typer.Option(3, "--samples", help="Sample rows to show."),
    seed: int = typer.Option(42, "--seed", help="Seed for carved splits, subsets and samples."),
) -> None:
    """Split sizes, label counts, token lengths and a few sample rows."""
    from loralab.data import load_data
    from loralab.data.inspect import data_report
    from loralab.models import load_tokenizer

    splits = load_data(data, text_col, label_col, seed=seed, subset=subset)
    report = data_report(splits, load_tokenizer(model), max_length)
    console.print(f"[bold]{report['source']}[/]  labels: {', '.join(splits.labels)}")
    for note in report["notes"]:
        console.print(f"[yellow]note:[/] {note}")
    rows = []
    for name, info in report["splits"].items():
        counts = ", ".join(f"{k} {v:,}" for k, v in info["label_counts"].items())
        rows.append([name, info["size"], counts, info["origin"]])
    console.print(table("Splits", ["split", "rows", "label counts", "origin"], rows))
    rows = []
    for name, info in report["splits"].items():
        t = info["tokens"]
        if t["n"]:
            rows.append(
                [
                    name,
                    t["mean"],
                    t["p50"],
                    t["p95"],
                    t["max"],
                    f"{t['truncated']:,} ({t['truncated'] / t['n']:.1%})",
                ]
            )
    console.print(
        table(
            f"Token lengths ({model}, special tokens included)",
            ["split", "mean", "p50", "p95", "max", f"> {max_length} (truncated)"],
            rows,
        )
    )
    rng = random.Random(seed)
    picks = rng.sample(range(len(splits.train)), min(samples, len(splits.train)))
    sample_rows = [[splits.train.labels[i], splits.train.texts[i][:160]] for i in picks]
    console.print(table("Sample training rows", ["label", "text"], sample_rows))
