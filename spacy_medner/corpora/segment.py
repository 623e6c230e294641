"""Sentence-safe splitting of long records for training.

A record longer than `max_length` characters is cut at the furthest
sentence end (。！？；or newline) that fits; failing that at a clause break
(，、,; or whitespace), failing that at any character. A cut never falls
inside an entity (nested ones included). An entity longer than `max_length`
stays whole and its segment is over-long; the caller reports it.
"""
from typing import List, Sequence, Tuple

SENTENCE_ENDS = set("。！？；!?;\n")
CLAUSE_BREAKS = set("，、,： \t\u3000")


def cut_points(text: str, spans: Sequence[Tuple[int, int]]) -> List[int]:
    """For each position p (0 < p < len), the cut tier: 0 = sentence end just
    before p, 1 = clause break, 2 = anything, 3 = inside an entity (no cut)."""
    tiers = [2] * (len(text) + 1)
    for p in range(1, len(text)):
        before = text[p - 1]
        tiers[p] = 0 if before in SENTENCE_ENDS else 1 if before in CLAUSE_BREAKS else 2
    for start, end in spans:
        for p in range(start + 1, end):
            tiers[p] = 3
    return tiers


def segment(text: str, spans: Sequence[Tuple[int, int]], max_length: int) -> List[Tuple[int, int]]:
    """[start, end) character ranges covering `text`, each ≤ max_length where possible."""
    if max_length <= 0 or len(text) <= max_length:
        return [(0, len(text))]
    tiers = cut_points(text, spans)
    pieces, start = [], 0
    while len(text) - start > max_length:
        window = range(start + 1, start + max_length + 1)
        best = min(window, key=lambda p: (tiers[p], -p))
        if tiers[best] == 3:  # an entity spans the whole window: cut right after it
            best = next((p for p in range(start + max_length + 1, len(text)) if tiers[p] < 3), len(text))
        pieces.append((start, best))
        start = best
    if start < len(text):
        pieces.append((start, len(text)))
    return pieces
