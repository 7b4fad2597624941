"""``loralab lowrank``: how low-rank is a fine-tuning update? (seed 002 tasks 5–7)."""

from __future__ import annotations

from pathlib import Path

import typer

from loralab.analysis.tables import diagnostics_table, rank_table
from loralab.cli.common import THREADS_HELP, console, handle_errors, table, use_threads
from loralab.cli.options import DATA_OPTIONS, data_options, with_options
from loralab.config_files import JobConfig


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    @with_options(data_options(*DATA_OPTIONS))
    def lowrank(
        run: Path = typer.Argument(..., help="A full, lora or lora-scratch run folder."),
        data: str = typer.Argument(..., help="Data to evaluate on (as for evaluate)."),
        split: str = typer.Option(
            "test",
            "--split",
            help="The split of DATA (train, validation or test) the low-rank models are evaluated on.",
        ),
        target_modules: str | None = typer.Option(
            None,
            "--target-modules",
            help="Layers to study in a full run (default: preset); a LoRA run's are the layers it adapted.",
        ),
        against: Path | None = typer.Option(
            None,
            "--against",
            help="A second run of the same base model (e.g. the full run for a LoRA run): reference "
            "line and subspace similarity.",
        ),
        head_run: Path | None = typer.Option(
            None, "--head-run", help="A head-tuned run, drawn as a reference line."
        ),
        threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
        *,
        text_col: str,
        label_col: str,
        subset: int | None,
    ) -> None:
        """Truncated-SVD approximations of the targeted layers at ranks halving from full to 1,
        the replace test, and the singular spectrum of each layer's update ΔW."""
        # deferred: loralab.analysis.lowrank imports torch, transformers and the runs (~3.5 s)
        from loralab.analysis.lowrank import check_head_run, lowest_rank_above, lowrank_study
        from loralab.reports.plots import delta_spectra, lowrank_curve
        from loralab.runs.folder import write_json

        JobConfig(text_col=text_col, label_col=label_col, subset=subset)  # checks the data options
        use_threads(threads)
        targets = [t.strip() for t in target_modules.split(",")] if target_modules else None
        if head_run is not None:
            check_head_run(run, head_run)
        study = lowrank_study(
            run,
            data,
            split=split,
            targets=targets,
            against=against,
            text_col=text_col,
            label_col=label_col,
            subset=subset,
        )
        if head_run is not None:
            # could join the imports above: loralab.analysis.lowrank has loaded it
            from loralab.runs.evaluate import evaluate_run

            study["head_accuracy"] = evaluate_run(
                head_run, data, split=split, text_col=text_col, label_col=label_col, subset=subset
            )["trained"]["accuracy"]
            study["lowest_rank_beating_head"] = lowest_rank_above(study, study["head_accuracy"])
        for note in study.get("notes") or []:
            console.print(f"[yellow]note:[/] {note}")
        for line in summary_lines(study):
            console.print(line)
        write_json(run / "lowrank.json", study)
        (run / "lowrank.png").write_bytes(lowrank_curve(study))
        written = [run / "lowrank.json", run / "lowrank.png"]
        for kind, png in delta_spectra(study).items():
            (run / f"delta_{kind}.png").write_bytes(png)
            written.append(run / f"delta_{kind}.png")
        console.print("Wrote " + ", ".join(str(p) for p in written))


def summary_lines(study: dict) -> list:
    """The study as printed tables and sentences."""
    lines: list = [table(f"Accuracy on {study['data']} ({len(study['layers'])} layers)", *rank_table(study))]
    refs = [f"this run ({study['method']}): {study['fine_tuned_accuracy']:.4f}"]
    if "against" in study:
        refs.append(f"{study['against']['method']} run: {study['against']['accuracy']:.4f}")
    if "head_accuracy" in study:
        refs.append(f"head-tuned: {study['head_accuracy']:.4f}")
        lowest = study.get("lowest_rank_beating_head")
        refs.append(
            f"lowest rank of ΔW that beats head tuning: {lowest}"
            if lowest
            else "no rank of ΔW beats head tuning"
        )
    lines.append("; ".join(refs))
    swap = study["replace_test"]
    lines.append(
        f"Replace test: random clones of the {len(study['layers'])} layers → {swap['random_clones']:.4f}; "
        f"originals put back → {swap['restored']:.4f}"
    )
    lines.append(table("ΔW by layer type (mean over layers)", *diagnostics_table(study)))
    return lines
