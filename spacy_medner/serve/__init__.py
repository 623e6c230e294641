"""The HTTP service: `python -m spacy_medner serve MODEL` (the `serve` extra).

- `settings.py`  the options of one service (limits, batching, threads), passed
                 to uvicorn's worker processes through one environment variable;
- `model.py`     loading the pipeline in the background, its metadata, and the
                 torch thread limit of a worker;
- `batcher.py`   the micro-batcher that gathers concurrent requests into one
                 `nlp.pipe` call on the model's own thread;
- `app.py`       the FastAPI app: endpoints, request limits, error bodies;
- `static/`      the review page served at `/` (no CDN: it works offline).

FastAPI and uvicorn are imported only here, so the package itself never
needs them.
"""
from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def create_app(settings: ServeSettings):
    """The FastAPI app for `settings` (imports FastAPI on first use)."""
    from .app import create_app as _create_app

    return _create_app(settings)
