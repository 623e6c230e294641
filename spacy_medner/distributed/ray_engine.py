"""The annotate job on Ray Data: read → `map_batches` on an actor pool that
loads the pipeline once per actor → the driver merges and writes.

    from spacy_medner.distributed import annotate_ray
    summary = annotate_ray("zh_medner", ["notes.jsonl"], "out.jsonl", actors=8, address="auto")

Stages:

1. Read: one Ray task per input file runs the same `RecordReader` as the
   local engine (so records, ids, errors and their file/line are identical)
   and turns each record into rows: the sentence-end pieces of a good record,
   or one row carrying a bad record's reason. Files are read where the task
   runs, so every node must see them at the same path (shared storage), like
   the model.
2. Predict: `map_batches` with `concurrency=actors` long-lived actors, each
   loading the pipeline once and limiting torch to `threads` (default 1 per
   actor, one actor per CPU it reserves).
3. Write: the driver iterates the results in input order (`preserve_order`)
   and writes them with the local engine's writers and errors file, in
   committed chunks, so the output of `--engine ray` is byte-for-byte the
   local engine's (a span_ner pipeline's mentions included). The driver
   only parses JSON and appends, which keeps up with dozens of actors;
   beyond that, write per block with Ray's own `write_parquet` instead.

`--resume` is not supported here: a Ray run is rerun whole.
"""
import json
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from ..annotate import AnnotateError, AnnotateJob, AnnotateOptions, Progress, Summary, bad_record_reason, reason_category
from ..corpora.segment import segment
from ..io.entities import shift_result
from ..io.readers import RecordReader
from ..io.writers import DocBinWriter, OutputError, result_row


def _absolute(reader: RecordReader) -> RecordReader:
    """The reader with absolute paths (Ray workers need not share the driver's
    working directory), keeping the names that messages and ids use."""
    for file in reader.files:
        file.path = file.path.resolve()
    return reader


class _ReadFiles:
    """Ray map_batches over file indices: yields the rows (pieces of good records,
    one row per bad record) `rows_per_batch` at a time, so that a file of any size
    streams through a task in constant memory. Columns are never null (Arrow
    would type an all-null column apart): no reason and no id are ""."""

    def __init__(self, reader: RecordReader, options: AnnotateOptions, rows_per_batch: int):
        self.reader, self.options, self.rows_per_batch = reader, options, rows_per_batch

    def __call__(self, batch: Dict) -> Iterator[Dict]:
        columns: Dict[str, list] = {name: [] for name in ("id", "source", "line", "reason", "piece", "k", "n", "offset")}
        split = self.options.split_length
        for index in batch["file"]:
            for record in self.reader.read_file(int(index)):
                reason = bad_record_reason(record, self.options.text_field, self.options.max_chars)
                if reason is not None:
                    cuts, text = [(0, 0)], ""
                else:
                    text = record.text
                    cuts = segment(text, (), split) if split and len(text) > split else [(0, len(text))]
                for k, (start, end) in enumerate(cuts):
                    for name, value in (("id", record.id or ""), ("source", record.source), ("line", record.line),
                                        ("reason", reason or ""), ("piece", text[start:end]), ("k", k), ("n", len(cuts)), ("offset", start)):
                        columns[name].append(value)
                if len(columns["id"]) >= self.rows_per_batch:
                    yield columns
                    columns = {name: [] for name in columns}
        if columns["id"]:
            yield columns


class _Predictor:
    """Ray actor: loads the pipeline once, predicts a batch of pieces."""

    def __init__(self, model: str, threads: int, spans_key: Optional[str]):
        import spacy

        import spacy_medner  # noqa: F401
        from ..io.entities import scoring_group
        from ..threads import limit_threads

        import torch  # noqa: F401  (so that limit_threads finds it)

        limit_threads(threads)
        self.nlp = spacy.load(model)
        self.group = scoring_group(self.nlp, spans_key)  # the same on every actor: the same pipeline

    def __call__(self, batch: Dict) -> Dict:
        """Adds the columns `entities` and `mentions` (JSON; "" for a bad
        record, and for mentions when the pipeline has none to give)."""
        from ..io.entities import doc_result

        pieces = list(batch["piece"])
        reasons = list(batch["reason"])
        todo = [i for i, reason in enumerate(reasons) if not reason]
        entities = [""] * len(pieces)
        mentions = [""] * len(pieces)
        for i, doc in zip(todo, self.nlp.pipe((pieces[i] for i in todo), batch_size=len(todo) or 1)):
            found = doc_result(doc, self.group)
            entities[i] = json.dumps(found["entities"], ensure_ascii=False)
            if "mentions" in found:
                mentions[i] = json.dumps(found["mentions"], ensure_ascii=False)
        return {**batch, "entities": entities, "mentions": mentions}


