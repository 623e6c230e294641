"""A predicted Doc as plain JSON-able entities, the one output shape of
`annotate`, `serve` and `select`.

Offsets are character offsets into `doc.text`, end exclusive. `score` is the
entity's probability from the span group `doc.spans[spans_key]` (crf_ner's
span-categorizer convention: the predicted entities with
`attrs["scores"]`); it is left out when the pipeline sets no scores.
"""
from typing import Dict, List, Optional, Tuple

from spacy.tokens import Doc

DEFAULT_SPANS_KEY = "crf_ner"


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
