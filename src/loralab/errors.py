"""Errors that describe a user's mistake in one sentence.

The CLI prints a :class:`LoralabError` as a single line and exits with a non-zero
code; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class LoralabError(Exception):
    """A problem with the user's input (file, column, label, model, flag)."""

    exit_code = 2


class DataError(LoralabError):
    """The data cannot be read or does not fit the task."""


class ModelError(LoralabError):
    """The model cannot be loaded, or a module asked for does not exist."""


class RunError(LoralabError):
    """A run folder is missing, incomplete, or would be overwritten."""


def closest(name: str, choices: list[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` when a close match exists, else an empty string."""
    import difflib

    match = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""
