"""A predicted Doc as plain JSON-able entities, the one output shape of
`annotate`, `serve` and `select`.

Offsets are character offsets into `doc.text`, end exclusive. `score` is the
entity's probability from the span group `doc.spans[spans_key]` (crf_ner's
and span_ner's span-categorizer convention: spans with `attrs["scores"]`);
it is left out when the pipeline sets no scores.

Which span group: `scoring_group(nlp)` reads it off the loaded pipeline (the
`spans_key` of its crf_ner or span_ner component), so a span_ner pipeline
gets its scores without the user knowing its key. A span_ner pipeline also
gets `mentions`: every span of the group (nested and overlapping ones too)
beside `entities` (`doc.ents`, never overlapping). crf_ner's group holds
exactly `doc.ents`' spans (plus any under its threshold), so a `mentions`
list would only repeat `entities`: crf_ner output has none.
"""
from typing import Dict, List, NamedTuple, Optional, Tuple

from spacy.tokens import Doc

DEFAULT_SPANS_KEY = "crf_ner"


class ScoringGroup(NamedTuple):
    """Where a pipeline's entity scores are, and whether to output mentions.

    key: the span group whose `attrs["scores"]` score `doc.ents` (None: no scores).
    mentions: also output every span of that group (a span_ner pipeline)."""

    key: Optional[str] = DEFAULT_SPANS_KEY
    mentions: bool = False


def scoring_group(nlp, spans_key: Optional[str] = None) -> ScoringGroup:
    """The scoring span group of a loaded pipeline: the `spans_key` of its
    crf_ner or span_ner component (the last one, whose `doc.ents` stand;
    a null `spans_key` means no scores), and `mentions` when it is span_ner.

    `spans_key`, when given (annotate's and serve's `--spans-key`), wins over
    the component's; mentions still follow the component's kind. A pipeline
    with neither component keeps the historical "crf_ner" key: a custom
    component may fill that group, and an absent group only means no scores."""
    from ..pipeline.crf_ner import CRFEntityRecognizer
    from ..pipeline.span_ner import SpanEntityRecognizer

    found = ScoringGroup(DEFAULT_SPANS_KEY, False)
    for _, pipe in nlp.pipeline:
        if isinstance(pipe, SpanEntityRecognizer):
            found = ScoringGroup(pipe.spans_key, True)
        elif isinstance(pipe, CRFEntityRecognizer):
            found = ScoringGroup(pipe.spans_key or None, False)
    return found._replace(key=spans_key) if spans_key else found


def entity_scores(doc: Doc, spans_key: str = DEFAULT_SPANS_KEY) -> Dict[Tuple[int, int, str], float]:
    """(start_char, end_char, label) → probability, for the spans that carry a score."""
    if spans_key not in doc.spans:
        return {}
    group = doc.spans[spans_key]
    scores = group.attrs.get("scores")
    if scores is None:
        return {}
    return {(span.start_char, span.end_char, span.label_): float(score) for span, score in zip(group, scores)}


def doc_entities(doc: Doc, spans_key: Optional[str] = DEFAULT_SPANS_KEY) -> List[dict]:
    """`doc.ents` as [{"start", "end", "label", "text", "score"?}], in order."""
    scores = entity_scores(doc, spans_key) if spans_key else {}
    out = []
    for ent in doc.ents:
        entity = {"start": ent.start_char, "end": ent.end_char, "label": ent.label_, "text": ent.text}
        score = scores.get((ent.start_char, ent.end_char, ent.label_))
        if score is not None:
            entity["score"] = round(score, 6)
        out.append(entity)
    return out


def doc_mentions(doc: Doc, spans_key: Optional[str]) -> List[dict]:
    """Every span of `doc.spans[spans_key]` in the group's order (span_ner:
    by start, then end, then label), overlaps allowed, in the shape of
    `doc_entities` (score left out when the group has none)."""
    if not spans_key or spans_key not in doc.spans:
        return []
    group = doc.spans[spans_key]
    scores = group.attrs.get("scores")
    out = []
    for k, span in enumerate(group):
        mention = {"start": span.start_char, "end": span.end_char, "label": span.label_, "text": span.text}
        if scores is not None:
            mention["score"] = round(float(scores[k]), 6)
        out.append(mention)
    return out


def doc_result(doc: Doc, group: ScoringGroup) -> dict:
    """One text's output fields: {"entities": [...]} and, for a span_ner
    pipeline, "mentions": [...] (see the module docstring)."""
    result = {"entities": doc_entities(doc, group.key)}
    if group.mentions:
        result["mentions"] = doc_mentions(doc, group.key)
    return result


def shift_result(result: dict, offset: int) -> dict:
    """A piece's output fields with offsets moved by `offset` (into the whole text)."""
    return {field: [{**e, "start": e["start"] + offset, "end": e["end"] + offset} for e in items] for field, items in result.items()}
