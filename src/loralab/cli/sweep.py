"""``loralab sweep``: a grid of training settings, each point a run folder."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from loralab.cli.common import console, handle_errors, runs_dir, table
from loralab.cli.options import (
    CONFIG_OPTIONS,
    DATA_OPTIONS,
    data_options,
    layered_job,
    training_options,
    with_options,
)
from loralab.config import TrainConfig
from loralab.config_files import JobConfig
from loralab.errors import LoralabError

GRID_HELP = (
    "Grid axis as setting=value1,value2 (any training setting: lora_rank, lora_alpha, lr, "
    "lora_dropout, method, target_modules=query+value,all-linear, …). Repeat --grid, or list "
    "several axes after one --grid."
)


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_interspersed_args": True})
    @handle_errors
    @with_options(data_options(*DATA_OPTIONS, layered=True), training_options(), CONFIG_OPTIONS)
    def sweep(
        data: str | None = typer.Argument(
            None,
            metavar="DATA",
            help="Data, as for train; may be named in --config instead.",
            show_default=False,
        ),
        more_axes: list[str] = typer.Argument(
            None, help="Further grid axes (setting=values).", show_default=False
        ),
        grid: list[str] = typer.Option(None, "--grid", help=GRID_HELP),
        search: str | None = typer.Option(
            None, "--search", help="optuna: search --space instead of training a grid."
        ),
        space: list[str] = typer.Option(
            None,
            "--space",
            help="Search dimension: setting=int:LOW:HIGH[:log], setting=float:LOW:HIGH[:log] "
            "or setting=A,B,C.",
        ),
        trials: int | None = typer.Option(
            None,
            "--trials",
            help="Trials in the whole study (all workers together; default 20).",
            show_default=False,
        ),
        storage: str | None = typer.Option(
            None,
            "--storage",
            help="Optuna storage URL (default: SQLite in the sweep folder); share one to add workers.",
        ),
        study: str | None = typer.Option(
            None, "--study", help="Study name to create or join (default: folder name)."
        ),
        jobs: int = typer.Option(1, "--jobs", "-j", help="Points trained in parallel processes."),
        output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help="Sweep folder."),
        heatmap: str | None = typer.Option(
            None, "--heatmap", help="Two axes for the heatmap as x,y (default: the first two)."
        ),
        **options: Any,
    ) -> None:
        """Train every point of a grid (skipping completed points), or search with --search optuna.

        --config, --set and the training flags fix the settings every point shares."""
        # deferred: loralab.runs.sweep imports torch, transformers and the training loop (~3.5 s)
        from loralab.reports.plots import sweep_heatmap
        from loralab.runs.sweep import parse_axes, run_sweep

        if data is not None and "=" in data and not Path(data).exists():
            # DATA named in --config: the first positional argument is already a grid axis.
            more_axes, data = [data, *(more_axes or [])], None
        job: JobConfig
        base, job = layered_job(options, data, output_dir)
        TrainConfig.from_dict(base)  # the fixed settings are checked before any point starts
        data = job.require_data()
        text_col, label_col, subset = job.text_col, job.label_col, job.subset
        default_folder = runs_dir() / f"sweep-{datetime.now():%Y%m%d-%H%M%S}"
        folder = Path(job.output_dir) if job.output_dir else default_folder
        if search is None:
            search_options = {"--space": space, "--trials": trials, "--storage": storage, "--study": study}
            search_only = [flag for flag, value in search_options.items() if value not in (None, [])]
            if search_only:
                raise LoralabError(
                    f"{', '.join(search_only)}: only used with --search optuna; a grid sweep "
                    "takes its points from --grid."
                )
        else:
            grid_only = [flag for flag, given in (("--jobs", jobs != 1), ("--heatmap", heatmap)) if given]
            if grid_only:
                raise LoralabError(
                    f"{', '.join(grid_only)}: only used by a --grid sweep; to search in more "
                    "processes, start the same command again in each."
                )
            if search != "optuna":
                raise LoralabError(f"--search supports optuna, not '{search}'.")
            if grid or more_axes:
                raise LoralabError("give either --grid axes or --search optuna with --space, not both.")
            return _search(
                data, space or [], base, folder, 20 if trials is None else trials, storage, study,
                subset, text_col, label_col,
            )  # fmt: skip
        axes = parse_axes(list(grid or []) + [a for a in more_axes or []])
        clash = sorted(set(base) & set(axes))
        if clash:
            raise LoralabError(f"{', '.join(clash)}: both fixed and a grid axis; keep one.")
        pairs = heatmap.split(",") if heatmap else list(axes)[:2]
        if len(axes) >= 2 and (len(pairs) != 2 or not set(pairs) <= set(axes)):
            raise LoralabError(f"--heatmap needs two of the grid axes ({', '.join(axes)}), as x,y.")
        total = 1
        for values in axes.values():
            total *= len(values)
        console.print(f"Sweep of {total} points into {folder} ({jobs} at a time)")

        def report(name: str, code: int) -> None:
            state = "[green]done[/]" if code == 0 else f"[red]failed (exit {code})[/], see logs/{name}.log"
            console.print(f"  {name}: {state}")

        summary = run_sweep(
            data, axes, base, folder, jobs=jobs, subset=subset, text_col=text_col, label_col=label_col,
            on_point=report,
        )  # fmt: skip
        columns = list(axes) + ["validation accuracy", "train s", "status"]
        rows = [
            [r[a] for a in axes]
            + [r.get("validation_accuracy", float("nan")), r.get("train_seconds"), r["status"]]
            for r in summary["rows"]
        ]
        console.print(table(f"{len(rows)} points, best validation accuracy first", columns, rows))
        best = summary["best"]
        if best:
            settings = ", ".join(f"{a}={best[a]}" for a in axes)
            console.print(
                f"Best: {settings} — validation {best['validation_accuracy']:.4f}, "
                f"test {best['test_accuracy']:.4f} (run {folder / best['point']})"
            )
        if len(axes) >= 2 and best:
            (folder / "heatmap.png").write_bytes(sweep_heatmap(summary, pairs[0], pairs[1]))
            console.print(f"Heatmap: {folder / 'heatmap.png'}")
        if summary["failed"]:
            raise LoralabError(f"{len(summary['failed'])} point(s) failed: {', '.join(summary['failed'])}.")


def _search(data, space_specs, base, folder, trials, storage, study, subset, text_col, label_col) -> None:
    # deferred: loralab.runs.search imports torch, transformers and the training loop (~3.5 s)
    from loralab.runs.search import parse_space, run_search

    try:
        # optional extra: search (optuna)
        import optuna  # noqa: F401
    except ImportError:
        raise LoralabError("--search optuna needs the search extra: pip install 'loralab[search]'.") from None

    space = parse_space(space_specs)
    clash = sorted(set(base) & set(space))
    if clash:
        raise LoralabError(f"{', '.join(clash)}: both fixed and searched; keep one.")
    console.print(f"Optuna search over {', '.join(space)} into {folder} (study total: {trials} trials)")
    summary = run_search(
        data, space, base, folder, trials=trials, storage=storage, study_name=study, subset=subset,
        text_col=text_col, label_col=label_col,
    )  # fmt: skip
    rows = [
        [r["number"], r["state"], r["value"] if r["value"] is not None else float("nan")]
        + [str(r["params"].get(name, "")) for name in space]
        for r in summary["trials"]
    ]
    console.print(
        table(
            "Trials, best validation accuracy first", ["trial", "state", "validation accuracy", *space], rows
        )
    )
    best = summary["best"]
    if best:
        console.print(
            "Best: "
            + ", ".join(f"{k}={v}" for k, v in best["params"].items())
            + f" — validation {best['validation_accuracy']:.4f}, test {best['test_accuracy']:.4f} "
            f"(evaluated once; run {best['run']})"
        )
