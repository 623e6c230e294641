"""The options of one service, in one JSON-able dataclass.

uvicorn starts `--workers N` as fresh processes that import the app by name,
so the CLI cannot hand them Python objects: it writes the settings as JSON to
`SPACY_MEDNER_SERVE` and each worker reads them back (`from_env`).
"""
import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Optional

ENV_VAR = "SPACY_MEDNER_SERVE"


@dataclass(frozen=True)
class ServeSettings:
    model: str
    # Request limits. A clinical record is rarely over a few thousand
    # characters; 20,000 leaves room for a whole discharge summary while
    # bounding what one request can cost (the BiGRU and CRF are linear in
    # length, but one long text pads every other text of its batch).
    max_text_chars: int = 20_000
    max_batch_texts: int = 128
    max_body_bytes: int = 2_000_000
    # Micro-batching: how long the batcher waits for more requests after the
    # first one, and the most texts it gathers into one model call.
    batching: bool = True
    batch_wait_ms: float = 5.0
    batch_max_texts: int = 64
    # Torch intra-op threads of each worker; None: spacy_medner.threads' default (1, or $SPACY_MEDNER_THREADS).
    threads: Optional[int] = None
    workers: int = 1
    # doc.spans key of the entity scores; None: the pipeline's (io.entities.scoring_group).
    spans_key: Optional[str] = None
    # A Python file with custom components, imported before loading (spaCy's --code).
    code: Optional[str] = None

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> "ServeSettings":
        raw = os.environ.get(ENV_VAR)
        if not raw:
            raise RuntimeError(f"{ENV_VAR} is not set: start the service with `python -m spacy_medner serve MODEL`.")
        values = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def limits(self) -> dict:
        return {"max_text_chars": self.max_text_chars, "max_batch_texts": self.max_batch_texts, "max_body_bytes": self.max_body_bytes}
