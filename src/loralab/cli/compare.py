"""``loralab compare``: the method ladder on identical splits, in one table."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from loralab.cli.common import console, default_run_dir, handle_errors, table
from loralab.config import DEFAULT_MODEL, TrainConfig


def _pm(row: dict, key: str, digits: int = 4) -> str:
    value = row.get(key)
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    if row.get("seeds", 1) > 1:
        text += f" ± {row.get(key + '_std', 0):.{digits}f}"
    return text


def results_table(summary: list[dict], title: str, costs: dict | None = None):
    """The comparison as a console table; ``costs`` (from :func:`loralab.reports.costs.summary_costs`)
    give every method the same definitions of trainable, share and cached times."""
    rows = []
    sizes = {r.get("train_size") for r in summary}
    for r in summary:
        cost = (costs or {}).get((r["method"], str(r.get("train_size"))))
        cells = cost.cells() if cost else {}
        trainable = cells.get("trainable", f"{r['trainable_parameters']:,}")
        if cells.get("share", "–") != "–":
            trainable += f" ({cells['share']})"
        train = _pm(r, "train_seconds", 1) if r.get("seeds", 1) > 1 or not cells else cells["train"]
        infer = cells.get("infer") or (
            f"{r['inference_texts_per_second']:,.0f}" if r.get("inference_texts_per_second") else "–"
        )
        name = r["method"] if len(sizes) <= 1 else f"{r['method']} @ {r['train_size']}/class"
        rows.append(
            [
                name,
                trainable,
                train,
                infer,
                _pm(r, "validation_accuracy"),
                _pm(r, "test_accuracy"),
                _pm(r, "test_macro_f1"),
            ]
        )
    columns = [
        "method",
        "trainable (share)",
        "train s",
        "infer texts/s",
        "val acc",
        "test acc",
        "test macro-F1",
    ]
    return table(title, columns, rows)


def parse_train_sizes(text: str) -> list[int | None]:
    from loralab.errors import LoralabError

    sizes: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            sizes.append(None)
        elif part.isdigit() and int(part) > 0:
            sizes.append(int(part))
        else:
            raise LoralabError(
                f"--train-sizes takes positive integers or 'all', separated by commas; got '{part}'."
            )
    return sizes


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def compare(
        data: str = typer.Argument(..., help="Data set (as for train)."),
        methods: str | None = typer.Option(
            None,
            "--methods",
            help="Comma-separated methods (default: the ladder from TF-IDF to full fine-tuning).",
        ),
        seeds: int = typer.Option(
            1, "--seeds", help="Repeat each neural method with K seeds; report mean ± std."
        ),
        model: str = typer.Option(DEFAULT_MODEL, "--model"),
        text_col: str = typer.Option("text", "--text-col"),
        label_col: str = typer.Option("label", "--label-col"),
        subset: int | None = typer.Option(None, "--subset"),
        output_dir: Path | None = typer.Option(
            None, "--output-dir", "-o", help="Compare folder (reused to resume)."
        ),
        seed: int = typer.Option(42, "--seed"),
        max_length: int = typer.Option(128, "--max-length"),
        train_sizes: str | None = typer.Option(
            None,
            "--train-sizes",
            help="Learning curve: texts per class, e.g. 8,16,64,256,all (nested subsets).",
        ),
        label_map: str | None = typer.Option(
            None, "--label-map", help="Rename or merge the data's labels first: OLD=NEW,…"
        ),
    ) -> None:
        """Train the method ladder on the same splits and print one table."""
        from loralab.data.label_map import parse_label_map
        from loralab.runs.compare import DEFAULT_LADDER
        from loralab.runs.compare import compare as run_compare

        chosen = [m.strip() for m in methods.split(",")] if methods else DEFAULT_LADDER
        if seeds < 1:
            from loralab.errors import LoralabError

            raise LoralabError(f"--seeds must be ≥ 1, got {seeds}.")
        sizes = parse_train_sizes(train_sizes) if train_sizes else None
        out = output_dir or default_run_dir(data, "compare")
        config = TrainConfig(model=model, seed=seed, max_length=max_length)

        def report(row: dict) -> None:
            state = "reused" if row["reused"] else "done"
            console.print(
                f"{row['method']} (seed {row['seed']}): test accuracy {row['test_accuracy']:.4f} ({state})",
                markup=False,
            )

        results = run_compare(
            data,
            out,
            methods=chosen,
            seeds=seeds,
            base_config=config,
            text_col=text_col,
            label_col=label_col,
            subset=subset,
            train_sizes=sizes,
            on_run=report,
            label_map=parse_label_map(label_map),
        )
        from loralab.reports.costs import summary_costs

        costs = summary_costs(out, results["runs"])
        title = f"{data} (splits {results['fingerprint']})"
        console.print(results_table(results["summary"], title, costs))
        for row in results["runs"]:
            manifest = json.loads((Path(out) / row["run"] / "manifest.json").read_text())
            for warning in manifest.get("warnings") or []:
                console.print(f"[bold yellow]warning:[/] {row['run']}: {escape(warning)}")
        console.print(f"Results in {out}/results.csv and results.json")


def register_report(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def report(path: Path = typer.Argument(..., help="A run folder or a compare folder.")) -> None:
        """Write report.html (self-contained, opens offline) and report.md into the folder."""
        from loralab.reports.report import write_report

        html_path, md_path = write_report(path)
        console.print(f"Wrote {html_path} and {md_path}")
