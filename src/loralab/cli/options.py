"""Options that several commands share, generated from the dataclasses that declare them.

A training setting is declared once, as a field of :class:`~loralab.config.TrainConfig` with its
help text (see that module); the data options are the fields of
:class:`~loralab.config_files.JobConfig`. :func:`with_options` adds them to a command's
signature, which is what Typer reads to build the command's parameters, so every command that
trains takes every setting under the same flag, and a new field appears on all of them.

Options of commands that layer a config file under the flags (train, compare, sweep) default to
``None``, meaning "not given": the file or the field's default applies. Their help text states
the field's default instead.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer

from loralab.config import TrainConfig, setting_types
from loralab.config_files import J, JobConfig, layer_settings

F = TypeVar("F", bound=Callable[..., Any])

DATA_PANEL = "Data"
TRAINING_PANEL = "Training settings"
CONFIG_PANEL = "Configuration"
# The parameter of a field's off switch (``--no-fast-paths``) is the field's name with this prefix.
OFF_PREFIX = "off_"


def _field(cls: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def _help(item: dataclasses.Field) -> str:
    text = item.metadata["help"]
    if item.default is not None and item.default is not dataclasses.MISSING and "default" not in text:
        shown = str(item.default).lower() if isinstance(item.default, bool) else item.default
        text = f"{text} (default: {shown})"
    return text


def option(
    cls: type, name: str, *, layered: bool = True, panel: str | None = TRAINING_PANEL
) -> inspect.Parameter:
    """The Typer option for the field ``name`` of ``cls``, as a keyword-only parameter.

    ``layered`` options default to ``None`` ("not given"); the others to the field's default.
    """
    item = _field(cls, name)
    kind, _ = setting_types(cls)[name]
    flag = item.metadata.get("flag") or "--" + name.replace("_", "-")
    if kind is bool and "/" not in flag:
        flag = f"{flag}/--no-{flag[2:]}"
    decls = [flag] + ([item.metadata["short"]] if item.metadata.get("short") else [])
    value_type = str if kind is list else kind  # lists are given comma-separated
    default = None if layered or item.default is dataclasses.MISSING else item.default
    info = typer.Option(default, *decls, help=_help(item), show_default=False, rich_help_panel=panel)
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=info,
        annotation=Optional[value_type],  # noqa: UP045
    )


def off_switch(item: dataclasses.Field) -> inspect.Parameter:
    """The switch ``off_flag`` of a field (``--no-fast-paths``), standing for ``--NAME OFF_VALUE``."""
    flag = item.metadata.get("flag") or "--" + item.name.replace("_", "-")
    info = typer.Option(
        False,
        item.metadata["off_flag"],
        help=f"Same as {flag} {item.metadata['off_value']}.",
        rich_help_panel=TRAINING_PANEL,
    )
    return inspect.Parameter(
        OFF_PREFIX + item.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=bool
    )


def training_options(exclude: Iterable[str] = ()) -> list[inspect.Parameter]:
    """One option per documented field of TrainConfig, all layered, and the off switches."""
    skip = set(exclude)
    parameters = []
    for item in dataclasses.fields(TrainConfig):
        if item.metadata.get("help") and item.name not in skip:
            parameters.append(option(TrainConfig, item.name))
            if item.metadata.get("off_flag"):
                parameters.append(off_switch(item))
    return parameters


def data_options(*names: str, layered: bool = False) -> list[inspect.Parameter]:
    """The data options (``text_col``, ``label_col``, ``subset``) a command takes."""
    return [option(JobConfig, name, layered=layered, panel=DATA_PANEL) for name in names]


def setting_option(name: str) -> Any:
    """One training setting with its own default, for a command that reads but does not layer it."""
    return option(TrainConfig, name, layered=False).default


def run_data_option(name: str) -> Any:
    """A column option (``text_col``, ``label_col``) of a command that reads data for a trained
    run: not given, the run's own column is read where the data has it, else the field's default."""
    item = _field(JobConfig, name)
    role = name.removesuffix("_col")
    default = f"the run's {role} column where the data has it, else {item.default}"
    flag = "--" + name.replace("_", "-")
    return typer.Option(
        None,
        flag,
        help=f"{item.metadata['help']} (default: {default})",
        show_default=False,
        rich_help_panel=DATA_PANEL,
    )


DATA_OPTIONS = ("text_col", "label_col", "subset")

CONFIG_OPTIONS = [
    inspect.Parameter(
        "config_file",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            None,
            "--config",
            help="YAML or JSON file of settings, which may also name data, text_col, label_col, subset "
            "and output_dir; --set and flags override it.",
            rich_help_panel=CONFIG_PANEL,
        ),
        annotation=Optional[Path],  # noqa: UP045
    ),
    inspect.Parameter(
        "assignments",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            None,
            "--set",
            help="A setting as key=value (repeatable), e.g. --set lora_rank=4; overrides --config.",
            rich_help_panel=CONFIG_PANEL,
        ),
        annotation=Optional[list[str]],  # noqa: UP045
    ),
]


def with_options(*groups: Iterable[inspect.Parameter]) -> Callable[[F], F]:
    """Add the parameters of ``groups`` to a command after its own, for Typer to read.

    The command receives them through ``**options``, or through keyword-only parameters it
    declares without a default (for their types); a parameter the command declares with a
    default of its own wins over the shared one.
    """

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        shared = {p.name: p for group in groups for p in group}
        own = []
        for parameter in signature.parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            if parameter.name in shared and parameter.default is inspect.Parameter.empty:
                own.append(shared.pop(parameter.name))
            else:
                shared.pop(parameter.name, None)
                own.append(parameter)
        func.__signature__ = signature.replace(parameters=own + list(shared.values()))  # type: ignore[attr-defined]
        return func

    return decorate


def layered_job(
    options: dict[str, Any],
    data: str | None,
    output_dir: Path | None = None,
    job_class: type[J] = JobConfig,  # type: ignore[assignment]
) -> tuple[dict[str, Any], J]:
    """Training settings and the job of a layered command, from what Typer passed in."""
    config_file = options.pop("config_file", None)
    assignments = options.pop("assignments", None)
    for item in dataclasses.fields(TrainConfig):
        if options.pop(OFF_PREFIX + item.name, False):
            options[item.name] = item.metadata["off_value"]
    flags = dict(options, data=data, output_dir=str(output_dir) if output_dir else None)
    return layer_settings(config_file, assignments, flags, job_class)
