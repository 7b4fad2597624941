"""``loralab demo``: LoRA on the embedded model and demo data, end to end."""

from __future__ import annotations

from pathlib import Path

import typer

from loralab.cli.common import console, handle_errors, runs_dir, table

DEMO_SENTENCES = [
    "A warm, funny and beautifully acted film that stays with you.",
    "Tedious, overlong and not nearly as clever as it thinks it is.",
    "The plot is thin, but the performances make it worth seeing.",
]


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def demo(
        output_dir: Path | None = typer.Option(
            None, "--output-dir", "-o", help="Run folder (default: runs/demo)."
        ),
        subset: int = typer.Option(3000, "--subset", help="Rows per split taken from the demo corpus."),
        epochs: int = typer.Option(2, "--epochs", help="Training epochs of the demo's LoRA run."),
        overwrite: bool = typer.Option(
            True, "--overwrite/--no-overwrite", help="Replace an earlier demo run."
        ),
    ) -> None:
        """Train LoRA on Rotten Tomatoes critics' snippets with the embedded MiniLM, then predict."""
        # deferred: loralab.runs.train imports torch, transformers and the training loop (~3.5 s)
        from loralab.cli.train import print_run_summary
        from loralab.config import TrainConfig
        from loralab.runs.train import train_run

        out = output_dir or runs_dir() / "demo"
        console.print(
            f"[bold]loralab demo[/]: LoRA (rank 8, every linear layer) on all-MiniLM-L6-v2, "
            f"{subset:,} training snippets from the Rotten Tomatoes critics corpus, {epochs} epochs."
        )
        result = train_run(
            "demo", TrainConfig(method="lora", epochs=epochs), out, subset=subset, overwrite=overwrite
        )
        for note in result.splits.notes:
            console.print(f"[yellow]note:[/] {note}")
        print_run_summary(result)
        probs = result.classifier.predict_proba(DEMO_SENTENCES)
        labels = result.classifier.labels
        console.print(
            table(
                "Predictions for new sentences",
                ["text", "label", "probability"],
                [[t, labels[p.argmax()], float(p.max())] for t, p in zip(DEMO_SENTENCES, probs, strict=True)],
            )
        )
        console.print(f'Try: loralab predict {out} "your sentence"')
