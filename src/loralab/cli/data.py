"""``loralab data inspect``."""

from __future__ import annotations

import random

import typer

from loralab.cli.common import console, handle_errors, table
from loralab.cli.options import DATA_OPTIONS, data_options, setting_option, with_options
from loralab.config import TrainConfig
from loralab.config_files import DATA_HELP, JobConfig

app = typer.Typer(help="Look at a data set.", no_args_is_help=True)


@app.command("inspect")
@handle_errors
@with_options(data_options(*DATA_OPTIONS))
def inspect(
    data: str = typer.Argument(..., help=DATA_HELP),
    model: str = setting_option("model"),
    max_length: int = setting_option("max_length"),
    samples: int = typer.Option(3, "--samples", help="Sample rows to show."),
    seed: int = setting_option("seed"),
    *,
    text_col: str,
    label_col: str,
    subset: int | None,
) -> None:
    """Split sizes, label counts, token lengths and a few sample rows."""
    # deferred: pandas, scikit-learn and torch take ~2 s to import; other commands don't need them
    from loralab.data import load_data
    from loralab.data.inspect import data_report
    from loralab.models import load_tokenizer
    from loralab.models.loading import fit_max_length

    JobConfig(text_col=text_col, label_col=label_col, subset=subset)  # checks the data options
    TrainConfig(model=model, max_length=max_length, seed=seed)  # checks them as train does
    splits = load_data(data, text_col, label_col, seed=seed, subset=subset)
    max_length = fit_max_length(model, max_length)  # what training would cut at
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
