"""Choosing the records worth labelling, and the labelling tasks that carry
the model's entities: the work behind `python -m spacy_medner select`.

The score: the expected number of errors in the model's annotation of a
record, under the model itself,

    E = Σ_entities (1 − p_e)  +  Σ_tokens outside entities P(token is inside some entity)

- p_e is the calibrated probability of a predicted entity (the Viterbi
  entities of `doc.spans["crf_ner"]`, those below the component's `threshold`
  included): the chance the annotator has to fix or delete it.
- For a token no predicted entity covers, 1 − P(tag = O), from the CRF tag
  marginals (`TagDecoder.tag_marginals`, at the component's calibrated
  temperature): the chance it belongs to an entity the model missed. Summed
  over tokens it counts a missed entity once per token, so a likely miss of
  a long entity weighs more than one of a short one, as its correction does.
  Entity probabilities alone would rank a record the model is silent on
  (nothing predicted, much missed) as certain.

Length: records are ranked by E itself (the default), or by E per 100
characters (`normalise=True`, `select --per-100-chars`). E grows with length,
so the default leans to long records; one might expect that to buy far more
text than a random choice of as many records for little more. Measured on
CCKS2019 (benchmarks/campaign.py, 3 seeds, BENCHMARKS.md "The annotation
loop"), it does not: ranked by E, 500 records reach full-data F1 − 1 where
random needs more than 600, with only 10–27% more characters than random;
and, past the first round, at equal characters read E beats E per 100
characters too (79.6 F1 at 239k characters against about 79.1), whose short
records carry few entities.
Per 100 characters is kept for pools of very uneven length where reading
time is the budget (each task's `meta` carries both figures).

Streaming: records are read, predicted and scored in batches, and only the
best N (a heap) are kept, so memory is bounded by N whatever the pool's size.
Ties are broken by a key hashed from the seed and the record (its id and
text), so the same command with the same seed gives the same tasks. Another
batch size or pool order gives the same tasks too, except that two records
whose scores agree to about 1e-5 may swap: a score's last digits depend on
which records share its batch (padding changes the summation order), as in
`annotate`. `strategy="random"` ranks by the key alone, which depends on
nothing else, and predicts only the N records it keeps.

Cost: the tag marginals come from crf_ner's own prediction pass
(`predict(docs, tag_marginals=True)`), so the encoder runs once per record:
about `annotate`'s time plus one forward-backward pass.
"""
import hashlib
import heapq
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc

from .corpora.segment import segment
from .io.entities import doc_entities

STRATEGIES = ("uncertainty", "random")
TASK_FORMATS = ("prodigy", "doccano")


class SelectError(ValueError):
    """The selection cannot run (one line for the user)."""


@dataclass
class Predicted:
    """A record as the model sees it: its entities (offsets into the whole
    text, with scores), its tokens, and its expected errors."""

    id: str
    text: str
    entities: List[dict]
    tokens: List[Tuple[int, int, bool]]  # (start char, end char, followed by whitespace)
    expected_errors: float
    missed: float  # the part of expected_errors from tokens outside entities

    def score(self, normalise: bool = False) -> float:
        return per_100_chars(self.expected_errors, len(self.text)) if normalise else self.expected_errors


def per_100_chars(errors: float, length: int) -> float:
    return 100.0 * errors / max(1, length)


def expected_errors(entity_scores: Sequence[float], marginals: numpy.ndarray, in_entity: numpy.ndarray) -> Tuple[float, float]:
    """(E, missed): E = Σ (1 − p) over the entities plus Σ P(not O) over the
    tokens outside them; `missed` is that second sum. marginals: (n_tokens,
    n_tags), tag 0 being O; in_entity: (n_tokens,) bool."""
    wrong = float(numpy.sum(1.0 - numpy.asarray(entity_scores, dtype="float64")))
    outside = ~numpy.asarray(in_entity, dtype=bool)
    missed = float(numpy.sum(1.0 - numpy.asarray(marginals, dtype="float64")[outside, 0])) if len(marginals) else 0.0
    return wrong + missed, missed