def _model_path(model: str) -> str:
    path = Path(model)
    return str(path.resolve()) if path.exists() else model


def annotate_ray(model: str, inputs: Sequence[Path], output: Path, errors: Optional[Path] = None,
                 options: Optional[AnnotateOptions] = None, address: Optional[str] = None, actors: int = 2,
                 progress=None, block_bytes: int = 256 * 1024) -> Summary:
    """Annotate on Ray (see the module docstring): `address` joins an existing
    cluster ("auto", "ray://head:10001"); without one, and without a
    `ray.init()` already made, a local cluster is started."""
    options = options or AnnotateOptions()
    if options.resume:
        raise AnnotateError("--resume is for the local engine; a Ray run is rerun whole (use --overwrite)")
    job = AnnotateJob(model, inputs, output, errors, options, progress)
    if isinstance(job.writer, DocBinWriter):
        raise OutputError(f"{output}: the Ray engine writes .jsonl or .parquet; use the local engine for DocBin")
    try:
        import ray
    except ImportError:
        raise AnnotateError("the Ray engine needs Ray: pip install 'spacy_medner[ray]'") from None
    import time

    started = time.monotonic()
    job.prepare()
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=actors + 1, log_to_driver=False)  # one CPU to read beside the actors
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    reader = _absolute(job.reader)
    # Blocks of about `batch_size` records, so that the actors share even a single input file
    # (a block goes to one actor whole). This sets the session's DataContext.
    context.target_max_block_size = block_bytes
    files = ray.data.from_items([{"file": k} for k in range(len(reader.files))], override_num_blocks=max(1, len(reader.files)))
    rows = files.map_batches(_ReadFiles, fn_constructor_args=(reader, options, options.batch_size), batch_size=1,
                             concurrency=1, num_cpus=0)
    predicted = rows.map_batches(
        _Predictor, fn_constructor_args=(_model_path(model), options.threads or 1, options.spans_key),
        batch_size=options.batch_size, concurrency=actors, num_cpus=1, batch_format="numpy",
    )
    _write(job, predicted.iter_rows(), progress(reader) if progress else None)
    job.summary.seconds = round(time.monotonic() - started, 3)
    return job.summary


def _write(job: AnnotateJob, results, progress: Optional[Progress]) -> None:
    """Merge pieces and commit chunks exactly like the local engine."""
    options, summary = job.options, job.summary
    rows: List[dict] = []
    error_rows: List[dict] = []
    reasons = dict(summary.reasons)
    pieces: List[str] = []
    found: Dict[str, List[dict]] = {}
    in_chunk = 0
    for result in results:
        chars = 0
        if result["reason"]:
            error_rows.append({"source": result["source"], "line": int(result["line"]), "id": result["id"] or None, "reason": result["reason"]})
            summary.errors += 1
            category = reason_category(result["reason"])
            reasons[category] = reasons.get(category, 0) + 1
        else:
            offset = int(result["offset"])
            pieces.append(result["piece"])
            piece = {"entities": json.loads(result["entities"])}
            if result["mentions"]:
                piece["mentions"] = json.loads(result["mentions"])
            for field, items in shift_result(piece, offset).items():
                found.setdefault(field, []).extend(items)
            if int(result["k"]) < int(result["n"]) - 1:
                continue
            text = "".join(pieces)
            rows.append(result_row(result["id"], text, found["entities"], options.include_text, options.jsonl_format, found.get("mentions")))
            summary.written += 1
            summary.chars += len(text)
            chars = len(text)
            pieces, found = [], {}
        job.cursor += 1
        summary.records_in += 1
        in_chunk += 1
        if progress:
            progress.update(1, chars)
        if in_chunk >= options.chunk_size:
            summary.reasons = dict(reasons)
            job.commit(rows, [], error_rows)
            rows, error_rows, in_chunk = [], [], 0
    summary.reasons = dict(reasons)
    job.commit(rows, [], error_rows, complete=True)
    if progress:
        progress.close()
