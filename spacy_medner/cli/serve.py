"""`python -m spacy_medner serve MODEL`: the HTTP service and its review page."""
import os
from pathlib import Path
from typing import Optional

import typer

from . import app, fail


def check_model(model: str) -> None:
    """A pipeline directory (with config.cfg) or an installed package, checked
    before the server starts: the model itself loads in the background."""
    path = Path(model)
    if path.exists():
        if not (path / "config.cfg").is_file():
            fail(f"MODEL {model}: not a spaCy pipeline directory (no config.cfg in it).")
        return
    import spacy

    if not spacy.util.is_package(model):
        fail(f"MODEL {model}: no such directory and no installed pipeline package of that name.")


@app.command("serve")
def serve_cli(
    model: str = typer.Argument(..., help="Pipeline directory or installed package (e.g. zh_medner)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", help="Worker processes, each with its own copy of the model."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads per worker (default 1, or env SPACY_MEDNER_THREADS; use --workers for more cores)."),
    max_text_chars: int = typer.Option(20_000, "--max-text-chars", help="Longest text accepted, in characters (413 above)."),
    max_batch_texts: int = typer.Option(128, "--max-batch-texts", help="Most texts in one request (413 above)."),
    max_body_bytes: int = typer.Option(2_000_000, "--max-body-bytes", help="Largest request body, in bytes (413 above)."),
    batching: bool = typer.Option(True, "--batching/--no-batching", help="Gather concurrent requests into one model call."),
    batch_wait_ms: float = typer.Option(5.0, "--batch-wait-ms", help="Most milliseconds a batch waits for requests already received and still being read (a lone request never waits)."),
    batch_max_texts: int = typer.Option(64, "--batch-max-texts", help="Most texts gathered into one model call."),
    spans_key: Optional[str] = typer.Option(None, "--spans-key", help="doc.spans key holding the entity scores (default: the spans_key of the pipeline's crf_ner or span_ner component)."),
    code: Optional[Path] = typer.Option(None, "--code", help="Python file with custom components the pipeline needs (as in `spacy train --code`)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
) -> None:
    """Serve a pipeline over HTTP: POST /v1/entities, /healthz, /v1/labels,
    /v1/metadata, the OpenAPI schema at /docs, and a review page at /."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as err:
        fail(f"serve needs FastAPI and uvicorn ({err.name} is missing): pip install 'spacy_medner[serve]'")
    for option, value in (("--workers", workers), ("--max-text-chars", max_text_chars), ("--max-batch-texts", max_batch_texts),
                          ("--max-body-bytes", max_body_bytes), ("--batch-max-texts", batch_max_texts)):
        if value < 1:
            fail(f"{option} must be at least 1, got {value}.")
    if threads is not None and threads < 1:
        fail(f"--threads must be at least 1, got {threads}.")
    if batch_wait_ms < 0:
        fail(f"--batch-wait-ms must be 0 or more, got {batch_wait_ms}.")
    if not 0 <= port <= 65535:
        fail(f"--port must be between 0 and 65535, got {port}.")
    check_model(model)
    if code is not None and not code.is_file():
        fail(f"--code {code}: no such file.")

    from ..serve.model import serve_threads
    from ..serve.settings import ENV_VAR, ServeSettings

    settings = ServeSettings(
        model=model, max_text_chars=max_text_chars, max_batch_texts=max_batch_texts, max_body_bytes=max_body_bytes,
        batching=batching, batch_wait_ms=batch_wait_ms, batch_max_texts=batch_max_texts, threads=threads,
        workers=workers, spans_key=spans_key or None, code=str(code.resolve()) if code else None,
    )
    # Workers are fresh processes that import the app by name: they read the
    # settings from the environment, and OpenMP/MKL read their thread limit
    # from it before torch starts its pools.
    os.environ[ENV_VAR] = settings.to_env()
    try:
        n = str(serve_threads(threads, workers))
    except ValueError as err:  # a bad $SPACY_MEDNER_THREADS
        fail(str(err))
    os.environ.setdefault("OMP_NUM_THREADS", n)
    os.environ.setdefault("MKL_NUM_THREADS", n)
    uvicorn.run(
        "spacy_medner.serve.app:create_app_from_env", factory=True, host=host, port=port,
        workers=workers, log_level=log_level, timeout_graceful_shutdown=10,
    )
