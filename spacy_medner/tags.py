"""Tag schemes: BIO and BIOES encoding, decoding and allowed transitions.

Everything here works on token indices with exclusive ends, and on tag
*names* ("O", "B-药物", ...). The tag inventory of a component is
`tag_names(labels, scheme)`: "O" first, then each label's prefixes in a fixed
order, so a tag index never depends on the order labels were seen in.
"""
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy

Span = Tuple[int, int, str]

SCHEMES = ("BIO", "BIOES")
_PREFIXES = {"BIO": ("B", "I"), "BIOES": ("B", "I", "E", "S")}
# spaCy's gold tags come as BILUO; these are their names in our schemes.
_FROM_BILUO = {
    "BIO": {"B": "B", "I": "I", "L": "I", "U": "B"},
    "BIOES": {"B": "B", "I": "I", "L": "E", "U": "S"},
}


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(
            f"[spacy_medner] Unknown tag scheme {scheme!r} (option 'scheme'). "
            f"Use one of: {', '.join(SCHEMES)}."
        )
    return scheme


def tag_names(labels: Iterable[str], scheme: str) -> List[str]:
    prefixes = _PREFIXES[check_scheme(scheme)]
    return ["O"] + [f"{p}-{label}" for label in sorted(labels) for p in prefixes]


def split_tag(tag: str) -> Tuple[str, Optional[str]]:
    if tag == "O":
        return "O", None
    prefix, _, label = tag.partition("-")
    return prefix, label


def spans_to_tags(spans: Iterable[Span], length: int, scheme: str) -> List[str]:
    """Encode non-overlapping (start, end, label) token spans as tags."""
    check_scheme(scheme)
    tags = ["O"] * length
    for start, end, label in sorted(spans):
        if not 0 <= start < end <= length:
            raise ValueError(f"[spacy_medner] Span {(start, end, label)} is outside 0..{length}.")
        if any(t != "O" for t in tags[start:end]):
            raise ValueError(f"[spacy_medner] Span {(start, end, label)} overlaps another span.")
        if scheme == "BIOES" and end - start == 1:
            tags[start] = f"S-{label}"
            continue
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
        if scheme == "BIOES":
            tags[end - 1] = f"E-{label}"
    return tags


def tags_to_spans(tags: Sequence[str], scheme: str) -> List[Span]:
    """Decode a *valid* tag sequence (as constrained decoding produces) into spans.

    An entity runs from its B (or S) up to the last I/E of the same label, so
    the function is also total on invalid input: a stray I-X starts an entity
    (the usual "lenient" CoNLL reading). Use `is_valid` to find such
    sequences before decoding user data.
    """
    check_scheme(scheme)
    spans: List[Span] = []
    start, label = -1, None
    for i, tag in enumerate(tags):
        prefix, tag_label = split_tag(tag)
        continues = prefix in ("I", "E") and label == tag_label and start >= 0
        if not continues and label is not None:
            spans.append((start, i, label))
            start, label = -1, None
        if prefix in ("B", "S") or (prefix in ("I", "E") and not continues):
            start, label = i, tag_label
        if prefix in ("E", "S") and scheme == "BIOES":
            spans.append((start, i + 1, label))
            start, label = -1, None
    if label is not None:
        spans.append((start, len(tags), label))
    return spans


def from_biluo(biluo: Optional[str], scheme: str) -> Optional[str]:
    """Map one spaCy gold BILUO tag to the scheme; None/"-" (missing) stays None."""
    if biluo is None or biluo == "-" or biluo == "":
        return None
    if biluo == "O":
        return "O"
    prefix, label = split_tag(biluo)
    return f"{_FROM_BILUO[scheme][prefix]}-{label}"


def allowed_transitions(names: Sequence[str], scheme: str) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Boolean masks (start[K], transitions[K, K], end[K]) of legal moves.

    Forbidden: any I/E not preceded by B/I of its own label (O→I-X,
    B-X→I-Y), in BIOES also anything after B/I but its own I/E, and sequences
    that start inside or end inside an entity.
    """
    check_scheme(scheme)
    parsed = [split_tag(t) for t in names]
    K = len(names)
    start = numpy.zeros(K, dtype=bool)
    end = numpy.zeros(K, dtype=bool)
    trans = numpy.zeros((K, K), dtype=bool)
    for j, (p, _) in enumerate(parsed):
        start[j] = p in ("O", "B", "S")
        end[j] = p in ("O", "B", "I") if scheme == "BIO" else p in ("O", "E", "S")
    for i, (pi, li) in enumerate(parsed):
        inside = pi in ("B", "I")  # an entity is open after this tag
        for j, (pj, lj) in enumerate(parsed):
            if pj in ("I", "E"):
                trans[i, j] = inside and li == lj
            elif scheme == "BIOES":
                trans[i, j] = not inside  # B-X/I-X must continue with I-X/E-X
            else:
                trans[i, j] = True
    return start, trans, end


def is_valid(tag_ids: Sequence[int], allowed: Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]) -> bool:
    start, trans, end = allowed
    if len(tag_ids) == 0:
        return True
    if not start[tag_ids[0]] or not end[tag_ids[-1]]:
        return False
    return all(trans[a, b] for a, b in zip(tag_ids[:-1], tag_ids[1:]))


def tag_index(names: Sequence[str]) -> Dict[str, int]:
    return {name: i for i, name in enumerate(names)}
