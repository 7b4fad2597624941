"""The ``loralab`` command line: one module per command group, each a thin layer over the library."""

from __future__ import annotations

import typer

from loralab import __version__
from loralab.cli import card, compare, data, demo, export, lowrank, model, serve, sweep, train, ui

app = typer.Typer(
    name="loralab",
    help="Labelled text in; a trained, evaluated classifier out (LoRA, full, head).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(model.app, name="model")
train.register(app)
compare.register(app)
compare.register_report(app)
lowrank.register(app)
demo.register(app)
serve.register(app)
export.register(app)
card.register(app)
sweep.register(app)
ui.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loralab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    pass


def main() -> None:
    app()
