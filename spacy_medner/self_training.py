"""Self-training: unlabelled records labelled by the model, as training data
that says only what the model is sure of (`python -m spacy_medner self-label`).

For each record (cut at sentence ends to `max_length` characters, like the
training data) the model predicts its entities with their calibrated
probabilities and the tag marginals of every token. The pseudo-labelled Doc:

- an entity whose probability is at least `min_prob` is kept (`doc.ents`);
- an entity below it is dropped, and its tokens are marked *missing*
  (`ent_iob == 0`): the model may be right about them or not;
- a token outside every predicted entity is "O" when the model is sure of
  it, P(inside some entity) < `uncertain_floor`, and missing otherwise (a
  likely miss is not taught as O).

crf_ner marginalises missing tokens: the loss sums over every legal tag
sequence that agrees with the annotated tokens, so a pseudo-labelled record
teaches only its confident entities and its confident O tokens; an
uncertain token costs nothing whatever it is.

`uncertain_floor` defaults to 1 − `min_prob`: the same bar for an "O" as for
an entity (a token is kept as O when P(O) ≥ min_prob, as an entity is kept
when P(entity) ≥ min_prob).

Train on gold plus pseudo-labels by putting both DocBins in one folder: a
folder is a spaCy `Corpus` path.
"""
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span

from .corpora.build import SOURCE_KEY
from .corpora.segment import segment
from .labelling import SelectError, crf_ner, entity_group, predict_with_marginals


class SelfLabelError(ValueError):
    """The job cannot run (one line for the user)."""


@dataclass
class SelfLabelSummary:
    records_in: int = 0
    records: int = 0  # good records labelled
    errors: int = 0
    reasons: dict = field(default_factory=dict)
    docs: int = 0  # after cutting at max_length
    entities_kept: int = 0
    entities_dropped: int = 0
    tokens: int = 0
    tokens_missing: int = 0
    tokens_missing_in_dropped: int = 0  # of tokens_missing: those of dropped entities
    min_prob: float = 0.9
    uncertain_floor: float = 0.1
    seconds: float = 0.0

    @property
    def missing_share(self) -> float:
        return self.tokens_missing / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "missing_share": round(self.missing_share, 6)}


def pseudo_doc(doc: Doc, marginals: numpy.ndarray, spans_key: str, min_prob: float, uncertain_floor: float) -> Tuple[Doc, int, int, int]:
    """A fresh Doc with the words of the predicted `doc`, its confident entities
    as `ents`, its unsure tokens missing and the rest O (see the module
    docstring). Returns (doc, entities kept, entities dropped, tokens of the
    dropped entities)."""
    entities, scores = entity_group(doc, spans_key)
    out = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
    missing = numpy.zeros(len(doc), dtype=bool)
    in_entity = numpy.zeros(len(doc), dtype=bool)
    kept: List[Span] = []
    dropped = dropped_tokens = 0
    for span, score in zip(entities, scores):
        in_entity[span.start : span.end] = True
        if score >= min_prob:
            kept.append(Span(out, span.start, span.end, label=span.label_))
        else:
            missing[span.start : span.end] = True
            dropped += 1
            dropped_tokens += span.end - span.start
    if len(doc):
        missing |= ~in_entity & ((1.0 - marginals[:, 0]) >= uncertain_floor)
    out.set_ents(kept, missing=[Span(out, i, i + 1) for i in numpy.flatnonzero(missing).tolist()], default="outside")
    return out, len(kept), dropped, dropped_tokens


