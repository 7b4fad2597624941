"""The ``loralab ui`` web app: FastAPI routes that return HTML fragments for HTMX.

Every route calls the library's own functions (``load_data``, ``data_report``, ``compare``,
``write_report``, ``load_for_prediction``, ``predict_file``, ``export_run``); the page adds
forms and tables around them, nothing else. A user's mistake becomes one sentence in the
fragment the page swaps in, never a traceback. All state lives under the runs directory.
"""

from __future__ import annotations

import random
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from loralab.config import DEFAULT_MODEL
from loralab.errors import DataError, LoralabError, RunError
from loralab.runs.recommend import CROSSFIT_MARK, CROSSFIT_NOTE, judged_column, judged_header
from loralab.ui import models
from loralab.ui.jobs import JOB_FILE, CompareRequest, JobBusy, Worker, read_job
from loralab.ui.progress import compare_progress
from loralab.ui.runs_index import COMPARE_FILE, completed_runs, inside, list_runs, resolve_in, ship_choice
from loralab.ui.uploads import TableColumns, save_upload, source_columns

HERE = Path(__file__).parent
SAMPLE_ROWS = 3


def parse_train_sizes(text: str) -> list[int | None] | None:
    """``"8,16,all"`` → ``[8, 16, None]``; empty → ``None`` (the whole training split)."""
    # deferred: loralab.runs.compare brings the training loop and Accelerate (~1.3 s)
    from loralab.runs.compare import parse_train_sizes as parse_sizes

    return parse_sizes(text) if text.strip() else None


def short_path(path: object, root: Path) -> str:
    """A path under the runs directory relative to it, an uploaded file by its own name
    (tweets.csv), others as given."""
    text = str(path)
    uploaded = re.fullmatch(re.escape(str(root / "uploads")) + r"/[^/]+/([^/]+)", text)
    if uploaded:  # the user's own file, by its own name
        return uploaded.group(1)
    prefix = str(root) + "/"
    return text[len(prefix) :] if text.startswith(prefix) else text


# The command line's flags in a message, as the page names the same fields.
PAGE_FIELDS = {
    "--text-col": "the Text column field",
    "--label-col": "the Label column field",
    "--max-length": "Max tokens",
    "--model": "the Model field",
}


def for_the_page(message: str, root: Path) -> str:
    """A loralab message as the page shows it: the page's field names for the command line's
    flags, and uploaded files by their own names rather than their folder under the runs
    directory (uploads/3f9a…/tweets.csv is the user's tweets.csv)."""
    for flag, field in PAGE_FIELDS.items():
        message = re.sub(rf"{re.escape(flag)}(?![\w-])", field, message)
    uploads = re.escape(str(root / "uploads")) + r"/[^/\s]+/"
    return re.sub(uploads, "", message)


def _compare_folder(runs_dir: Path, data: str) -> Path:
    name = "demo" if data == "demo" else Path(data.rstrip("/")).name.split(".")[0]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return runs_dir / f"{name}-compare-{stamp}"


def ranked_runs(results: dict, compare_name: str) -> list[tuple[str, str]]:
    """A comparison's runs on all its training data, as (name in the run lists, method): the
    recommended method's first, then by validation accuracy, best first."""
    method = (results.get("recommendation") or {}).get("method")
    runs = [r for r in results.get("runs") or [] if r.get("train_size") in (None, "all") and r.get("run")]
    runs.sort(key=lambda r: (r.get("method") != method, -(r.get("validation_accuracy") or 0.0)))
    return [(f"{compare_name}/{r['run']}", str(r.get("method"))) for r in runs]


def recommended_run(results: dict, compare_name: str) -> str | None:
    """The run Try starts from: the recommended method's with the best validation accuracy."""
    method = (results.get("recommendation") or {}).get("method")
    return next((name for name, of in ranked_runs(results, compare_name) if of == method), None)


def guard_origin(app: FastAPI, allowed_hosts: list[str]) -> None:
    """Refuse other Host headers, and POSTs whose Origin is not one of ``allowed_hosts``."""
    # could be at module level: starlette comes with fastapi, which this module imports
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    @app.middleware("http")
    async def same_origin(request: Request, call_next):
        origin = request.headers.get("origin")
        if request.method == "POST" and origin and urlsplit(origin).hostname not in allowed_hosts:
            return PlainTextResponse(f"Requests from {origin} are refused; use the page itself.", 403)
        return await call_next(request)

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)


