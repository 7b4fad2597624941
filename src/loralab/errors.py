"""Errors that describe a user's mistake in one sentence, and the translation of known failures.

The CLI and the HTTP API print a :class:`LoralabError` as a single line (exit code 2, or a
4xx answer). Failures that are not bugs but arrive as other exceptions — a full disk, a
read-only folder, a damaged JSON or safetensors file, text that is not Unicode — are turned
into one sentence by :func:`known_failure`, the one place that knows them. Anything else is
a bug: :func:`log_internal_error` writes its traceback to a log file and the user sees one
line pointing at it.
"""

from __future__ import annotations

import difflib
import errno
import os
import traceback
from datetime import datetime
from pathlib import Path

LOG_DIR_ENV = "LORALAB_LOG_DIR"


class LoralabError(Exception):
    """A problem with the user's input (file, column, label, model, flag)."""

    exit_code = 2


class DataError(LoralabError):
    """The data cannot be read or does not fit the task."""


class ModelError(LoralabError):
    """The model cannot be loaded, or a module asked for does not exist."""


class RunError(LoralabError):
    """A run folder is missing, incomplete, damaged, busy, or would be overwritten."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so runs record ``interrupted`` and jobs stay resumable.

    A subclass of :class:`KeyboardInterrupt` so that every ``except KeyboardInterrupt`` that
    cleans up after Ctrl-C also cleans up after ``kill``."""

    exit_code = 143  # 128 + SIGTERM, what shells report for a terminated process


def closest(name: str, choices: list[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` when a close match exists, else an empty string."""
    match = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""


_OS_ADVICE = {
    errno.ENOSPC: "no space left on the device; free some space and run the command again",
    errno.EDQUOT: "the disk quota is exceeded; free some space and run the command again",
    errno.EROFS: "the file system is read-only; choose a writable location",
    errno.EACCES: "permission denied; choose a location you can write to",
    errno.EPERM: "operation not permitted; choose a location you can write to",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, expected a file",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EMFILE: "too many open files",
    errno.EADDRINUSE: "the address is already in use; choose another --port",
}


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def known_failure(err: BaseException) -> str | None:
    """One sentence for a failure that is the environment's or the data's, not a bug; else None.

    Recognised by type name where the type lives in an optional or heavy package
    (safetensors, huggingface_hub), so this bottom layer imports none of them."""
    name = type(err).__name__
    if isinstance(err, LoralabError):
        return str(err)
    if isinstance(err, OSError) and err.errno in _OS_ADVICE:
        where = err.filename or err.filename2
        advice = _OS_ADVICE[err.errno]
        return f"{where}: {advice}." if where else f"{advice[0].upper()}{advice[1:]}."
    if isinstance(err, UnicodeError):
        return f"Text that is not valid Unicode ({_first_line(err)}); use UTF-8 text."
    if name == "JSONDecodeError":
        return f"A JSON file is damaged ({_first_line(err)}); restore it or recreate the run."
    if name == "SafetensorError":
        return f"A safetensors weights file is damaged ({_first_line(err)}); restore it or retrain."
    compression = name in ("BadGzipFile", "LZMAError") or (name == "error" and "zlib" in type(err).__module__)
    if isinstance(err, EOFError) or compression:
        return f"A compressed file is truncated or damaged ({_first_line(err)})."
    if name == "HFValidationError":
        return f"A model folder is missing files or names a model that does not exist ({_first_line(err)})."
    return None


def log_dir() -> Path:
    """Where tracebacks of internal errors go: ``$LORALAB_LOG_DIR`` or the user's cache folder."""
    if os.environ.get(LOG_DIR_ENV):
        return Path(os.environ[LOG_DIR_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "loralab" / "logs"


def log_internal_error(err: BaseException, context: str) -> Path | None:
    """Write ``err``'s traceback to a new file under :func:`log_dir`; return its path, or None
    when even that cannot be written (a full disk leaves the user with the one line)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"error-{stamp}-{os.getpid()}.log"
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        path.write_text(f"{context}\n\n{text}", encoding="utf-8", errors="backslashreplace")
    except OSError:
        return None
    return path


def internal_error_line(err: BaseException, log: Path | None) -> str:
    """The single line a user sees for a bug."""
    where = f"the traceback is in {log}" if log else "the traceback could not be saved"
    return f"internal error ({type(err).__name__}: {_first_line(err)}); please report it — {where}."
