"""The FastAPI app of `python -m spacy_medner serve`.

Endpoints: `GET /` (the review page), `GET /healthz`, `GET /v1/labels`,
`GET /v1/metadata` and `POST /v1/entities`. The limits are part of the request
schema (`maxLength`, `maxItems`), so they appear in `/openapi.json`, and every
refusal is a JSON body `{"error", "field", "errors"}`: 400 for a body that is
not JSON, 413 for a text, a batch or a body over its limit (the limit and its
option in the message), 422 for anything else that does not fit the schema,
503 while the model loads. A 500 means a bug, never bad input.
"""
import logging
from pathlib import Path
from typing import Annotated, List, Optional, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from .batcher import MicroBatcher
from .model import ModelHolder, serve_threads
from .settings import ServeSettings

logger = logging.getLogger("uvicorn.error")  # uvicorn configures its handlers
STATIC = Path(__file__).resolve().parent / "static"
# Pydantic error types that mean "over a limit": answered with 413.
TOO_LONG = {"string_too_long": "max_text_chars", "too_long": "max_batch_texts"}
OPTION = {"max_text_chars": "--max-text-chars", "max_batch_texts": "--max-batch-texts", "max_body_bytes": "--max-body-bytes"}


class Entity(BaseModel):
    start: int = Field(description="Character offset of the first character in the text sent.")
    end: int = Field(description="Character offset after the last character (exclusive).")
    label: str
    text: str = Field(description="text[start:end].")
    score: Optional[float] = Field(None, description="The entity's probability, when the pipeline sets scores (absent otherwise).")


class EntitiesResult(BaseModel):
    entities: List[Entity] = Field(description="doc.ents: the entities, never overlapping, in order.")
    mentions: Optional[List[Entity]] = Field(
        None, description="A span_ner (nested-entity) pipeline only: every span it found with its probability, "
        "nested and overlapping ones too, by start, then end, then label. Absent for crf_ner pipelines.",
    )


class BatchResult(BaseModel):
    results: List[EntitiesResult] = Field(description="One result per text, in the order sent.")


class ErrorItem(BaseModel):
    field: str
    message: str
    type: str


class ErrorBody(BaseModel):
    error: str = Field(description="One line saying what was wrong and, for a limit, the limit.")
    field: str = Field(description="The field at fault (`body` for the body as a whole).")
    errors: List[ErrorItem] = []


def request_model(settings: ServeSettings) -> type:
    """The request schema, with this service's limits in it."""
    text_limit = settings.max_text_chars
    Text = Annotated[StrictStr, Field(max_length=text_limit)]

    class EntitiesRequest(BaseModel):
        """Send either `text` (one record) or `texts` (several, answered in order)."""

        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": [{"text": "患者因直肠癌于我院行直肠癌根治术"}, {"texts": ["口服阿司匹林后复查血常规", "腹部CT示肝脏多发占位"]}]},
        )
        text: Optional[Text] = Field(None, description=f"One record, at most {text_limit:,} characters (--max-text-chars).")
        texts: Optional[List[Text]] = Field(
            None, max_length=settings.max_batch_texts,
            description=f"Several records, at most {settings.max_batch_texts:,} (--max-batch-texts) of at most {text_limit:,} characters each.",
        )

        @model_validator(mode="after")
        def one_of_text_or_texts(self):
            if self.text is None and self.texts is None:
                raise ValueError("neither 'text' nor 'texts' given: send {\"text\": \"...\"} or {\"texts\": [\"...\", ...]}")
            if self.text is not None and self.texts is not None:
                raise ValueError("both 'text' and 'texts' given: send one of them")
            return self

    return EntitiesRequest


def error_response(status: int, message: str, field: str = "body", errors: Optional[list] = None, headers: Optional[dict] = None) -> JSONResponse:
    body = {"error": message, "field": field, "errors": errors if errors is not None else [{"field": field, "message": message, "type": "error"}]}
    return JSONResponse(body, status_code=status, headers=headers)


def field_name(loc) -> str:
    """("body", "texts", 3) → "texts[3]"."""
    name = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def describe(error: dict, settings: ServeSettings) -> tuple:
    """(status, field, one-line message) of one pydantic error."""
    kind, field, value = error["type"], field_name(error.get("loc", ())), error.get("input")
    if kind == "json_invalid":
        detail = (error.get("ctx") or {}).get("error", "")
        return 400, "body", f"the body is not valid JSON ({detail})" if detail else "the body is not valid JSON"
    if kind in TOO_LONG:
        limit = TOO_LONG[kind]
        size = len(value) if isinstance(value, (str, list)) else None
        unit = "characters" if kind == "string_too_long" else "texts"
        got = f" has {size:,} {unit}," if size is not None else " is"
        return 413, field, f"{field}{got} over the limit of {getattr(settings, limit):,} {unit} ({OPTION[limit]})"
    if kind == "missing" and field == "body":
        return 422, "body", "the body is empty: send {\"text\": \"...\"} or {\"texts\": [\"...\", ...]}"
    if kind == "model_attributes_type" or (kind == "dict_type" and field == "body"):
        return 422, "body", "the body must be a JSON object with 'text' or 'texts'"
    if kind == "extra_forbidden":
        return 422, field, f"unknown field '{field}': send 'text' or 'texts'"
    if kind == "string_type":
        return 422, field, f"{field} must be a string, not {json_type(value)}"
    if kind == "list_type":
        return 422, field, f"{field} must be a list of strings, not {json_type(value)}"
    message = str(error.get("msg", kind)).removeprefix("Value error, ")
    return 422, field, message if field == "body" else f"{field}: {message}"


