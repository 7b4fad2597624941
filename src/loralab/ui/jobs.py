"""The background worker: one comparison at a time, on one thread, state in its folder.

A web request must answer in milliseconds while a comparison takes minutes, so the work runs on
a thread. One job per process keeps the two CPU cores of a laptop for that job; a second start
is refused with a sentence rather than queued, so nobody waits on work they cannot see. What
the job is doing is written to ``job.json`` in its compare folder (and the runs write their own
manifests and histories), so any tab, or the page after a restart, reads the same state.

Cancelling sets a flag that is checked after every epoch and every finished run. The run in
progress is then marked ``interrupted`` exactly as Ctrl-C marks it in the CLI, and starting the
same comparison again reuses every completed run.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from loralab.config import DEFAULT_MODEL, TrainConfig
from loralab.errors import LoralabError
from loralab.methods import get_method
from loralab.runs.folder import now, write_json
from loralab.ui.progress import read_json

JOB_FILE = "job.json"
log = logging.getLogger(__name__)


class JobBusy(LoralabError):
    """A job is already running in this process."""


class JobCancelled(KeyboardInterrupt):
    """Raised inside the worker to stop a comparison.

    A KeyboardInterrupt so that the run in progress ends exactly as it does on Ctrl-C in the
    CLI: marked ``interrupted``, its half-saved model removed."""


@dataclass
class CompareRequest:
    """What the page asks ``loralab compare`` to do."""

    data: str
    methods: list[str]
    text_col: str = "text"
    label_col: str = "label"
    seeds: int = 1
    train_sizes: list[int | None] | None = None
    model: str = DEFAULT_MODEL
    max_length: int = 128
    subset: int | None = None

    def check(self) -> None:
        if not self.methods:
            raise LoralabError("Pick at least one method to compare.")
        for name in self.methods:
            get_method(name)
        if self.seeds < 1:
            raise LoralabError(f"Seeds must be 1 or more, got {self.seeds}.")

    def config(self) -> TrainConfig:
        return TrainConfig(model=self.model, max_length=self.max_length)


def read_job(folder: Path, worker: Worker | None = None) -> dict:
    """The job state of ``folder``; a job left ``running`` by a process that is no longer
    running it reads as ``stopped``."""
    job = read_json(folder / JOB_FILE)
    if job.get("status") == "running" and (worker is None or worker.current() != folder.resolve()):
        job["status"] = "stopped"
        job["message"] = (
            "The process running this comparison stopped; start it again to resume "
            "(completed runs are reused; an unfinished one goes on from its last checkpoint, if it made one)."
        )
    return job


class Worker:
    """Runs one comparison at a time on a background thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._folder: Path | None = None
        self._cancel = threading.Event()

    def current(self) -> Path | None:
        """The compare folder being worked on, or ``None`` when idle."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self._folder
            return None

    def start(self, request: CompareRequest, folder: Path) -> Path:
        """Start ``request`` in ``folder``; refuse when a job is already running."""
        request.check()
        folder = folder.resolve()
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise JobBusy(
                    f"A comparison is already running in {self._folder}; this page runs one job at a "
                    "time, so wait for it to finish or cancel it first."
                )
            self._cancel.clear()
            self._folder = folder
            folder.mkdir(parents=True, exist_ok=True)
            write_json(
                folder / JOB_FILE,
                {"status": "running", "started": now(), "pid": os.getpid(), "request": asdict(request)},
            )
            self._thread = threading.Thread(
                target=self.run, args=(request, folder), name="loralab-ui-job", daemon=True
            )
            self._thread.start()
        return folder

    def cancel(self) -> Path | None:
        """Ask the running job to stop after its current epoch; return its folder."""
        folder = self.current()
        if folder is not None:
            self._cancel.set()
        return folder

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _check(self, _row: dict) -> None:
        if self._cancel.is_set():
            raise JobCancelled()

    def run(self, request: CompareRequest, folder: Path) -> None:
        """Do the comparison and write its report; record the outcome in ``job.json``."""
        # deferred: loralab.runs.compare brings the training loop and Accelerate (~1.3 s)
        from loralab.reports.report import write_report
        from loralab.runs.compare import compare

        job = read_json(folder / JOB_FILE) or {"request": asdict(request), "started": now()}
        try:
            compare(
                request.data,
                folder,
                methods=request.methods,
                seeds=request.seeds,
                base_config=request.config(),
                text_col=request.text_col,
                label_col=request.label_col,
                subset=request.subset,
                train_sizes=request.train_sizes,
                progress=False,
                on_run=self._check,
                on_epoch=self._check,
            )
            write_report(folder)
            job.update(status="completed", message="")
        except JobCancelled:
            job.update(
                status="cancelled",
                message=(
                    "Cancelled. Completed runs are kept; start the comparison again to resume "
                    "(the cancelled run goes on from its last checkpoint, if it made one)."
                ),
            )
        except LoralabError as err:
            job.update(status="failed", message=str(err))
        except Exception as err:  # a bug: keep the traceback in the log, say what happened on the page
            log.exception("comparison in %s failed", folder)
            job.update(status="failed", message=f"{type(err).__name__}: {err}")
        job["finished"] = now()
        if folder.exists():  # the user may have deleted the folder while it ran
            write_json(folder / JOB_FILE, job)
