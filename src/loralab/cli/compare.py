"""``loralab compare``: the method ladder on identical splits, in one table."""

from __future__ import annotations

from pathlib import Path

import typer

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


def results_table(summary: list[dict], title: str):
    rows = []
    sizes = {r.get("train_size") for r in summary}
    for r in summary:
        share = r.get("trainable_share")
        trainable = f"{r['trainable_parameters']:,}" + (f" ({share:.2%})" if share is not None else "")
        name = r["method"] if len(sizes) <= 1 else f"{r['method']} @ {r['train_size']}/class"
        rows.append(
            [
                name,
                trainable,
                _pm(r, "train_seconds", 1),
                f"{r['inference_texts_per_second']:,.0f}" if r.get("inference_texts_per_second") else "–",
                _pm(r, "validation_accuracy"),
                _pm(r, "test_accuracy"),
                _pm(r, "test_macro_f1"),
            ]
        )
    columns = [
        "method",
        "trainable params",
        "train s",
        "infer texts/s",
        "val acc",
        "test acc",
        "test macro-F1",
    ]
    return table(title, columns, rows)


def recommendation_lines(results: dict) -> list[str]:
    """The sentences that end the table: the method to use, and at each smaller size if any."""
    lines = [f"Left out {name}: {reason}" for name, reason in (results.get("left_out") or {}).items()]
    if results.get("validation_cut"):
        lines.append(f"Note: {results['validation_cut']}")
    by_size = results.get("recommendations") or {}
    final = results.get("recommendation")
    if len(by_size) > 1:
        for size, chosen in by_size.items():
            if final is None or size != final["train_size"]:
                lines.append(f"At {size}/class: {chosen['method']}. Why: {chosen['reason']}")
    if final is not None:
        lines.append(f"Recommendation: {final['method']}. Why: {final['reason']}")
    return lines


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
        setfit_max_pairs: int = typer.Option(
            2000, "--setfit-max-pairs", help="SetFit: at most this many contrastive pairs per run."
        ),
    ) -> None:
        """Train the method ladder on the same splits and print one table."""
        from loralab.runs.compare import compare as run_compare

        chosen = [m.strip() for m in methods.split(",")] if methods else None
        if seeds < 1:
            from loralab.errors import LoralabError

            raise LoralabError(f"--seeds must be ≥ 1, got {seeds}.")
        sizes = parse_train_sizes(train_sizes) if train_sizes else None
        out = output_dir or default_run_dir(data, "compare")
        config = TrainConfig(model=model, seed=seed, max_length=max_length, setfit_max_pairs=setfit_max_pairs)

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
        )
        console.print(results_table(results["summary"], f"{data} (splits {results['fingerprint']})"))
        for line in recommendation_lines(results):
            console.print(line, markup=False)
        console.print(f"Results in {out}/results.csv and results.json")


def register_report(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def report(path: Path = typer.Argument(..., help="A run folder or a compare folder.")) -> None:
        """Write report.html (self-contained, opens offline) and report.md into the folder."""
        from loralab.reports.report import write_report

        html_path, md_path = write_report(path)
        console.print(f"Wrote {html_path} and {md_path}")
