"""The streaming annotation job behind `python -m spacy_medner annotate`.

Records stream from `io.readers.RecordReader` through `nlp.pipe` to an
`io.writers` writer; nothing but one chunk is held in memory, so memory
stays flat whatever the size of the input.

Order and the commit cursor: every input record goes through `nlp.pipe`,
bad ones as an empty text that carries its error, so records come out in
input order and "the first N input records are done" is one number. Every
`chunk_size` records the job appends the chunk's outputs and errors (each
fsynced) and then atomically rewrites a small progress file beside the output
(`.OUT.progress.json`) holding N and the committed lengths. A job killed at
any point resumes (`resume=True`) by cutting the output and errors back to
the committed lengths and skipping the first N records: the result equals an
uninterrupted run's, no record missing and none twice. Ids already present
in the output are also skipped, which covers an output whose progress file
was lost.

Long records: a text longer than `split_length` characters is cut at
sentence ends (`corpora.segment`, the splitter of the training data, so the
pieces look like what the model was trained on), the pieces are predicted
like any record, and their entities (and span_ner's mentions) are shifted
back to offsets into the original text. Nothing is truncated; an entity that would straddle a cut is
only possible where no sentence or clause break falls within `split_length`
characters. `split_length=0` predicts every record whole: cost still grows
linearly with length (the BiGRU is linear), but one 100,000-character record
then holds one worker for its whole length.

Scores and mentions: `spans_key` None (the default) takes the span group
of the pipeline's crf_ner or span_ner component (`io.entities.scoring_group`);
a span_ner pipeline's rows also carry `mentions`, every span of that group
with its score, nested ones included.

Threads: every worker (the one process, each of `n_process` forked workers)
runs torch with `threads` intra-op threads, 1 by default
(`spacy_medner.threads.worker_threads`: on a machine that is not idle, one
thread per process is many times faster than one per core). With
`n_process` > 1 the parent is pinned to one thread before it loads the
pipeline, so libgomp never starts a thread team there and forked workers may
take more than one thread safely.
"""
import json
import multiprocessing
import os
import sys
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from .corpora.segment import segment
from .io.entities import ScoringGroup, doc_result, scoring_group, shift_result
from .io.readers import MISSING, InputError, InputRecord, RecordReader
from .io.writers import DocBinWriter, JsonlAppender, OutputError, result_row, writer_for
from .threads import FORK_THREADS_ENV, limit_threads, worker_threads

PROGRESS_VERSION = 1


class AnnotateError(ValueError):
    """The job cannot start or go on (one line for the user)."""


@dataclass
class AnnotateOptions:
    text_field: str = "text"
    id_field: Optional[str] = None
    batch_size: int = 64
    n_process: int = 1
    threads: Optional[int] = None  # torch intra-op threads per worker; None: the share of the cores
    max_chars: int = 1_000_000  # longer texts are reported, not predicted (0: no limit)
    split_length: int = 2000  # predict longer texts in sentence-end pieces (0: whole)
    chunk_size: int = 1000  # records per commit
    include_text: bool = True
    jsonl_format: str = "entities"
    spans_key: Optional[str] = None  # span group of the entity scores; None: the pipeline's (io.entities.scoring_group)
    resume: bool = False
    overwrite: bool = False


@dataclass
class Summary:
    records_in: int = 0  # input records seen (good and bad), over all runs of the job
    written: int = 0
    errors: int = 0
    already_written: int = 0  # skipped because their id was in the output already
    chars: int = 0  # characters of the records written
    seconds: float = 0.0  # this run's time
    resumed_at: int = 0  # records skipped by --resume (committed by an earlier run)
    reasons: Dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def bad_record_reason(record: InputRecord, text_field: str, max_chars: int) -> Optional[str]:
    """Why a record cannot be predicted, or None. The reason's first words
    name a category (counted in the summary)."""
    if record.error is not None:
        return record.error
    text = record.text
    if text is MISSING:
        return f"missing text field {text_field!r}"
    if text is None:
        return "text is null"
    if not isinstance(text, str):
        return f"text is not a string: {type(text).__name__}"
    if not text.strip():
        return "empty text"
    if max_chars and len(text) > max_chars:
        return f"text over --max-chars: {len(text):,} characters > {max_chars:,}"
    return None


def reason_category(reason: str) -> str:
    return reason.split(":")[0].split(" (")[0]


def default_errors_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.errors.jsonl")


