"""The pipeline behind the service: loaded in the background, then read-only.

The server starts answering before the model is loaded, so a load balancer
or an orchestrator can tell "starting" (`/healthz` 503) from "down" (no
answer) and a slow load never trips a connect timeout. Everything that touches
the model (loading included) runs on the model's single thread, so torch's
thread limit, set on that thread, holds for every call.
"""
import logging
import os
import platform
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Dict, List, Optional

logger = logging.getLogger("uvicorn.error")  # uvicorn configures its handlers

# For tests and readiness-probe drills: seconds to sleep before loading, so
# that the 503 of a loading service can be observed.
LOAD_DELAY_ENV = "SPACY_MEDNER_SERVE_LOAD_DELAY"


def serve_threads(threads: Optional[int], workers: int = 1) -> int:
    """Torch intra-op threads for one worker: `--threads` if given, else what
    spacy_medner.threads gives any worker (1, or $SPACY_MEDNER_THREADS; its
    docstring says why one thread beats the whole share on a busy machine).
    More cores are used with more workers, which share nothing."""
    from ..threads import worker_threads

    return max(1, threads) if threads is not None else worker_threads(workers)


def entity_labels(nlp) -> List[str]:
    """The labels of every component that sets `doc.ents`, sorted."""
    labels = set()
    for name in nlp.pipe_names:
        if "doc.ents" in nlp.get_pipe_meta(name).assigns:
            labels.update(getattr(nlp.get_pipe(name), "labels", ()) or ())
    return sorted(labels)


def label_colors(labels: List[str]) -> Dict[str, str]:
    """One displaCy colour per label (spacy_medner.display's palette, then
    generated distinct colours), the page's colours too."""
    from ..display import label_colors as colors

    return dict(colors(labels))


class ModelHolder:
    """Owns the pipeline and the one thread that runs it."""

    def __init__(self, model: str, threads: int, spans_key: Optional[str] = None, code: Optional[str] = None) -> None:
        self.model = model
        self.code = code
        self.threads = threads
        self.spans_key = spans_key  # as given (None: the pipeline's); the one used is self.group.key
        self.group = None
        self.nlp = None
        self.error: Optional[str] = None
        self.loaded_in_s: Optional[float] = None
        self.metadata: Dict = {}
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spacy_medner-model")
        self._loaded = threading.Event()

    @property
    def ready(self) -> bool:
        return self._loaded.is_set() and self.nlp is not None

    def start_loading(self) -> Future:
        return self.executor.submit(self._load)

    def _load(self) -> None:
        start = time.perf_counter()
        try:
            delay = float(os.environ.get(LOAD_DELAY_ENV, "0") or 0)
            if delay > 0:
                time.sleep(delay)
            import spacy
            import torch  # noqa: F401  loaded first, so that limit_threads acts on it

            from ..threads import limit_threads

            limit_threads(self.threads)

            import spacy_medner  # noqa: F401  registers crf_ner when the pipeline is a plain directory

            if self.code:
                spacy.util.import_file("spacy_medner_serve_code", self.code)

            nlp = spacy.load(self.model)
            from ..io.entities import scoring_group

            self.group = scoring_group(nlp, self.spans_key)
            self.metadata = self._metadata(nlp)
            self.nlp = nlp
            self.loaded_in_s = round(time.perf_counter() - start, 3)
            logger.info("loaded %s in %.1f s (%d torch threads)", self.model, self.loaded_in_s, self.threads)
        except Exception as err:  # the service stays up and says why on /healthz
            self.error = f"{type(err).__name__}: {err}"
            logger.error("could not load %s: %s", self.model, self.error)
        finally:
            self._loaded.set()

    def _metadata(self, nlp) -> Dict:
        import spacy

        import spacy_medner

        labels = entity_labels(nlp)
        versions = {"spacy": spacy.__version__, "spacy_medner": spacy_medner.__version__, "python": platform.python_version()}
        for name in ("torch", "thinc", "fastapi", "uvicorn"):
            try:
                versions[name] = __import__(name).__version__
            except Exception:  # a version we cannot read is left out, never fatal
                pass
        meta = nlp.meta
        return {
            "name": f"{meta.get('lang', nlp.lang)}_{meta.get('name', 'pipeline')}",
            "version": meta.get("version", ""),
            "lang": nlp.lang,
            "pipeline": list(nlp.pipe_names),
            "labels": labels,
            "colors": label_colors(labels),
            "spans_key": self.group.key,
            "mentions": self.group.mentions,
            "versions": versions,
            "torch_threads": self.threads,
        }

    def predict(self, texts: List[str]) -> List[Dict[str, List[dict]]]:
        """The result of each text, in order: {"entities"} and, for a span_ner
        pipeline, "mentions" (`io.entities.doc_result`). Runs on the model thread."""
        from ..io.entities import doc_result

        return [doc_result(doc, self.group) for doc in self.nlp.pipe(texts, batch_size=max(1, len(texts)))]

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
