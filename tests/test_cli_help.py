"""Every option and argument of every ``loralab`` command says what it is for in ``--help``."""

from __future__ import annotations

import typer

from loralab.cli import app


def _commands(command, path: str = "loralab"):
    # Typer builds its commands on its own copy of click, so groups are told by their commands.
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{path} {name}")


def test_every_parameter_of_every_command_has_help():
    root = typer.main.get_command(app)
    missing = [
        f"{path}: {parameter.name}"
        for path, command in _commands(root)
        for parameter in command.params
        if not getattr(parameter, "hidden", False) and not (getattr(parameter, "help", None) or "").strip()
    ]
    assert missing == []


def test_the_walk_reaches_the_subcommands():
    paths = {path for path, _ in _commands(typer.main.get_command(app))}
    assert {"loralab predict", "loralab data inspect", "loralab serve"} <= paths