def latest_job(runs_dir: Path, worker: Worker) -> Path | None:
    """The running job's folder, else the compare folder whose job was started last."""
    current = worker.current()
    if current is not None:
        return current
    jobs = [p.parent for p in runs_dir.rglob(JOB_FILE)] if runs_dir.exists() else []
    return max(jobs, key=lambda p: str(read_job(p).get("started", "")), default=None)


def create_app(
    runs_dir: str | Path = "runs", model: str = DEFAULT_MODEL, allowed_hosts: list[str] | None = None
) -> FastAPI:
    """Build the app over ``runs_dir``; ``model`` is the default encoder offered on the page.

    With ``allowed_hosts`` (``loralab ui`` on loopback passes the loopback names) requests for
    any other host name are refused, and so are form posts from pages of another origin: the
    page can read local files and start jobs, so neither another web site open in the same
    browser (a cross-site form post) nor a DNS-rebinding page may drive it."""
    root = Path(runs_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    worker = Worker()
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["short"] = lambda path: short_path(path, root)
    templates.env.filters["for_page"] = lambda message: for_the_page(str(message), root)
    templates.env.globals.update(
        crossfit_mark=CROSSFIT_MARK,
        crossfit_note=CROSSFIT_NOTE,
        judged_column=judged_column,
        judged_header=judged_header,
    )
    app = FastAPI(title="loralab", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.worker = worker
    app.state.runs_dir = root
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    if allowed_hosts:
        guard_origin(app, allowed_hosts)

    def page(request: Request, template: str, /, **context: Any) -> HTMLResponse:
        context.setdefault("runs_dir", root)
        return templates.TemplateResponse(request, template, context)

    def error(request: Request, err: Exception) -> HTMLResponse:
        return page(request, "error.html", message=for_the_page(str(err), root))

    def job_context(folder: Path | None, fragment: bool = True) -> dict:
        """What progress.html shows; a ``fragment`` also refreshes the run lists once a job ends."""
        runs = completed_runs(root)
        context = {"runs": runs, "entries": list_runs(root), "fragment": fragment}
        context["ship_choice"] = ship_choice(runs, [])
        if folder is None:
            return context | {"job": None}
        job = read_job(folder, worker) or {"status": "deleted" if not folder.exists() else "unknown"}
        progress = compare_progress(folder) if folder.exists() else None
        name = folder.relative_to(root) if root in folder.parents else folder
        if progress is not None and progress.results:
            context["recommended"] = recommended_run(progress.results, str(name))
            ranked = [run for run, _ in ranked_runs(progress.results, str(name))]
            context["ship_choice"] = ship_choice(runs, ranked)  # the first of them it can export
        return context | {
            "job": job,
            "folder": folder,
            "name": name,
            "progress": progress,
            "running": job.get("status") == "running",
            "deleted": not folder.exists(),
        }

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        return page(
            request, "index.html", model=model, **job_context(latest_job(root, worker), fragment=False)
        )

    def columns_fragment(request: Request, read) -> HTMLResponse:
        try:
            columns: TableColumns = read()
        except LoralabError as err:
            return error(request, err)
        return page(request, "columns.html", columns=columns, data=str(columns.path), model=model)

    @app.post("/data/upload", response_class=HTMLResponse)
    def upload(request: Request, file: UploadFile = File(...)) -> HTMLResponse:
        return columns_fragment(request, lambda: save_upload(root, file.filename or "upload", file.file))

    @app.post("/data/source", response_class=HTMLResponse)
    def source(request: Request, data: str = Form(...)) -> HTMLResponse:
        return columns_fragment(request, lambda: source_columns(data.strip()))

    @app.post("/data/inspect", response_class=HTMLResponse)
    def inspect(
        request: Request,
        data: str = Form(...),
        text_col: str = Form(...),
        label_col: str = Form(...),
        model_name: str = Form(model, alias="model"),
        max_length: int = Form(128),
    ) -> HTMLResponse:
        # deferred: loralab.runs.compare brings the training loop and Accelerate (~1.3 s)
        from loralab.data import load_data
        from loralab.data.inspect import data_report
        from loralab.models import load_tokenizer
        from loralab.runs.compare import DEFAULT_LADDER
        from loralab.ui.costs import DataSize, estimate_cost

        try:
            if text_col == label_col:
                raise DataError(f"The text and the label are both column '{text_col}'; choose two columns.")
            splits = load_data(data, text_col, label_col)
            report = data_report(splits, load_tokenizer(model_name), max_length)
        except LoralabError as err:
            return error(request, err)
        size = DataSize.from_report(report)
        costs = {}
        for name in models.method_names():
            try:
                costs[name] = estimate_cost(name, model_name, size, root).text
            except Exception as err:  # a method whose extra is missing, a model without a config
                costs[name] = f"no estimate ({type(err).__name__})"
        picks = random.Random(42).sample(range(len(splits.train)), min(SAMPLE_ROWS, len(splits.train)))
        return page(
            request,
            "inspect.html",
            report=report,
            data=data,
            text_col=text_col,
            label_col=label_col,
            model=model_name,
            max_length=max_length,
            samples=[(splits.train.labels[i], splits.train.texts[i][:200]) for i in picks],
            methods=models.method_summaries(),
            defaults=set(DEFAULT_LADDER),
            costs=costs,
        )

    @app.post("/compare/start", response_class=HTMLResponse)
    def start(
        request: Request,
        data: str = Form(...),
        text_col: str = Form(...),
        label_col: str = Form(...),
        model_name: str = Form(model, alias="model"),
        max_length: int = Form(128),
        methods: list[str] = Form(default=[]),
        seeds: int = Form(1),
        train_sizes: str = Form(""),
    ) -> HTMLResponse:
        try:
            job = CompareRequest(
                data=data,
                methods=methods,
                text_col=text_col,
                label_col=label_col,
                seeds=seeds,
                train_sizes=parse_train_sizes(train_sizes),
                model=model_name,
                max_length=max_length,
            )
            folder = worker.start(job, _compare_folder(root, data))
        except JobBusy as err:
            # Refused, but the page keeps following the comparison that runs (started in
            # another tab, say): the sentence sits above its live progress, not in its place.
            running = worker.current()
            if running is None:  # it ended in the meantime: starting again would now work
                return error(request, err)
            return page(request, "progress.html", notice=str(err), **job_context(running))
        except LoralabError as err:
            return error(request, err)
        return page(request, "progress.html", **job_context(folder))

    @app.post("/compare/resume", response_class=HTMLResponse)
    def resume(request: Request, folder: str = Form(...)) -> HTMLResponse:
        try:
            path = resolve_in(root, folder, "comparison")
            saved = read_job(path).get("request")
            if not saved:
                raise RunError(f"{path}: has no {JOB_FILE}; resume it with loralab compare -o {path}.")
            worker.start(CompareRequest(**saved), path)
        except LoralabError as err:
            return error(request, err)
        return page(request, "progress.html", **job_context(path))

    @app.get("/compare/progress", response_class=HTMLResponse)
    def progress(request: Request, folder: str) -> HTMLResponse:
        try:
            path = inside(root, folder)
        except LoralabError as err:
            return error(request, err)
        return page(request, "progress.html", **job_context(path))

    @app.post("/compare/cancel", response_class=HTMLResponse)
    def cancel(request: Request) -> HTMLResponse:
        folder = worker.cancel()
        if folder is None:
            return page(
                request, "error.html", message="No comparison is running; there is nothing to cancel."
            )
        return page(request, "progress.html", cancelling=True, **job_context(folder))

    @app.get("/runs", response_class=HTMLResponse)
    def runs(request: Request) -> HTMLResponse:
        return page(request, "runs.html", entries=list_runs(root))

    @app.get("/report/{name:path}", response_class=HTMLResponse)
    def report(request: Request, name: str):
        # could be at module level: the report modules add ~0.2 s to the page's start
        from loralab.reports.report import write_report

        try:
            folder = resolve_in(root, name)
            if not (folder / "manifest.json").exists() and not (folder / COMPARE_FILE).exists():
                raise RunError(f"{name}: neither a run nor a comparison.")
            html = folder / "report.html"
            if not html.exists() or worker.current() == folder:
                html, _ = write_report(folder)
        except LoralabError as err:
            return page(request, "error_page.html", message=for_the_page(str(err), root))
        return FileResponse(html, media_type="text/html")

    models.add_routes(app, root, page, error)
    return app
