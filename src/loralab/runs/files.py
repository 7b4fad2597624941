"""Files written so that a reader sees the old version or the complete new one, with the
modes the user's umask asks for, and the checks that tell a damaged file from a good one."""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from loralab.errors import LoralabError, RunError, known_failure


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (0644 under umask 022).

    ``tempfile.mkstemp`` creates 0600 files and ``mkdtemp`` 0700 folders; renamed into place
    they would keep those modes, hiding runs from the group that shares them."""
    return 0o666 & ~_umask()


def apply_default_modes(root: Path) -> None:
    """Give every file and folder under ``root`` (and ``root``) the umask's default mode."""
    mask = _umask()
    for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; rename it over ``path`` only if the block ends
    without an error, so ``path`` is either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename is None:
            # write() on a full disk names no file; the sentence the user sees should.
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def check_writable(path: Path) -> None:
    """Refuse a file to be written at ``path`` (its missing folders made first) where the nearest
    existing folder above it is a file, is read-only or cannot be written, in the sentence the
    failed writing would give."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    code = None
    if not folder.is_dir():
        code, folder = errno.ENOTDIR, path
    elif hasattr(os, "statvfs") and os.statvfs(folder).f_flag & os.ST_RDONLY:  # not on Windows
        code = errno.EROFS
    elif not os.access(folder, os.W_OK | os.X_OK):
        code = errno.EACCES
    if code is not None:
        raise LoralabError(known_failure(OSError(code, os.strerror(code), str(folder))))


def write_json(path: Path, data: Any) -> None:
    """Write JSON to a temporary name in the same folder, then rename over ``path``."""
    with atomic_write(path) as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")


def write_csv(path: Path, rows: list[dict]) -> None:
    fieldnames: list[str] = []
    for row in rows:
        fieldnames += [k for k in row if k not in fieldnames]
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)


def read_json_file(path: Path, what: str) -> Any:
    """Parse a JSON file loralab wrote; a damaged one is named, with what to do about it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{path}: damaged, not valid JSON ({err}); {what}.") from None


def model_fingerprint(run_dir: Path) -> str:
    """A digest of a run's saved model files (names and contents): equal for the same model."""
    digest = hashlib.sha256()
    model_dir = run_dir / "model"
    for path in sorted(model_dir.rglob("*")) if model_dir.is_dir() else []:
        if path.is_file():
            digest.update(str(path.relative_to(model_dir)).encode() + b"\0")
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file's framing, read from its header alone, or None.

    The format is an 8-byte little-endian header length, a JSON header giving each tensor's
    byte range, then the data; a truncated file is shorter than the header's last range."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return f"{size} bytes, shorter than a safetensors header"
        header_size = int.from_bytes(prefix, "little")
        if header_size > size - 8:
            return "the header runs past the end of the file (truncated)"
        try:
            header = json.loads(handle.read(header_size))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return "the header is not valid JSON"
    if not isinstance(header, dict):
        return "the header is not a JSON object"
    ends = [
        entry["data_offsets"][1]
        for key, entry in header.items()
        if key != "__metadata__" and isinstance(entry, dict) and len(entry.get("data_offsets", ())) == 2
    ]
    expected = 8 + header_size + max(ends, default=0)
    if expected != size:
        return f"{size:,} bytes where its header describes {expected:,} (truncated or padded)"
    return None