def self_label_docs(nlp: Language, records: Iterable[Tuple[str, str]], min_prob: float, uncertain_floor: float,
                    max_length: int = 0, batch_size: int = 64, summary: Optional[SelfLabelSummary] = None) -> Iterator[Doc]:
    """(id, text) pairs → pseudo-labelled Docs, one per piece of at most
    `max_length` characters (0: whole records), with `user_data` naming the
    record and the piece's offset as the converters do."""
    name, pipe = crf_ner(nlp)
    if not pipe.spans_key:
        raise SelfLabelError(f"self-labelling needs entity probabilities, and the '{name}' component's spans_key is null; "
                             "set it (e.g. spans_key = \"crf_ner\")")
    summary = summary if summary is not None else SelfLabelSummary()
    summary.min_prob, summary.uncertain_floor = min_prob, uncertain_floor
    where: List[Tuple[str, int]] = []

    def pieces() -> Iterator[str]:
        for id_, text in records:
            summary.records += 1
            for start, end in segment(text, (), max_length):
                where.append((id_, start))
                yield text[start:end]

    for k, (doc, marginals) in enumerate(predict_with_marginals(nlp, pieces(), batch_size)):
        out, kept, dropped, dropped_tokens = pseudo_doc(doc, marginals, pipe.spans_key, min_prob, uncertain_floor)
        id_, offset = where[k]
        out.user_data[SOURCE_KEY] = {"id": id_, "offset": offset}
        summary.docs += 1
        summary.entities_kept += kept
        summary.entities_dropped += dropped
        summary.tokens += len(out)
        summary.tokens_missing += sum(1 for t in out if t.ent_iob == 0)
        summary.tokens_missing_in_dropped += dropped_tokens
        yield out


def self_label(model: str, inputs: Sequence, output, *, min_prob: float = 0.9, uncertain_floor: Optional[float] = None,
               errors=None, text_field: str = "text", id_field: Optional[str] = None, max_length: int = 0,
               batch_size: int = 64, max_chars: int = 1_000_000, threads: Optional[int] = None,
               nlp: Optional[Language] = None) -> SelfLabelSummary:
    """Pseudo-label the input records with `model` into the DocBin `output`
    (written whole or not at all); bad records go to the errors file as in
    `annotate`. Raises SelfLabelError, InputError or OutputError."""
    from .annotate import AnnotateError, AnnotateOptions, bad_record_reason, default_errors_path, load_pipeline, reason_category
    from .cli import write_atomic
    from .io.readers import RecordReader
    from .io.writers import OutputError

    started = time.monotonic()
    output = Path(output)
    if output.suffix.lower() != ".spacy":
        raise OutputError(f"{output}: pseudo-labels are a DocBin; name the output .spacy")
    for option, value in (("--min-prob", min_prob), ("--uncertain-floor", uncertain_floor)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise SelfLabelError(f"{option} must be a probability in [0, 1], got {value}")
    floor = 1.0 - min_prob if uncertain_floor is None else uncertain_floor
    if floor <= 0.0:
        raise SelfLabelError("--uncertain-floor is 0 (or --min-prob is 1 without it): every token would be missing")
    reader = RecordReader(inputs, text_field, id_field)
    reader.check()
    if nlp is None:
        try:
            nlp = load_pipeline(model, AnnotateOptions(threads=threads))
        except AnnotateError as err:
            raise SelfLabelError(str(err)) from None
    try:
        crf_ner(nlp, source=str(model))
    except SelectError as err:
        raise SelfLabelError(str(err)) from None
    summary = SelfLabelSummary()
    reasons: Counter = Counter()
    bad_rows: List[dict] = []

    def good_records() -> Iterator[Tuple[str, str]]:
        for record in reader:
            summary.records_in += 1
            reason = bad_record_reason(record, text_field, max_chars)
            if reason is None:
                yield record.id, record.text
                continue
            summary.errors += 1
            reasons[reason_category(reason)] += 1
            bad_rows.append({"source": record.source, "line": record.line, "id": record.id, "reason": reason})

    # The DocBin is built in memory (about the size of the records' text times a few): fine for the
    # thousands of records self-training uses; bad records are few and kept with it.
    docbin = DocBin(store_user_data=True)
    for doc in self_label_docs(nlp, good_records(), min_prob, floor, max_length, batch_size, summary):
        docbin.add(doc)
    summary.reasons = dict(reasons)
    if not summary.docs:
        detail = f"all {summary.records_in:,} records were bad" if summary.errors else "they hold no records"
        raise SelfLabelError(f"{', '.join(map(str, inputs))}: nothing to label ({detail})")
    errors_path = Path(errors) if errors else default_errors_path(output)
    if bad_rows:
        write_atomic(errors_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in bad_rows).encode("utf8"))
    else:
        errors_path.unlink(missing_ok=True)
    write_atomic(output, docbin.to_bytes())
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


__all__ = ["SelfLabelError", "SelfLabelSummary", "pseudo_doc", "self_label", "self_label_docs"]
