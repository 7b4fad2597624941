"""The command reference of docs/cli.md, generated from the commands themselves.

The reference is built from the same command objects that print ``--help``, so a test can
compare it with the page and the page cannot drift from the CLI. Regenerate it with
``make docs-cli`` (``python -m loralab.cli.reference docs/cli.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

BEGIN = "<!-- BEGIN GENERATED REFERENCE: make docs-cli -->"
END = "<!-- END GENERATED REFERENCE -->"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(param: Any) -> str:
    shown = getattr(param, "show_default", False)
    default = param.default
    if not shown or default is None or default is False or default in ((), []) or callable(default):
        return ""
    return f" [default: {default}]"


def _param_row(param: Any) -> str:
    if param.param_type_name == "argument":
        name = f"`{param.metavar or param.name}`"
        required = " (required)" if param.required else ""
        return f"| {name} | {_cell(getattr(param, 'help', None) or '')}{required} |"
    names = ", ".join(f"`{decl}`" for decl in [*param.opts, *param.secondary_opts])
    return f"| {names} | {_cell((param.help or '') + _default(param))} |"


def _commands(command: Any, path: list[str], parent: Any = None):
    """(path, command, context) for every command below ``command``, depth first."""
    context = command.context_class(command, info_name=path[-1], parent=parent)
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path, command, context
        return
    for name in command.list_commands(context):
        yield from _commands(subcommands[name], [*path, name], context)


def command_reference() -> str:
    """Markdown: for every command, its usage, its help and a table of its parameters."""
    # could be at module level: typer and loralab.cli are loaded whenever this module is
    import typer

    from loralab.cli import app

    parts = []
    for path, command, context in _commands(typer.main.get_command(app), ["loralab"]):
        usage = " ".join([*path, *command.collect_usage_pieces(context)])
        rows = [_param_row(p) for p in command.get_params(context) if not getattr(p, "hidden", False)]
        parts.append(
            "\n".join(
                [
                    f"### {' '.join(path)}",
                    "",
                    f"`{usage}`",
                    "",
                    (command.help or "").strip(),
                    "",
                    "| parameter | meaning |",
                    "| --- | --- |",
                    *rows,
                ]
            )
        )
    return "\n\n".join(parts) + "\n"


def write_reference(page: Path) -> bool:
    """Replace the generated part of ``page``; return whether it changed."""
    text = page.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    updated = f"{head}{BEGIN}\n\n{command_reference()}\n{END}{tail}"
    if updated != text:
        page.write_text(updated)
    return updated != text


def generated_part(page: Path) -> str:
    """The generated part of ``page`` as it stands."""
    return page.read_text().partition(BEGIN)[2].partition(END)[0].strip("\n") + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/cli.md")
    print(f"{target}: {'updated' if write_reference(target) else 'already up to date'}")