def progress_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.progress.json")


def load_pipeline(model: str, options: AnnotateOptions):
    import spacy

    import spacy_medner  # noqa: F401  (the crf_ner factory, and the fork hook)

    if options.n_process > 1:
        # One thread in the parent: libgomp then never forms a thread team here, and the
        # forked workers can start their own with their share of the cores.
        limit_threads(1)
        os.environ[FORK_THREADS_ENV] = str(options.threads or worker_threads(options.n_process))
    try:
        nlp = spacy.load(model)
    except (OSError, IOError, ValueError) as err:
        raise AnnotateError(f"{model}: cannot load the pipeline ({str(err).splitlines()[0]})") from None
    if options.n_process == 1:
        limit_threads(options.threads or worker_threads(options.n_process))
    return nlp


class Progress:
    """Records/s, chars/s and an ETA: one rewritten line on a terminal,
    a log line every `log_every` seconds otherwise."""

    def __init__(self, reader: RecordReader, stream=None, log_every: float = 30.0, tty: Optional[bool] = None):
        self.reader, self.stream = reader, stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = 0.5 if self.tty else log_every
        self.start = self.last = time.monotonic()
        self.records = self.chars = 0

    def update(self, records: int, chars: int) -> None:
        self.records += records
        self.chars += chars
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._show(now)

    def line(self, now: Optional[float] = None) -> str:
        seconds = max(1e-9, (now or time.monotonic()) - self.start)
        total, done = self.reader.total_bytes, self.reader.bytes_done
        share = done / total if total else 0.0
        eta = (seconds * (1 - share) / share) if share > 0 else None
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta is not None else "?"
        return (f"{self.records:,} records, {self.records / seconds:,.0f} records/s, {self.chars / seconds:,.0f} chars/s, "
                f"{100 * share:.0f}% of input read, ETA {eta_text}")

    def _show(self, now: float) -> None:
        if self.tty:
            self.stream.write("\r" + self.line(now) + "\033[K")
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class _Piece:
    id: str
    source: str
    line: int
    index: int
    count: int
    offset: int