def tie_key(seed: int, id_: str, text: str) -> float:
    """A number in [0, 1) fixed by the seed and the record alone."""
    digest = hashlib.blake2b(f"{seed}\x00{id_}\x00{text}".encode("utf8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def stable_hash(*parts: Any) -> int:
    """A signed 32-bit hash (Prodigy's `_input_hash` / `_task_hash` are ints)."""
    data = json.dumps(parts, ensure_ascii=False, sort_keys=True).encode("utf8")
    return int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "big", signed=True)


# -- the model ---------------------------------------------------------------------------------------


def crf_ner(nlp: Language, source: str = "the pipeline"):
    """(name, component) of the pipeline's crf_ner, or SelectError."""
    from .calibration import crf_ner_pipe

    try:
        return crf_ner_pipe(nlp, source=source)
    except ValueError as err:
        raise SelectError(str(err)) from None


def entity_group(doc: Doc, spans_key: Optional[str]) -> Tuple[list, List[float]]:
    """The Viterbi entities and their probabilities (the span group, which keeps
    entities under the component's threshold), or doc.ents and no scores."""
    if spans_key and spans_key in doc.spans and doc.spans[spans_key].attrs.get("scores") is not None:
        group = doc.spans[spans_key]
        return list(group), [float(s) for s in group.attrs["scores"]]
    return list(doc.ents), []


def predict_with_marginals(nlp: Language, texts: Iterable[str], batch_size: int = 64) -> Iterator[Tuple[Doc, numpy.ndarray]]:
    """Each text as a predicted Doc (the whole pipeline: ents and entity
    scores) with its (n_tokens, n_tags) tag marginals at crf_ner's
    temperature (tag 0: O), from crf_ner's own encoder pass
    (`predict(docs, tag_marginals=True)`): one pass, as in `nlp.pipe`."""
    name, pipe = crf_ner(nlp)
    batch: List[str] = []

    def flush(texts: List[str]) -> Iterator[Tuple[Doc, numpy.ndarray]]:
        docs = [nlp.make_doc(text) for text in texts]
        marginals: List[numpy.ndarray] = []
        for component_name, component in nlp.pipeline:
            if component_name == name:
                predictions = pipe.predict(docs, tag_marginals=True)
                pipe.set_annotations(docs, predictions)
                marginals = [p["tag_marginals"] for p in predictions]
            else:
                docs = list(component.pipe(docs, batch_size=len(docs)))
        yield from zip(docs, marginals)

    for text in texts:
        batch.append(text)
        if len(batch) >= batch_size:
            yield from flush(batch)
            batch = []
    if batch:
        yield from flush(batch)


def doc_expected_errors(doc: Doc, marginals: numpy.ndarray, spans_key: Optional[str]) -> Tuple[float, float]:
    entities, scores = entity_group(doc, spans_key)
    in_entity = numpy.zeros(len(doc), dtype=bool)
    for span in entities:
        in_entity[span.start : span.end] = True
    return expected_errors(scores, marginals, in_entity)


def predict_records(nlp: Language, records: Iterable[Tuple[str, str]], batch_size: int = 64, split_length: int = 2000) -> Iterator[Predicted]:
    """(id, text) pairs → `Predicted`, in order. Texts longer than
    `split_length` are predicted in pieces cut at sentence ends (like
    `annotate`) and merged back; their expected errors add up."""
    name, pipe = crf_ner(nlp)
    spans_key = pipe.spans_key
    pending: List[Tuple[str, str, List[Tuple[int, int]]]] = []

    def pieces_of(items):
        for _, text, cuts in items:
            for start, end in cuts:
                yield text[start:end]

    def flush(items) -> Iterator[Predicted]:
        predicted = predict_with_marginals(nlp, pieces_of(items), batch_size)
        for id_, text, cuts in items:
            entities, tokens, errors, missed = [], [], 0.0, 0.0
            for start, _ in cuts:
                doc, marginals = next(predicted)
                e, m = doc_expected_errors(doc, marginals, spans_key)
                errors, missed = errors + e, missed + m
                entities += [{**ent, "start": ent["start"] + start, "end": ent["end"] + start} for ent in doc_entities(doc, spans_key)]
                tokens += [(t.idx + start, t.idx + start + len(t.text), bool(t.whitespace_)) for t in doc]
            yield Predicted(id_, text, entities, tokens, errors, missed)

    for id_, text in records:
        cuts = segment(text, (), split_length) if split_length and len(text) > split_length else [(0, len(text))]
        pending.append((id_, text, cuts))
        if sum(len(c) for _, _, c in pending) >= batch_size:
            yield from flush(pending)
            pending = []
    if pending:
        yield from flush(pending)


# -- choosing ----------------------------------------------------------------------------------------


class TopN:
    """The N best items seen, by (score, tie key), in bounded memory. Two
    items with the same text are kept once (the better one)."""

    def __init__(self, n: int):
        self.n = n
        self.heap: List[tuple] = []  # min-heap: the worst kept item on top
        self.texts: Dict[str, tuple] = {}
        self.seen = 0
        self.duplicates = 0  # items whose text a kept item had (one of the two was dropped)

    def offer(self, score: float, key: float, text: str, item: Any) -> None:
        self.seen += 1
        entry = (score, key, self.seen, text, item)
        twin = self.texts.get(text)
        if twin is not None:
            self.duplicates += 1
            if entry[:2] <= twin[:2]:
                return
            self.heap.remove(twin)
            heapq.heapify(self.heap)
            del self.texts[text]
        if len(self.heap) < self.n:
            heapq.heappush(self.heap, entry)
        elif entry[:2] > self.heap[0][:2]:
            del self.texts[heapq.heapreplace(self.heap, entry)[3]]
        else:
            return
        self.texts[text] = entry

    def best(self) -> List[Tuple[float, float, Any]]:
        """(score, key, item), best first."""
        return [(s, k, item) for s, k, _, _, item in sorted(self.heap, key=lambda e: (-e[0], -e[1]))]


@dataclass
class Chosen:
    predicted: Predicted
    score: float  # what the records were ranked by (uncertainty: E, or E per 100 characters; random: the key)
    rank: int


@dataclass
class SelectSummary:
    records_in: int = 0
    scored: int = 0  # good records ranked
    errors: int = 0
    reasons: Dict[str, int] = field(default_factory=dict)
    selected: int = 0
    duplicates: int = 0  # good records whose text another kept record already had
    excluded: int = 0  # good records labelled in an earlier round (--exclude)
    strategy: str = "uncertainty"
    seed: int = 0
    normalise: bool = False
    score_min: Optional[float] = None  # of the selected
    score_max: Optional[float] = None
    pool_mean_score: Optional[float] = None  # of every record scored (uncertainty)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def choose(nlp: Language, records: Iterable[Tuple[str, str]], n: int, strategy: str = "uncertainty", seed: int = 0,
           normalise: bool = False, batch_size: int = 64, split_length: int = 2000,
           summary: Optional[SelectSummary] = None) -> List[Chosen]:
    """The n records of `records` ((id, text) pairs, good ones) most worth
    labelling, best first, each with the model's prediction."""
    if n <= 0:
        raise SelectError(f"--n must be at least 1, got {n}")
    if strategy not in STRATEGIES:
        raise SelectError(f"--strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    summary = summary if summary is not None else SelectSummary()
    summary.strategy, summary.seed, summary.normalise = strategy, seed, normalise
    name, pipe = crf_ner(nlp)
    if strategy == "uncertainty" and not pipe.spans_key:
        raise SelectError(f"--strategy uncertainty needs entity probabilities, and the '{name}' component's spans_key is null; "
                          "set it (e.g. spans_key = \"crf_ner\") or use --strategy random")
    top = TopN(n)
    if strategy == "random":
        for id_, text in records:
            summary.scored += 1
            top.offer(tie_key(seed, id_, text), 0.0, text, (id_, text))
        kept = top.best()
        predicted = predict_records(nlp, [item for _, _, item in kept], batch_size, split_length)
        chosen = [Chosen(p, score, rank) for rank, ((score, _, _), p) in enumerate(zip(kept, predicted), start=1)]
    else:
        total = 0.0
        for p in predict_records(nlp, records, batch_size, split_length):
            summary.scored += 1
            score = p.score(normalise)
            total += score
            top.offer(score, tie_key(seed, p.id, p.text), p.text, p)
        summary.pool_mean_score = round(total / summary.scored, 6) if summary.scored else None
        chosen = [Chosen(p, score, rank) for rank, (score, _, p) in enumerate(top.best(), start=1)]
    summary.duplicates = top.duplicates
    summary.selected = len(chosen)
    if chosen:
        summary.score_min, summary.score_max = round(min(c.score for c in chosen), 6), round(max(c.score for c in chosen), 6)
    return chosen


# -- tasks -------------------------------------------------------------------------------------------


def task_meta(chosen: Chosen, strategy: str, normalise: bool) -> dict:
    p = chosen.predicted
    return {
        "id": p.id, "score": round(chosen.score, 6), "rank": chosen.rank, "strategy": strategy,
        "expected_errors": round(p.expected_errors, 4), "expected_misses": round(p.missed, 4),
        "errors_per_100_chars": round(per_100_chars(p.expected_errors, len(p.text)), 4),
    }


def prodigy_task(chosen: Chosen, strategy: str = "uncertainty", normalise: bool = False) -> dict:
    """A Prodigy `ner_manual` task: the text, its tokens, the model's entities
    as spans (token_end inclusive, as Prodigy has it) and the score in meta."""
    p = chosen.predicted
    tokens = [{"text": p.text[s:e], "start": s, "end": e, "id": i, "ws": ws} for i, (s, e, ws) in enumerate(p.tokens)]
    starts = {t["start"]: t["id"] for t in tokens}
    ends = {t["end"]: t["id"] for t in tokens}
    spans = [
        {"start": e["start"], "end": e["end"], "token_start": starts[e["start"]], "token_end": ends[e["end"]], "label": e["label"]}
        for e in p.entities
    ]
    task = {"text": p.text, "tokens": tokens, "spans": spans, "meta": task_meta(chosen, strategy, normalise)}
    task["_input_hash"] = stable_hash(p.text)
    task["_task_hash"] = stable_hash(p.text, [(s["start"], s["end"], s["label"]) for s in spans])
    task["_view_id"] = "ner_manual"
    return task


def doccano_task(chosen: Chosen, strategy: str = "uncertainty", normalise: bool = False) -> dict:
    """A doccano sequence-labelling line: `text`, `label` [[start, end, label]];
    the other fields become the example's metadata on import."""
    p = chosen.predicted
    meta = task_meta(chosen, strategy, normalise)
    return {"id": p.id, "text": p.text, "label": [[e["start"], e["end"], e["label"]] for e in p.entities],
            "score": meta["score"], "meta": meta}


def make_task(chosen: Chosen, task_format: str, strategy: str = "uncertainty", normalise: bool = False) -> dict:
    if task_format == "prodigy":
        return prodigy_task(chosen, strategy, normalise)
    if task_format == "doccano":
        return doccano_task(chosen, strategy, normalise)
    raise SelectError(f"--format {task_format!r}: expected one of {', '.join(TASK_FORMATS)}")


# -- the job -----------------------------------------------------------------------------------------


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf8"), digest_size=16).digest()


def excluded_texts(paths: Iterable) -> set:
    """Keys of the texts of earlier rounds: JSON lines with a `text` field
    (tasks written by `select`, or a Prodigy/doccano export), so that a new
    round never sends a record twice. 16 bytes a record in memory."""
    from pathlib import Path

    from .io.readers import InputError

    keys = set()
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError(path, "no such file (--exclude takes the JSON lines of earlier rounds' tasks or exports)")
        with open(path, encoding="utf-8-sig") as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise InputError(path, f"invalid JSON: {err.msg} (column {err.colno})", number) from None
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    raise InputError(path, "expected a JSON object with a string field 'text'", number)
                keys.add(text_key(obj["text"]))
    return keys


def select(model: str, pool: Sequence, output, n: int, *, strategy: str = "uncertainty", task_format: str = "prodigy",
           seed: int = 0, errors=None, text_field: str = "text", id_field: Optional[str] = None, normalise: bool = False,
           batch_size: int = 64, split_length: int = 2000, max_chars: int = 1_000_000, threads: Optional[int] = None,
           exclude: Sequence = (), nlp: Optional[Language] = None) -> SelectSummary:
    """Choose `n` records of the pool files for labelling and write them as
    tasks to `output` (JSON lines, written whole or not at all). Records whose
    text is in an `exclude` file (earlier rounds) are skipped and counted. Bad
    records go to the errors file (`annotate`'s shape: source, line, id,
    reason), written whole beside the output. Raises SelectError, InputError
    or OutputError, before anything is written."""
    import os
    import time
    from collections import Counter
    from pathlib import Path

    from .annotate import AnnotateError, AnnotateOptions, bad_record_reason, default_errors_path, load_pipeline, reason_category
    from .cli import write_atomic
    from .io.readers import RecordReader
    from .io.writers import OutputError

    started = time.monotonic()
    output = Path(output)
    if output.suffix.lower() != ".jsonl":
        raise OutputError(f"{output}: tasks are JSON lines; name the output .jsonl")
    if n <= 0:
        raise SelectError(f"--n must be at least 1, got {n}")
    if task_format not in TASK_FORMATS:
        raise SelectError(f"--format {task_format!r}: expected one of {', '.join(TASK_FORMATS)}")
    reader = RecordReader(pool, text_field, id_field)
    reader.check()
    done = excluded_texts(exclude)
    if nlp is None:
        try:
            nlp = load_pipeline(model, AnnotateOptions(threads=threads))
        except AnnotateError as err:
            raise SelectError(str(err)) from None
    crf_ner(nlp, source=str(model))
    errors_path = Path(errors) if errors else default_errors_path(output)
    errors_tmp = errors_path.with_name(f".{errors_path.name}.{os.getpid()}.tmp")
    errors_tmp.parent.mkdir(parents=True, exist_ok=True)
    summary = SelectSummary()
    reasons: Counter = Counter()
    try:
        with open(errors_tmp, "w", encoding="utf8") as bad:

            def good_records() -> Iterator[Tuple[str, str]]:
                for record in reader:
                    summary.records_in += 1
                    reason = bad_record_reason(record, text_field, max_chars)
                    if reason is None:
                        if done and text_key(record.text) in done:
                            summary.excluded += 1
                        else:
                            yield record.id, record.text
                        continue
                    summary.errors += 1
                    reasons[reason_category(reason)] += 1
                    bad.write(json.dumps({"source": record.source, "line": record.line, "id": record.id, "reason": reason},
                                         ensure_ascii=False) + "\n")

            chosen = choose(nlp, good_records(), n, strategy, seed, normalise, batch_size, split_length, summary)
        summary.reasons = dict(reasons)
        if summary.errors:
            os.replace(errors_tmp, errors_path)
        if not chosen:
            where = ", ".join(str(p) for p in pool)
            if summary.errors:
                detail = f"all {summary.records_in:,} records were bad or excluded, see {errors_path}"
            elif summary.excluded:
                detail = f"all {summary.excluded:,} records were labelled in earlier rounds (--exclude)"
            else:
                detail = "it holds no records"
            raise SelectError(f"{where}: the pool is empty ({detail})")
        tasks = [make_task(c, task_format, strategy, normalise) for c in chosen]
        write_atomic(output, "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tasks).encode("utf8"))
        if not summary.errors:
            errors_path.unlink(missing_ok=True)  # no stale errors file from an earlier run
    finally:
        errors_tmp.unlink(missing_ok=True)
    summary.seconds = round(time.monotonic() - started, 3)
    return summary
