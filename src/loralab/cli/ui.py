"""``loralab ui``: the local web page over the runs directory."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import typer

from loralab.cli.common import console, handle_errors, runs_dir
from loralab.cli.options import setting_option
from loralab.errors import LoralabError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_port_free(host: str, port: int) -> None:
    """Fail with one sentence when ``host:port`` cannot be bound, before anything loads.

    uvicorn would log the error and exit without a sentence the user can act on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: connections of a server stopped a moment ago (TIME_WAIT) do not
        # hold the port, a server still listening on it does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise LoralabError(
                    f"Port {port} on {host} is already in use; choose another with --port."
                ) from None
            raise LoralabError(f"Cannot listen on {host}:{port} ({err.strerror}).") from None


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def ui(
        port: int = typer.Option(7860, "--port", help="Port of the page."),
        runs: Path | None = typer.Option(
            None,
            "--runs-dir",
            help="Folder of runs, uploads and exports (default: $LORALAB_RUNS_DIR or runs/).",
        ),
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback by default)."),
        model: str = setting_option("model"),
        open_browser: bool = typer.Option(True, "--open/--no-open", help="Open the page in a browser."),
    ) -> None:
        """Open the whole workflow in a local web page: load data, compare, try, export, browse runs.

        --model is the encoder the page offers first; each comparison can name another."""
        try:
            import python_multipart  # noqa: F401  (form uploads)
            import uvicorn

            from loralab.ui.app import create_app
        except ImportError:
            raise LoralabError(
                "the page needs the ui extra: pip install 'loralab[ui]' (FastAPI, uvicorn, Jinja2, "
                "python-multipart)."
            ) from None
        check_port_free(host, port)
        folder = runs or runs_dir()
        if host not in LOOPBACK:
            console.print(
                f"[yellow]warning:[/] listening on {host}: anyone who can reach it can upload files and "
                "start jobs."
            )
        # On loopback only the loopback names may address the page (see create_app).
        allowed = ["127.0.0.1", "localhost", "::1", "[::1]"] if host in LOOPBACK else None
        web_app = create_app(folder, model=model, allowed_hosts=allowed)
        url = f"http://{'localhost' if host in LOOPBACK else host}:{port}/"
        console.print(f"loralab ui on {url} (runs in {folder}; one job at a time). Ctrl-C stops it.")
        if open_browser:
            # could be at module level: webbrowser is in the standard library and cheap
            import webbrowser

            webbrowser.open(url)
        uvicorn.run(web_app, host=host, port=port, log_level="warning")
