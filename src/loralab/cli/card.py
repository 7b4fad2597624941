"""``loralab card``: print a run's model card."""

from __future__ import annotations

from pathlib import Path

import typer

from loralab.cli.common import handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def card(
        run: Path = typer.Argument(..., help="A completed run folder."),
        write: bool = typer.Option(
            False, "--write", help="Also (re)write RUN/README.md and RUN/model/README.md."
        ),
    ) -> None:
        """Print the run's model card (🤗 format: YAML metadata, data, method, results, use, limits)."""
        # deferred: loralab.runs.card imports torch (~1 s); other commands don't need it
        from loralab.runs.card import model_card, write_model_card

        if write:
            write_model_card(run)
        typer.echo(model_card(run), nl=False)
