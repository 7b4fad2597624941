"""``loralab lowrank``: how low-rank is a fine-tuning update? (seed 002 tasks 5–7)."""

from __future__ import annotations

from pathlib import Path

import typer

from loralab.cli.common import console, handle_errors, table


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def lowrank(
        run: Path = typer.Argument(..., help="A fully fine-tuned run folder (--method full)."),
        data: str = typer.Argument(..., help="Data to evaluate on (as for evaluate)."),
        split: str = typer.Option("test", "--split"),
        target_modules: str | None = typer.Option(
            None, "--target-modules", help="Layers to approximate (default: preset)."
        ),
        head_run: Path | None = typer.Option(
            None, "--head-run", help="A head-tuned run, drawn as a reference line."
        ),
        text_col: str = typer.Option("text", "--text-col"),
        label_col: str = typer.Option("label", "--label-col"),
    ) -> None:
        """Truncated-SVD approximations of the targeted layers at ranks halving from full to 1."""
        from loralab.analysis.lowrank import lowrank_study
        from loralab.reports.plots import lowrank_curve
        from loralab.runs.folder import write_json

        targets = [t.strip() for t in target_modules.split(",")] if target_modules else None
        study = lowrank_study(run, data, split=split, targets=targets, text_col=text_col, label_col=label_col)
        if head_run is not None:
            from loralab.runs.evaluate import evaluate_run

            study["head_accuracy"] = evaluate_run(
                head_run, data, split=split, text_col=text_col, label_col=label_col
            )["trained"]["accuracy"]
        ranks = sorted({r["rank"] for r in study["rows"]}, reverse=True)
        by = {(r["version"], r["rank"]): r["accuracy"] for r in study["rows"]}
        rows = [[rank, by[(1, rank)], by[(2, rank)]] for rank in ranks]
        console.print(
            table(
                f"Accuracy on {study['data']} ({len(study['layers'])} layers)",
                ["rank", "version 1: rank-r W", "version 2: W0 + rank-r ΔW"],
                rows,
            )
        )
        console.print(
            f"Fully fine-tuned: {study['fine_tuned_accuracy']:.4f}"
            + (f"; head-tuned: {study['head_accuracy']:.4f}" if "head_accuracy" in study else "")
        )
        swap = study["replace_test"]
        console.print(
            f"Replace test: random clones of the {len(study['layers'])} layers → "
            f"{swap['random_clones']:.4f}; "
            f"originals put back → {swap['restored']:.4f}"
        )
        write_json(run / "lowrank.json", study)
        (run / "lowrank.png").write_bytes(lowrank_curve(study))
        console.print(f"Wrote {run / 'lowrank.json'} and {run / 'lowrank.png'}")
