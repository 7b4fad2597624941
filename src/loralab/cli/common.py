"""What every command shares: error handling, the console, tables, default run folders."""

from __future__ import annotations

import functools
import os
import re
import select
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loralab.config import uneven
from loralab.errors import (
    LoralabError,
    Terminated,
    internal_error_line,
    known_failure,
    log_internal_error,
)
from loralab.reports.page import fmt  # the console and the report print numbers alike
from loralab.runs.recommend import balanced_accuracy

# Outside a terminal Rich assumes 80 columns, too narrow for the comparison table; logs and
# pipes take long lines, so tables there get the width they need (up to 200 columns).
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

RUNS_DIR_ENV = "LORALAB_RUNS_DIR"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with the one line that tells how to go on from where the command stopped."""

    def __init__(self, hint: str) -> None:
        super().__init__(hint)
        self.hint = hint


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


_shown: set[str] = set()


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    # One line a user can read, not Python's "file:line: UserWarning:" and the source line;
    # and once per command: every warnings.catch_warnings() (transformers and PEFT use them)
    # resets Python's record of what was shown, so a sweep repeated the same line per point.
    text = str(message)
    if text in _shown:
        return
    _shown.add(text)
    err_console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


def _say_error(message: str) -> None:
    # escape: messages quote things like loralab[onnx] that Rich would take for markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def handle_errors(func: F) -> F:
    """The CLI's error boundary: a user's mistake or a known failure (full disk, damaged file,
    …) becomes one line on stderr and exit code 2; Ctrl-C exits 130 and SIGTERM 143, both
    after the command has recorded the interruption; any other exception is a bug, shown as
    one "internal error" line while its traceback goes to a log file."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _raise_terminated)
        warnings.showwarning = _show_warning
        _shown.clear()
        try:
            return func(*args, **kwargs)
        except (typer.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except Terminated:
            err_console.print("[bold yellow]terminated[/]", highlight=False)
            raise typer.Exit(Terminated.exit_code) from None
        except KeyboardInterrupt as err:
            hint = f": {escape(err.hint)}" if isinstance(err, Interrupted) else ""
            err_console.print(f"[bold yellow]interrupted[/]{hint}", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
        except Exception as err:
            if isinstance(err, BrokenPipeError) and _stdout_reader_gone():
                # `loralab predict RUN --input F | head`: the reader has what it wanted. Stop
                # quietly with a shell's SIGPIPE status, as command-line tools do; stdout goes
                # to /dev/null so that Python's own flush at exit does not fail a second time.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise typer.Exit(128 + signal.SIGPIPE) from None
            message = known_failure(err)
            if message is not None:
                _say_error(message)
                raise typer.Exit(LoralabError.exit_code) from None
            log = log_internal_error(err, f"loralab {' '.join(sys.argv[1:])}")
            _say_error(internal_error_line(err, log))
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end has been closed (poll reports an error)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout is no file
        return False


THREADS_HELP = "Torch threads (default: all cores)."


def use_threads(threads: int | None) -> None:
    """Run torch on ``threads`` threads (``--threads``), after checking the number."""
    if threads is None:
        return
    if threads < 1:
        raise LoralabError(f"--threads must be ≥ 1, got {threads}.")
    # deferred: torch takes ~1 s to import; a command that needs threads loads it anyway
    import torch

    torch.set_num_threads(threads)


def runs_dir() -> Path:
    """Where runs go by default: ``$LORALAB_RUNS_DIR`` or ``./runs``."""
    return Path(os.environ.get(RUNS_DIR_ENV, "runs"))


def default_run_dir(data: str, method: str) -> Path:
    name = Path(data.rstrip("/")).name.split(".")[0] if data not in ("demo",) else "demo"
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", name.replace("hf:", "")).strip("-") or "data"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return runs_dir() / f"{name}-{method}-{stamp}"


def table(title: str | None, columns: list[str], rows: list[list[Any]], **kwargs: Any) -> Table:
    result = Table(title=title, title_justify="left", **kwargs)
    for i, column in enumerate(columns):
        # Words read from the left, numbers line up on the right.
        textual = i == 0 or any(isinstance(row[i], str) and not _numeric(row[i]) for row in rows)
        # "fold" wraps a long value onto the next line; Rich's default would cut it to "…",
        # which outside a terminal (80 columns) cut method names and numbers.
        result.add_column(column, justify="left" if textual else "right", overflow="fold")
    for row in rows:
        result.add_row(*[fmt(v) for v in row])
    return result


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,.]+%?( \(.*\))?", text.strip()))


def metrics_table(metrics_by_name: dict[str, dict], title: str | None = None) -> Table:
    """Rows: accuracy, precision, recall, F1, macro-F1 (for two classes); one column per split or model."""
    names = list(metrics_by_name)
    first = next(iter(metrics_by_name.values()))
    average = "positive class '" + first["positive_label"] + "'" if first.get("positive_label") else "macro"
    rows = [
        ["accuracy"] + [m["accuracy"] for m in metrics_by_name.values()],
        [f"precision ({average})"] + [m["precision"] for m in metrics_by_name.values()],
        [f"recall ({average})"] + [m["recall"] for m in metrics_by_name.values()],
        [f"F1 ({average})"] + [m["f1"] for m in metrics_by_name.values()],
        ["texts"] + [m["n"] for m in metrics_by_name.values()],
    ]
    if first.get("positive_label"):  # otherwise the F1 row above is already the macro average
        rows.insert(4, ["macro-F1"] + [m["macro_f1"] for m in metrics_by_name.values()])
    # On uneven classes accuracy flatters leaning to the common ones: show what compare judges by.
    measured = metrics_by_name.values()
    if any(uneven({k: c["support"] for k, c in (m.get("per_class") or {}).items()}) for m in measured):
        balanced = [balanced_accuracy(m) for m in metrics_by_name.values()]
        rows.insert(1, ["balanced accuracy"] + ["–" if b is None else b for b in balanced])
    return table(title, ["metric", *names], rows)


def per_class_table(metrics: dict, title: str) -> Table:
    rows = [
        [name, v["precision"], v["recall"], v["f1"], v["support"]] for name, v in metrics["per_class"].items()
    ]
    return table(title, ["class", "precision", "recall", "F1", "support"], rows)


def confusion_table(metrics: dict, title: str) -> Table:
    labels = metrics["labels"]
    rows = [[f"true {name}", *row] for name, row in zip(labels, metrics["confusion_matrix"], strict=True)]
    return table(title, ["", *[f"pred {n}" for n in labels]], rows)


def is_interactive() -> bool:
    return sys.stderr.isatty()
