"""One writer at a time: OS-level locks on run folders and batch-scoring outputs."""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout


class ExclusiveLock:
    """An OS-level lock on a file next to what it guards, held by one process at a time.

    The operating system drops the lock when its process exits, however it exits (SIGKILL
    included), so a lock never outlives its writer. The file is left in place while others may
    contend for it: removing it would let a second process lock a fresh file while a third
    holds the old one.
    """

    def __init__(self, guarded: Path) -> None:
        self.path = guarded.parent / f".{guarded.name}.lock"
        self._lock = FileLock(str(self.path), timeout=0)

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock if it is free, or frees within ``wait`` seconds; return whether this
        process now holds it."""
        if self._lock.is_locked:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=wait)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)

    @property
    def held(self) -> bool:
        return bool(self._lock.is_locked)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