class AnnotateJob:
    """One annotate run: `run()` returns the Summary; see the module docstring."""

    def __init__(self, model: str, inputs: Sequence[Path], output: Path, errors: Optional[Path] = None,
                 options: Optional[AnnotateOptions] = None, progress: Optional[Callable[[RecordReader], Progress]] = None):
        self.model, self.output = model, Path(output)
        self.options = options or AnnotateOptions()
        self.reader = RecordReader(inputs, self.options.text_field, self.options.id_field)
        self.reader.check()
        self.writer = writer_for(self.output, self.options.jsonl_format, self.options.include_text)
        self.errors = JsonlAppender(Path(errors) if errors else default_errors_path(self.output))
        self.progress_file = progress_path(self.output)
        self.make_progress = progress
        self.summary = Summary()
        self.cursor = 0
        self.written_ids: Set[str] = set()
        self.complete = False

    # -- start, resume ----------------------------------------------------------------------------
    def prepare(self) -> None:
        exists = self.output.exists() or self.progress_file.exists()
        if exists and not (self.options.resume or self.options.overwrite):
            raise AnnotateError(f"{self.output} exists; pass --resume to continue it or --overwrite to start again")
        if not exists or self.options.overwrite:
            self.progress_file.unlink(missing_ok=True)
            self.writer.remove()
            self.writer.start()
            self.errors.start()
            return
        state = json.loads(self.progress_file.read_text("utf8")) if self.progress_file.exists() else None
        if state is not None and state.get("version") != PROGRESS_VERSION:
            raise AnnotateError(f"{self.progress_file}: written by another version of annotate; start again with --overwrite")
        self.writer.restore(state["output"] if state else None)
        if state is not None:
            self.errors.restore(state["errors"])
            self.cursor = int(state["consumed"])
            self.summary = Summary(**{**state["summary"], "seconds": 0.0})
            self.summary.resumed_at = self.cursor
            self.complete = bool(state.get("complete"))
        else:  # no progress file: fall back on the ids in the output
            if self.errors.path.exists():
                self.errors.restore(None)
            else:
                self.errors.start()
            self.written_ids = set(self.writer.written_ids())

    def commit(self, rows: List[dict], docs: list, error_rows: List[dict], complete: bool = False) -> None:
        from .cli import write_atomic

        self.writer.write(rows, docs)
        self.errors.append(error_rows)
        state = {
            "version": PROGRESS_VERSION, "consumed": self.cursor, "complete": complete,
            "output": self.writer.state(), "errors": self.errors.state(),
            "summary": {**self.summary.to_dict(), "seconds": 0.0},
            "inputs": [f.name for f in self.reader.files], "model": str(self.model),
        }
        write_atomic(self.progress_file, json.dumps(state, ensure_ascii=False).encode("utf8"))

    # -- the stream -------------------------------------------------------------------------------
    def _items(self) -> Iterator[Tuple[str, tuple]]:
        """(text, context) for nlp.pipe: pieces of good records, "" for the others."""
        split = self.options.split_length
        for index, record in enumerate(self.reader):
            if index < self.cursor:
                continue
            reason = bad_record_reason(record, self.options.text_field, self.options.max_chars)
            if reason is not None:
                yield "", ("error", record.source, record.line, record.id, reason)
            elif record.id in self.written_ids:
                yield "", ("written", record.id)
            else:
                text = record.text
                cuts = segment(text, (), split) if split and len(text) > split else [(0, len(text))]
                for k, (start, end) in enumerate(cuts):
                    yield text[start:end], ("piece", record.id, record.source, record.line, k, len(cuts), start)

    def _predict(self, nlp, group: ScoringGroup) -> Iterator[Tuple[Any, tuple]]:
        """(prediction, context) in input order. One process, or DocBin output (which
        needs the Docs): spaCy's `nlp.pipe`. Several processes otherwise: a pool of
        forked workers that return entities, not Docs: spaCy's n_process sends every
        Doc back through a pipe, and deserialising it cost the parent 1.4 ms a record
        against 2.2 ms to predict it, so two workers were slower than one process."""
        options = self.options
        if options.n_process == 1 or isinstance(self.writer, DocBinWriter) or "fork" not in multiprocessing.get_all_start_methods():
            return nlp.pipe(self._items(), as_tuples=True, batch_size=options.batch_size, n_process=options.n_process)
        return _pool_predict(nlp, self._items(), options, group)

    def run(self) -> Summary:
        started = time.monotonic()
        self.prepare()
        if self.complete:
            return self.summary
        nlp = load_pipeline(self.model, self.options)
        group = scoring_group(nlp, self.options.spans_key)
        progress = self.make_progress(self.reader) if self.make_progress else None
        rows: List[dict] = []
        docs: list = []
        error_rows: List[dict] = []
        pieces: List[Tuple[Any, int]] = []
        in_chunk = 0
        reasons = Counter(self.summary.reasons)
        options = self.options
        stream = self._predict(nlp, group)
        for doc, context in stream:
            kind = context[0]
            chars = 0
            if kind == "piece":
                _, id_, source, line, k, count, offset = context
                pieces.append((doc, offset))
                if k < count - 1:
                    continue
                found, text, merged = merge_results(pieces, group)
                pieces = []
                rows.append(result_row(id_, text, found["entities"], options.include_text, options.jsonl_format, found.get("mentions")))
                if merged is not None:
                    merged.user_data["id"] = id_
                    docs.append(merged)
                self.summary.written += 1
                chars = len(text)
                self.summary.chars += chars
            elif kind == "error":
                _, source, line, id_, reason = context
                error_rows.append({"source": source, "line": line, "id": id_, "reason": reason})
                self.summary.errors += 1
                reasons[reason_category(reason)] += 1
            else:
                self.summary.already_written += 1
            self.cursor += 1
            self.summary.records_in += 1
            in_chunk += 1
            if progress:
                progress.update(1, chars)
            if in_chunk >= options.chunk_size:
                self.summary.reasons = dict(reasons)
                self.commit(rows, docs, error_rows)
                rows, docs, error_rows, in_chunk = [], [], [], 0
        self.summary.reasons = dict(reasons)
        self.commit(rows, docs, error_rows, complete=True)
        if progress:
            progress.close()
        self.summary.seconds = round(time.monotonic() - started, 3)
        return self.summary


@dataclass
class Predicted:
    """A piece predicted by a pool worker: its text and output fields
    (`io.entities.doc_result`: entities, and mentions for span_ner; no Doc)."""

    text: str
    result: Dict[str, List[dict]]

    @property
    def entities(self) -> List[dict]:
        return self.result["entities"]


