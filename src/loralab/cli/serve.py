"""``loralab serve``: an HTTP API over one or more run folders."""

from __future__ import annotations

import errno
import os
import socket

import typer

from loralab.cli.common import THREADS_HELP, console, handle_errors, use_threads
from loralab.errors import LoralabError

TOKEN_ENV = "LORALAB_TOKEN"


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def serve(
        runs: list[str] = typer.Argument(..., help="Run folders to serve, as PATH or NAME=PATH."),
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback by default)."),
        port: int = typer.Option(8000, "--port", help="TCP port to listen on."),
        token: str | None = typer.Option(
            None,
            "--token",
            help=f"Bearer token required by the API (or ${TOKEN_ENV}); enables adding models.",
        ),
        max_batch_wait: float = typer.Option(
            5.0,
            "--max-batch-wait",
            help="Milliseconds to gather concurrent requests into one batch (0: off).",
        ),
        max_texts: int = typer.Option(256, "--max-texts", help="Texts per request."),
        max_chars: int = typer.Option(10_000, "--max-chars", help="Characters per text."),
        max_body: int = typer.Option(2 * 1024 * 1024, "--max-body", help="Request body size in bytes."),
        threads: int | None = typer.Option(None, "--threads", help=THREADS_HELP),
    ) -> None:
        """Serve classifiers over HTTP: GET /v1/models, POST /v1/classify, docs at /docs."""
        try:
            # optional extra: serve (FastAPI, uvicorn)
            import uvicorn

            from loralab.serving.app import ServeSettings, create_app
        except ImportError:
            raise LoralabError(
                "serving needs the serve extra: pip install 'loralab[serve]' (FastAPI and uvicorn)."
            ) from None
        # deferred: loralab.serving.predictor imports torch and transformers (~2.8 s)
        from loralab.serving.predictor import Predictor

        use_threads(threads)
        token = token or os.environ.get(TOKEN_ENV) or None
        for name, value in (("--max-texts", max_texts), ("--max-chars", max_chars), ("--max-body", max_body)):
            if value < 1:
                raise LoralabError(f"{name} must be ≥ 1, got {value}.")
        if max_batch_wait < 0:
            raise LoralabError(f"--max-batch-wait must be ≥ 0, got {max_batch_wait}.")
        predictor = Predictor()
        for spec in runs:
            served = predictor.add(spec)
            console.print(f"loaded [bold]{served.name}[/] ({served.classifier.method}) from {served.run}")
        if predictor.shared_bytes:
            console.print(f"shared frozen weights: {predictor.shared_bytes / 2**20:,.0f} MiB not duplicated")
        if host not in ("127.0.0.1", "localhost", "::1") and token is None:
            console.print(
                f"[yellow]warning:[/] serving on {host} without a token; anyone who can reach it can use it."
            )
        settings = ServeSettings(
            token=token,
            max_texts=max_texts,
            max_chars=max_chars,
            max_body_bytes=max_body,
            max_batch_wait_ms=max_batch_wait,
        )
        listening = _listen(host, port)  # before saying "serving": a busy port is one sentence
        console.print(f"serving {len(predictor.models)} model(s) on http://{host}:{port} (docs: /docs)")
        config = uvicorn.Config(create_app(predictor, settings), log_level="warning")
        uvicorn.Server(config).run(sockets=[listening])


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or one sentence saying why it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise LoralabError(f"--host {host}: not an address of this machine ({err.strerror}).") from None
    family, kind, proto, _, address = infos[0]
    listening = socket.socket(family, kind, proto)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind(address)
    except OSError as err:
        listening.close()
        reason = "it is already in use" if err.errno == errno.EADDRINUSE else err.strerror
        raise LoralabError(f"cannot listen on {host}:{port}: {reason}; choose another --port.") from None
    return listening
