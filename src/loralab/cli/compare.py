"""``loralab compare``: the method ladder on identical splits, in one table."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from loralab.cli.common import console, default_run_dir, handle_errors, table
from loralab.cli.options import (
    CONFIG_OPTIONS,
    DATA_OPTIONS,
    data_options,
    layered_job,
    option,
    training_options,
    with_options,
)
from loralab.config import TrainConfig, setting
from loralab.config_files import JobConfig
from loralab.errors import LoralabError
from loralab.runs.recommend import CROSSFIT_NOTE, judged_column, judged_header, judged_mark


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
                _pm(r, judged_column(r)) + judged_mark(r),
                _pm(r, "test_accuracy"),
                _pm(r, "test_macro_f1"),
            ]
        )
    columns = [
        "method",
        "trainable (share)",
        "train s",
        "infer texts/s",
        judged_header(summary),
        "test acc",
        "test macro-F1",
    ]
    return table(title, columns, rows)


def recommendation_lines(results: dict) -> list[str]:
    """The sentences that end the table: the method to use, and at each smaller size if any."""
    lines = [f"Left out {name}: {reason}" for name, reason in (results.get("left_out") or {}).items()]
    if results.get("validation_cut"):
        lines.append(f"Note: {results['validation_cut']}")
    if any(r.get("validation_crossfit") for r in results.get("summary") or []):
        lines.append(CROSSFIT_NOTE)
    by_size = results.get("recommendations") or {}
    final = results.get("recommendation")
    if len(by_size) > 1:
        for size, chosen in by_size.items():
            if final is None or size != final["train_size"]:
                lines.append(f"At {size}/class: {chosen['method']}. Why: {chosen['reason']}")
    if final is not None:
        plain = f" {final['summary']}" if final.get("summary") else ""
        lines.append(f"Recommendation: {final['method']}.{plain} In detail: {final['reason']}")
    return lines


@dataclass
class CompareJob(JobConfig):
    """A comparison: the data and columns of any job, and which methods, seeds and sizes."""

    methods: list[str] | None = setting(
        None, "Comma-separated methods (default: the ladder from the majority class to full fine-tuning)."
    )
    seeds: int = setting(1, "Repeat each neural method with K seeds; report mean ± std.")
    train_sizes: str | None = setting(
        None, "Learning curve: texts per class, e.g. 8,16,64,256,all (nested subsets)."
    )
    label_map: str | None = setting(None, "Rename or merge the data's labels first: OLD=NEW,…")


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    @with_options(
        [option(CompareJob, name, panel=None) for name in ("methods", "seeds", "train_sizes", "label_map")],
        data_options(*DATA_OPTIONS, layered=True),
        training_options(exclude=["method"]),
        CONFIG_OPTIONS,
    )
    def compare(
        data: str | None = typer.Argument(
            None,
            metavar="DATA",
            help="Data set (as for train); may be named in --config instead.",
            show_default=False,
        ),
        output_dir: Path | None = typer.Option(
            None, "--output-dir", "-o", help="Compare folder (reused to resume)."
        ),
        **options: Any,
    ) -> None:
        """Train the method ladder on the same splits and print one table.

        A --config file may also name methods, seeds, train_sizes and label_map."""
        # deferred: loralab.runs.compare imports torch, transformers and the training loop (~3.5 s)
        from loralab.data.label_map import parse_label_map
        from loralab.runs.compare import compare as run_compare
        from loralab.runs.compare import parse_train_sizes

        settings, job = layered_job(options, data, output_dir, CompareJob)
        if "method" in settings:
            if job.methods is None:
                raise LoralabError(
                    "compare trains several methods: choose them with --methods (or methods: in the "
                    "--config file), not method."
                )
            # A training job's file reused for a comparison: its one method gives way to the list.
            warnings.warn(
                f"method: {settings.pop('method')} is left out; compare trains --methods.", stacklevel=1
            )
        chosen = job.methods  # None: the default ladder, less the rungs that cannot run here
        if isinstance(chosen, str):  # given as a flag: comma-separated
            chosen = [m.strip() for m in chosen.split(",") if m.strip()]
        if chosen is not None and not chosen:
            raise LoralabError(
                "--methods names no method; give one or more (e.g. --methods tfidf-logreg,lora), "
                "or leave it out for the default ladder."
            )
        if job.seeds < 1:
            raise LoralabError(f"--seeds must be ≥ 1, got {job.seeds}.")
        sizes = parse_train_sizes(job.train_sizes) if job.train_sizes else None
        seeds = job.seeds
        config = TrainConfig.from_dict(settings)
        source = job.require_data()
        out = Path(job.output_dir) if job.output_dir else default_run_dir(source, "compare")

        def report(row: dict) -> None:
            state = "reused" if row["reused"] else "done"
            console.print(
                f"{row['method']} (seed {row['seed']}): test accuracy {row['test_accuracy']:.4f} ({state})",
                markup=False,
            )

        results = run_compare(
            source,
            out,
            methods=chosen,
            seeds=seeds,
            base_config=config,
            text_col=job.text_col,
            label_col=job.label_col,
            subset=job.subset,
            train_sizes=sizes,
            on_run=report,
            label_map=parse_label_map(job.label_map),
        )
        # could be at module level: loralab.reports.costs imports nothing heavy
        from loralab.reports.costs import summary_costs

        costs = summary_costs(out, results["runs"])
        title = f"{source} (splits {results['fingerprint']})"
        console.print(results_table(results["summary"], title, costs))
        for line in recommendation_lines(results):
            console.print(line, markup=False)
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
        # deferred: loralab.reports.report imports torch and matplotlib (~1.5 s)
        from loralab.reports.report import write_report

        html_path, md_path = write_report(path)
        console.print(f"Wrote {html_path} and {md_path}")