_WORKER_NLP = None  # the pipeline a forked pool worker inherits from the parent


def _predict_batch(texts: List[str], group: ScoringGroup) -> List[Dict[str, List[dict]]]:
    return [doc_result(doc, group) for doc in _WORKER_NLP.pipe(texts, batch_size=len(texts) or 1)]


def _pool_predict(nlp, items: Iterator[Tuple[str, tuple]], options: AnnotateOptions, group: ScoringGroup) -> Iterator[Tuple[Predicted, tuple]]:
    """Batches of `batch_size` items to `n_process` forked workers, at most two
    batches per worker in flight (so the input is read as fast as it is
    predicted, not all at once), results in input order."""
    global _WORKER_NLP
    _WORKER_NLP = nlp
    pool = multiprocessing.get_context("fork").Pool(options.n_process)
    pending: deque = deque()
    try:
        batch: List[Tuple[str, tuple]] = []
        for item in items:
            batch.append(item)
            if len(batch) >= options.batch_size:
                pending.append((batch, pool.apply_async(_predict_batch, ([t for t, _ in batch], group))))
                batch = []
                while len(pending) >= 2 * options.n_process:
                    yield from _drain(pending.popleft())
        if batch:
            pending.append((batch, pool.apply_async(_predict_batch, ([t for t, _ in batch], group))))
        while pending:
            yield from _drain(pending.popleft())
        pool.close()
    finally:
        pool.terminate()
        pool.join()
        _WORKER_NLP = None


def _drain(entry) -> Iterator[Tuple[Predicted, tuple]]:
    batch, result = entry
    for (text, context), found in zip(batch, result.get()):
        yield Predicted(text, found), context


def merge_results(pieces: List[Tuple[Any, int]], group: ScoringGroup) -> Tuple[Dict[str, List[dict]], str, Any]:
    """A record's pieces (Docs or `Predicted`) merged: the output fields
    (`io.entities.doc_result`: entities, and mentions for span_ner) with
    offsets into the whole text, the text, and the whole Doc (the pieces
    joined, their entities and span groups kept, scores included; None for
    `Predicted` pieces)."""
    found: Dict[str, List[dict]] = {}
    for piece, offset in pieces:
        result = piece.result if isinstance(piece, Predicted) else doc_result(piece, group)
        for name, items in shift_result(result, offset).items():
            found.setdefault(name, []).extend(items)
    text = "".join(piece.text for piece, _ in pieces)
    if isinstance(pieces[0][0], Predicted):
        return found, text, None
    if len(pieces) == 1:
        return found, text, pieces[0][0]
    return found, text, join_docs([doc for doc, _ in pieces])


def join_docs(docs: list):
    """`Doc.from_docs`, keeping the span groups' `attrs["scores"]` (which it
    drops): a group's scores are the pieces' scores in order, when every
    piece has the group with one score a span."""
    from spacy.tokens import Doc

    merged = Doc.from_docs(docs, ensure_whitespace=False)
    for key in merged.spans:
        groups = [doc.spans[key] if key in doc.spans else None for doc in docs]
        if all(g is not None and g.attrs.get("scores") is not None and len(g.attrs["scores"]) == len(g) for g in groups):
            scores = [float(s) for g in groups for s in g.attrs["scores"]]
            if len(scores) == len(merged.spans[key]):
                merged.spans[key].attrs["scores"] = scores
    return merged


def merge_pieces(pieces: List[Tuple[Any, int]], spans_key: Optional[str]) -> Tuple[List[dict], str, Any]:
    """`merge_results` with the entities only (scores from `spans_key`)."""
    found, text, merged = merge_results(pieces, ScoringGroup(spans_key, False))
    return found.get("entities", []), text, merged


def annotate(model: str, inputs: Sequence[Path], output: Path, errors: Optional[Path] = None,
             options: Optional[AnnotateOptions] = None, progress: Optional[Callable[[RecordReader], Progress]] = None) -> Summary:
    """Annotate `inputs` with the pipeline `model` into `output` (see the module
    docstring). Raises InputError, OutputError or AnnotateError when the job
    cannot run; bad records go to the errors file and the summary."""
    return AnnotateJob(model, inputs, output, errors, options, progress).run()


__all__ = ["AnnotateError", "AnnotateJob", "AnnotateOptions", "InputError", "OutputError", "Summary", "annotate",
           "bad_record_reason", "merge_pieces", "merge_results"]
