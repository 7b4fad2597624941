"""The HTTP API: ``create_app(predictor)`` builds a FastAPI app around a :class:`Predictor`.

Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/classify``, and — with a token —
``POST /v1/models`` / ``DELETE /v1/models/{name}`` to add or remove runs without a restart.
Errors are JSON ``{"error": "<one sentence>"}``: 4xx for the request's problems (a damaged run
added is a 400 naming the file), 500 only for a bug, whose traceback goes to the log file.
OpenAPI docs are at ``/docs`` (Swagger UI) and ``/redoc``, served from local files so they
work without network.
"""

from __future__ import annotations

import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from loralab.data.readers import check_texts
from loralab.errors import LoralabError, internal_error_line, known_failure, log_internal_error
from loralab.serving.batcher import MicroBatcher
from loralab.serving.predictor import Predictor, UnknownModel


@dataclass
class ServeSettings:
    token: str | None = None
    max_texts: int = 256
    max_chars: int = 10_000
    max_body_bytes: int = 2 * 1024 * 1024
    max_batch_wait_ms: float = 5.0
    max_batch_texts: int = 256


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: StrictStr | None = Field(
        default=None,
        description="Name of a served model (see GET /v1/models); may be left out when one model is served.",
    )
    texts: list[StrictStr] = Field(description="Texts to classify.")


class Classification(BaseModel):
    label: str
    probabilities: dict[str, float]
    model: str


class ClassifyResponse(BaseModel):
    model: str
    results: list[Classification]


class ModelInfo(BaseModel):
    name: str
    method: str
    labels: list[str]
    base_model: str | None
    run: str
    text_input: str | None = Field(default=None, description="What a long text is cut to.")


class ModelList(BaseModel):
    models: list[ModelInfo]


class AddModelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: StrictStr = Field(description="Path of a completed run folder on the server.")
    name: StrictStr | None = Field(default=None, description="Name to serve it under (default: folder name).")


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether or not they declare a length."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"the request body is larger than {self.limit:,} bytes (--max-body)."
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _error(400, "the Content-Length header is not a number.")(scope, receive, send)
            if int(declared) > self.limit:
                return await _error(413, too_large)(scope, receive, send)
        # Read the (bounded) body here so a chunked upload cannot exceed the limit either.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                return await _error(413, too_large)(scope, receive, send)
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


def _validation_message(error: RequestValidationError, content_type: str | None) -> str:
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON."
    media = (content_type or "").split(";")[0].strip().lower()
    if tuple(first.get("loc", ())) == ("body",) and media != "application/json":
        # FastAPI reads a body as JSON only when it says so; `curl -d` alone sends
        # application/x-www-form-urlencoded, and pydantic would say "a valid dictionary".
        sent = f"Content-Type {media}" if media else "no Content-Type"
        return f"send the body as JSON with Content-Type: application/json (it came with {sent})."
    if tuple(first.get("loc", ())) == ("body",):
        kind = {list: "a list", str: "a string", bool: "true or false", type(None): "null"}.get(
            type(first.get("input")), "a number"
        )
        return f"the request body must be a JSON object of named fields, not {kind}."
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    return f"{where}: {first.get('msg', 'invalid value')}."


def create_app(predictor: Predictor, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    batcher = MicroBatcher(predictor.classify_checked, settings.max_batch_wait_ms, settings.max_batch_texts)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        batcher.close()

    # FastAPI's /docs page loads Swagger UI from a CDN and is blank offline; this serves the
    # same page with Swagger UI's files from the fastapi-offline package.
    app = FastAPIOffline(
        title="loralab",
        summary="Text classifiers trained with loralab, several per process.",
        lifespan=lifespan,
    )
    app.state.predictor, app.state.batcher, app.state.settings = predictor, batcher, settings
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    bearer = HTTPBearer(auto_error=False)

    def authorised(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if settings.token is None:
            return
        if credentials is None or not secrets.compare_digest(credentials.credentials, settings.token):
            raise HTTPException(401, "a valid bearer token is required.", {"WWW-Authenticate": "Bearer"})

    def manager(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if settings.token is None:
            raise HTTPException(403, "adding or removing models needs a server started with --token.")
        authorised(credentials)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return _error(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        return _error(422, _validation_message(error, request.headers.get("content-type")))

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception):
        # The HTTP error boundary: a known failure (damaged file, full disk, …) is the
        # request's or the environment's, a 400 in one sentence; anything else is a bug,
        # answered with one line while its traceback goes to the log file.
        message = known_failure(error)
        if message is not None:
            return _error(400, message)
        log = log_internal_error(error, f"{request.method} {request.url.path}")
        return _error(500, internal_error_line(error, log))

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "models": len(predictor.models)}

    @app.get("/v1/models", response_model=ModelList, dependencies=[Depends(authorised)])
    async def models() -> dict:
        return {"models": predictor.describe()}

    @app.post("/v1/classify", response_model=ClassifyResponse, dependencies=[Depends(authorised)])
    async def classify(request: ClassifyRequest) -> dict:
        name = request.model
        if name is None:
            if len(predictor.models) != 1:
                served = ", ".join(sorted(predictor.models)) or "none"
                raise HTTPException(
                    422, f"model is required when {len(predictor.models)} models are served ({served})."
                )
            name = next(iter(predictor.models))
        try:
            predictor.get(name)
        except LoralabError as error:
            raise HTTPException(404, str(error)) from None
        try:
            check_texts(request.texts, "texts", "text", first=0)  # numbered as in the other errors
        except LoralabError as error:
            raise HTTPException(422, str(error)) from None
        if not request.texts:
            raise HTTPException(422, "texts is empty; send at least one text.")
        if len(request.texts) > settings.max_texts:
            raise HTTPException(
                413,
                f"{len(request.texts):,} texts in one request; "
                f"the limit is {settings.max_texts:,} (--max-texts).",
            )
        for i, text in enumerate(request.texts):
            if len(text) > settings.max_chars:
                raise HTTPException(
                    413,
                    f"text {i} has {len(text):,} characters; "
                    f"the limit is {settings.max_chars:,} (--max-chars).",
                )
        try:
            results = await batcher.submit(name, list(request.texts))
        except UnknownModel as error:  # removed while the request waited for its batch
            raise HTTPException(404, str(error)) from None
        return {"model": name, "results": results}

    @app.post("/v1/models", response_model=ModelInfo, status_code=201, dependencies=[Depends(manager)])
    def add_model(request: AddModelRequest) -> dict:
        try:
            return predictor.add(request.run, request.name).describe()
        except Exception as error:  # a damaged run is the request's problem, named in one sentence
            message = known_failure(error)
            if message is None:
                raise
            raise HTTPException(400, message) from None

    @app.delete("/v1/models/{name}", status_code=204, dependencies=[Depends(manager)])
    def remove_model(name: str) -> None:
        try:
            predictor.remove(name)
        except LoralabError as error:
            raise HTTPException(404, str(error)) from None

    return app
