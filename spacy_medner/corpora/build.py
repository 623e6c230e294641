"""Records → Docs, with the entity policy:

1. Whitespace at either edge of a span is trimmed (a span that is only
   whitespace is dropped): spaCy cannot align such spans to tokens.
2. Exact duplicates (same offsets and label) are merged.
3. Overlaps: every entity goes into the span group `span_key`; `doc.ents`
   gets the longest outer spans (longest first, then leftmost), and an entity
   that overlaps one already chosen is kept in the span group only.
4. Long records are segmented (see `segment.py`); each segment keeps its
   record id and character offset in `doc.user_data["medner_source"]`.
"""
import random
from typing import Iterable, Iterator, List, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from .records import Entity, Record
from .report import ConversionReport
from .segment import segment

SOURCE_KEY = "medner_source"


def trim(record: Record, entity: Entity, report: ConversionReport):
    text = record.text
    start, end = entity.start, entity.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    original = text[entity.start : entity.end]
    if start == end:
        report.change("dropped", record.id, entity.label, original, "span is only whitespace", start=entity.start, end=entity.end)
        return None
    if (start, end) != (entity.start, entity.end):
        report.change("trimmed", record.id, entity.label, original, f"whitespace at the edge; now {text[start:end]!r}", start=start, end=end)
    return Entity(start, end, entity.label)


def resolve(record: Record, report: ConversionReport) -> Tuple[List[Entity], List[Entity]]:
    """(all distinct entities, the non-overlapping ones for doc.ents)."""
    seen, entities = set(), []
    for entity in record.entities:
        entity = trim(record, entity, report)
        if entity is None:
            continue
        key = (entity.start, entity.end, entity.label)
        if key in seen:
            report.change("merged", record.id, entity.label, record.text[entity.start : entity.end], "duplicate entity", start=entity.start, end=entity.end)
            continue
        seen.add(key)
        entities.append(entity)
    outer: List[Entity] = []
    for entity in sorted(entities, key=lambda e: (-(e.end - e.start), e.start, e.label)):
        clash = next((o for o in outer if o.start < entity.end and entity.start < o.end), None)
        if clash is None:
            outer.append(entity)
            continue
        relation = "nested in" if clash.start <= entity.start and entity.end <= clash.end else "crosses"
        report.change(
            "span_group_only", record.id, entity.label, record.text[entity.start : entity.end],
            f"{relation} {clash.label} {record.text[clash.start:clash.end]!r}", start=entity.start, end=entity.end,
        )
    return entities, sorted(outer, key=lambda e: e.start)


def _to_span(doc: Doc, offset: int, entity: Entity, record: Record, report: ConversionReport):
    start, end = entity.start - offset, entity.end - offset
    span = doc.char_span(start, end, label=entity.label)
    if span is None:
        span = doc.char_span(start, end, label=entity.label, alignment_mode="expand")
        if span is None:
            report.change("dropped", record.id, entity.label, record.text[entity.start : entity.end], "does not align with tokens")
            return None
        report.change("expanded", record.id, entity.label, record.text[entity.start : entity.end], f"now {span.text!r}")
    return span


def records_to_docs(
    nlp: Language, records: Iterable[Record], report: ConversionReport, *, max_length: int = 0, span_key: str = "sc"
) -> Iterator[Doc]:
    for record in records:
        report.records += 1
        report.entities_in.update(e.label for e in record.entities)
        if not record.text.strip():
            report.records_skipped += 1
            for e in record.entities:
                report.change("dropped", record.id, e.label, "", "record text is empty")
            continue
        entities, outer = resolve(record, report)
        for seg_start, seg_end in segment(record.text, [(e.start, e.end) for e in entities], max_length):
            if max_length and seg_end - seg_start > max_length:
                report.extra.setdefault("over_length_segments", []).append(
                    {"record": record.id, "length": seg_end - seg_start, "reason": "an entity is longer than max_length"}
                )
            doc = nlp.make_doc(record.text[seg_start:seg_end])
            inside = lambda e: seg_start <= e.start and e.end <= seg_end  # noqa: E731
            spans = [_to_span(doc, seg_start, e, record, report) for e in entities if inside(e)]
            ent_keys = {(e.start, e.end, e.label) for e in outer if inside(e)}
            spans = [s for s in spans if s is not None]
            ents = [s for s in spans if (s.start_char + seg_start, s.end_char + seg_start, s.label_) in ent_keys]
            ents = _non_overlapping(ents, record, report)
            doc.set_ents(ents, default="outside")
            doc.spans[span_key] = spans
            doc.user_data[SOURCE_KEY] = {"id": record.id, "offset": seg_start}
            report.segments += 1
            report.ents_out.update(s.label_ for s in ents)
            report.spans_out.update(s.label_ for s in spans)
            yield doc


def _non_overlapping(ents: List[Span], record: Record, report: ConversionReport) -> List[Span]:
    """Token expansion can make two disjoint character spans overlap."""
    out: List[Span] = []
    for span in sorted(ents, key=lambda s: (s.start, -len(s))):
        if out and span.start < out[-1].end:
            report.change("span_group_only", record.id, span.label_, span.text, "overlaps after token alignment")
            continue
        out.append(span)
    return out


def split_records(records: Sequence[Record], dev_ratio: float, seed: int) -> Tuple[List[Record], List[Record]]:
    """Deterministic split by record (segments of one record stay together)."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_dev = round(len(records) * dev_ratio)
    dev = set(order[:n_dev])
    return [r for i, r in enumerate(records) if i not in dev], [r for i, r in enumerate(records) if i in dev]