def json_type(value) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413 before they are parsed: by the
    Content-Length header when there is one, else while reading the chunks.

    It also reads every body as JSON whatever its Content-Type: `curl -d`
    sends `application/x-www-form-urlencoded`, and a JSON body refused for
    its header would puzzle the caller more than it protects anything."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def refusal(self, size: str) -> JSONResponse:
        return error_response(
            413, f"the body is {size}over the limit of {self.max_bytes:,} bytes (--max-body-bytes)",
            headers={"Connection": "close"},
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if b"json" not in headers.get(b"content-type", b""):
            rest = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": rest + [(b"content-type", b"application/json")]}
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await self.refusal(f"{int(length):,} bytes, ")(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self.refusal("")(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class CountArrivals:
    """Tell the batcher about each entities request from the moment it comes
    in, before its body is read, so a batch can wait for it (batcher.py)."""

    def __init__(self, app, batcher: MicroBatcher) -> None:
        self.app = app
        self.batcher = batcher

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/v1/entities":
            await self.app(scope, receive, send)
            return
        token = self.batcher.request_arrived()
        try:
            await self.app({**scope, ARRIVAL: token}, receive, send)
        finally:
            self.batcher.request_left(token)


ARRIVAL = "spacy_medner.arrival"


def create_app(settings: ServeSettings) -> FastAPI:
    threads = serve_threads(settings.threads, settings.workers)
    holder = ModelHolder(settings.model, threads, settings.spans_key, settings.code)
    batcher = MicroBatcher(
        holder.predict, holder.executor, batching=settings.batching,
        max_wait_s=settings.batch_wait_ms / 1000, max_texts=settings.batch_max_texts,
    )

    async def lifespan(app: FastAPI):
        holder.start_loading()
        batcher.start()
        yield
        await batcher.stop()
        holder.close()

    limits = (
        f"Limits: a text of at most {settings.max_text_chars:,} characters, at most {settings.max_batch_texts:,} texts "
        f"per request, a body of at most {settings.max_body_bytes:,} bytes; over a limit is 413."
    )
    app = FastAPI(
        title="spacy_medner",
        description=f"Chinese medical named-entity recognition with the `{settings.model}` pipeline. {limits}",
        lifespan=lifespan,
    )
    app.state.holder, app.state.batcher, app.state.settings = holder, batcher, settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CountArrivals, batcher=batcher)  # added last: runs first
    EntitiesRequest = request_model(settings)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        described = [describe(error, settings) for error in exc.errors()]
        # The most specific refusal wins: 413 over 400 over 422.
        status = 413 if any(s == 413 for s, _, _ in described) else (400 if any(s == 400 for s, _, _ in described) else 422)
        first = next(d for d in described if d[0] == status)
        errors = [{"field": f, "message": m, "type": e["type"]} for (_, f, m), e in zip(described, exc.errors())]
        return error_response(status, first[2], first[1], errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), "url" if exc.status_code == 404 else "method")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("internal error on %s", request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}; see the server log")

    def not_ready() -> JSONResponse:
        if holder.error is not None:
            return error_response(503, f"the model could not be loaded: {holder.error}", "model")
        return error_response(503, "the model is still loading", "model", headers={"Retry-After": "1"})

    errors_doc = {
        400: {"model": ErrorBody, "description": "The body is not valid JSON."},
        413: {"model": ErrorBody, "description": f"A text, a batch or the body over its limit. {limits}"},
        422: {"model": ErrorBody, "description": "A field of the wrong type, an unknown field, or neither `text` nor `texts`."},
        503: {"model": ErrorBody, "description": "The model is still loading (or failed to load)."},
    }

    @app.get("/", include_in_schema=False)
    async def review_page():
        if not (STATIC / "index.html").is_file():  # an install that left out the package data
            return error_response(404, f"the review page is not installed (no {STATIC / 'index.html'})", "url")
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")

    @app.get("/healthz", summary="200 once the model is loaded, 503 before", responses={503: errors_doc[503]})
    async def healthz():
        if not holder.ready:
            return not_ready()
        return {"status": "ok", "model": holder.metadata["name"], "loaded_in_s": holder.loaded_in_s}

    @app.get("/v1/labels", summary="The entity labels of the model", responses={503: errors_doc[503]})
    async def labels():
        if not holder.ready:
            return not_ready()
        return {"labels": holder.metadata["labels"]}

    @app.get("/v1/metadata", summary="Model name, version, labels, colours, versions and limits", responses={503: errors_doc[503]})
    async def metadata():
        if not holder.ready:
            return not_ready()
        batching = {"enabled": settings.batching, "wait_ms": settings.batch_wait_ms, "max_texts": settings.batch_max_texts,
                    "batches": batcher.batches, "texts": batcher.texts}
        return {**holder.metadata, "limits": settings.limits(), "batching": batching}

    @app.post(
        "/v1/entities", summary="The entities of one text or of several",
        description=f"`{{\"text\": ...}}` → `{{\"entities\": [...]}}`; `{{\"texts\": [...]}}` → `{{\"results\": [{{\"entities\": [...]}}, ...]}}` in order. "
        f"A span_ner (nested-entity) pipeline adds `mentions` beside `entities`: every span found, overlaps included. "
        f"Offsets are character offsets into the text sent. {limits}",
        response_model=Union[EntitiesResult, BatchResult], responses=errors_doc,
    )
    async def entities(request: EntitiesRequest, raw: Request):
        if not holder.ready:
            return not_ready()
        token = raw.scope.get(ARRIVAL)
        if request.text is not None:
            (found,) = await batcher.submit([request.text], token)
            return JSONResponse(found)
        found = await batcher.submit(request.texts, token)
        return JSONResponse({"results": found})

    return app


def create_app_from_env() -> FastAPI:
    """uvicorn's factory for worker processes (`serve --workers N`)."""
    return create_app(ServeSettings.from_env())
