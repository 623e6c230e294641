"""Tag schemes: the one place that knows what a tag means.

A `TagScheme` is built from a scheme name and the labels. It owns the tag
inventory ("O" first, then each label's prefixes in a fixed order, so a tag
id never depends on the order labels were seen in), the legal moves between
tags, gold encoding from spaCy's `ENT_IOB`/`ENT_TYPE` (vectorised), decoding
of tag ids to spans, and the lenient reading of tag *strings* that the CoNLL
converters need.

A scheme is declared by three class attributes, and everything else follows
from them, so a new scheme is one small class:
- `prefixes`: its tag prefixes, in inventory order;
- `role`: per prefix, whether it opens an entity and whether the entity must,
  may or must not end on it (`Role(opens, last)`, `last` True/None/False);
- `from_biluo`: spaCy's gold BILUO prefixes mapped onto the scheme's.

All spans are (start, end, label) with token indices and exclusive ends.
"""
import re
from typing import ClassVar, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy
from spacy.attrs import ENT_IOB, ENT_TYPE, ORTH
from spacy.tokens import Doc
from spacy.training import Example

Span = Tuple[int, int, str]
Moves = Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]


class Role(NamedTuple):
    opens: bool  # the tag starts a new entity
    last: Optional[bool]  # True: the entity ends here; False: it goes on; None: either


class TagScheme:
    name: ClassVar[str]
    prefixes: ClassVar[Tuple[str, ...]]
    role: ClassVar[Dict[str, Role]]
    from_biluo: ClassVar[Dict[str, str]]

    def __init__(self, labels: Iterable[str]):
        self.labels: Tuple[str, ...] = tuple(sorted(set(labels)))
        self.names: List[str] = ["O"] + [f"{p}-{label}" for label in self.labels for p in self.prefixes]
        self.index: Dict[str, int] = {name: i for i, name in enumerate(self.names)}
        roles = [Role(False, True)] + [self.role[p] for _ in self.labels for p in self.prefixes]
        # Per tag id: its label's index (-1 for O), and its role in an entity.
        self.label_ids = numpy.array([-1] + [i for i in range(len(self.labels)) for _ in self.prefixes])
        self.opens = numpy.array([r.opens for r in roles])
        self.continues = numpy.array([not r.opens for r in roles]) & (self.label_ids >= 0)
        self.may_end = numpy.array([r.last is not False for r in roles])
        self.may_go_on = (self.label_ids >= 0) & numpy.array([r.last is not True for r in roles])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.labels)!r})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.labels == other.labels

    @classmethod
    def from_name(cls, scheme: str, labels: Iterable[str]) -> "TagScheme":
        if scheme not in SCHEMES:
            raise ValueError(
                f"[spacy_medner] Unknown tag scheme {scheme!r} (option 'scheme'). Use one of: {', '.join(SCHEMES)}."
            )
        return SCHEMES[scheme](labels)

    def tag_id(self, prefix: str, label: str) -> int:
        return self.index[f"{prefix}-{label}"]

    # Legal moves ------------------------------------------------------------

    def allowed_moves(self) -> Moves:
        """Boolean masks (start[K], transitions[K, K] from→to, end[K]).

        A continuation tag (I-X, E-X, ...) may only follow a tag of label X
        that lets the entity go on; any other tag only follows one that lets
        an entity end. Sequences start on O or an opening tag and end where
        an entity may end.
        """
        start = ~self.continues
        end = self.may_end.copy()
        same_label = self.label_ids[:, None] == self.label_ids[None, :]
        transitions = numpy.where(
            self.continues[None, :], self.may_go_on[:, None] & same_label, self.may_end[:, None]
        )
        return start, transitions, end

    def is_valid(self, tag_ids: Sequence[int]) -> bool:
        if len(tag_ids) == 0:
            return True
        start, transitions, end = self.allowed_moves()
        ids = numpy.asarray(tag_ids)
        return bool(start[ids[0]] and end[ids[-1]] and transitions[ids[:-1], ids[1:]].all())

    # Decoding ---------------------------------------------------------------

    def decode(self, tag_ids: numpy.ndarray) -> numpy.ndarray:
        """Entities of a *legal* tag id sequence as an (n, 3) int array of
        start, end (exclusive) and label index, vectorised: an entity opens on
        an opening tag and runs until the next tag that is not a continuation."""
        ids = numpy.asarray(tag_ids, dtype=int)
        starts = numpy.flatnonzero(self.opens[ids])
        if not len(starts):
            return numpy.zeros((0, 3), dtype=int)
        breaks = numpy.append(numpy.flatnonzero(~self.continues[ids]), len(ids))
        ends = breaks[numpy.searchsorted(breaks, starts + 1)]
        return numpy.stack([starts, ends, self.label_ids[ids[starts]]], axis=1)

    def entity_patterns(self, spans: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """What makes each span (n, 3: start, end, label index) exactly one
        entity, vectorised: its tags (n, L) padded with O, the mask of its real
        tags (n, L), and (n, K) the tags that may follow it without carrying
        it on (all tags where its last tag closes the entity)."""
        spans = numpy.asarray(spans, dtype=int).reshape(-1, 3)
        lengths, labels = spans[:, 1] - spans[:, 0], spans[:, 2]
        width = max(int(lengths.max(initial=1)), 1)
        j = numpy.arange(width)[None, :]
        ends = lengths[:, None] - 1
        # Positions in spaCy's BILUO order: B 0, I 1, L 2, U 3.
        biluo = numpy.where(lengths[:, None] == 1, 3, numpy.where(j == 0, 0, numpy.where(j == ends, 2, 1)))
        table = numpy.array(
            [[self.index[f"{self.from_biluo[p]}-{label}"] for p in "BILU"] for label in self.labels], dtype=int
        ).reshape(-1, 4)
        real = j <= ends
        pattern = numpy.where(real, table[labels[:, None], biluo] if len(spans) else 0, 0)
        last = pattern[numpy.arange(len(spans)), lengths - 1] if len(spans) else numpy.zeros(0, dtype=int)
        carries_on = self.continues[None, :] & (self.label_ids[None, :] == labels[:, None])
        stop = ~carries_on | ~self.may_go_on[last][:, None]
        return pattern, real, stop

    def spans(self, tag_ids: numpy.ndarray) -> List[Span]:
        return [(s, e, self.labels[label]) for s, e, label in self.decode(tag_ids).tolist()]

    # Encoding ---------------------------------------------------------------

    def encode_spans(self, spans: Iterable[Span], length: int) -> List[str]:
        """Non-overlapping spans as tag names."""
        tags = ["O"] * length
        for start, end, label in sorted(spans):
            if not 0 <= start < end <= length:
                raise ValueError(f"[spacy_medner] Span {(start, end, label)} is outside 0..{length}.")
            if any(t != "O" for t in tags[start:end]):
                raise ValueError(f"[spacy_medner] Span {(start, end, label)} overlaps another span.")
            biluo = ["U"] if end - start == 1 else ["B"] + ["I"] * (end - start - 2) + ["L"]
            tags[start:end] = [f"{self.from_biluo[p]}-{label}" for p in biluo]
        return tags

    def encode_biluo(self, biluo: Sequence[Optional[str]]) -> numpy.ndarray:
        """spaCy BILUO tag strings as tag ids; -1 where the annotation is
        missing (None, "-", "") or the label is not the scheme's."""
        ids = numpy.full(len(biluo), -1, dtype=int)
        for i, tag in enumerate(biluo):
            if tag == "O":
                ids[i] = 0
            elif tag and tag != "-":
                prefix, _, label = tag.partition("-")
                ids[i] = self.index.get(f"{self.from_biluo[prefix]}-{label}", -1)
        return ids

    def encode_doc(self, doc: Doc) -> numpy.ndarray:
        """A doc's entity annotation (`ENT_IOB`, `ENT_TYPE`) as tag ids,
        vectorised; -1 where it is missing (`ent_iob == 0`) or the label is
        not the scheme's."""
        annotation = doc.to_array([ENT_IOB, ENT_TYPE]).reshape(-1, 2)
        iob, ent_type = annotation[:, 0].astype("int64"), annotation[:, 1]
        begins, inside = iob == 3, iob == 1
        goes_on = numpy.append(inside[1:], False)  # the next token carries the entity on
        biluo = numpy.select([begins & goes_on, begins, inside & goes_on, inside], ["B", "U", "I", "L"], "")
        prefix_pos = {p: i for i, p in enumerate(self.prefixes)}
        label_pos = {label: i for i, label in enumerate(self.labels)}
        label_of = numpy.full(len(doc), -1)
        for h in numpy.unique(ent_type[iob % 2 == 1]):
            label_of[ent_type == h] = label_pos.get(doc.vocab.strings[int(h)], -1)
        offset = numpy.full(len(doc), -1)
        for p in "BILU":
            offset[biluo == p] = prefix_pos[self.from_biluo[p]]
        ids = numpy.where((label_of >= 0) & (offset >= 0), 1 + label_of * len(self.prefixes) + offset, -1)
        ids[iob == 2] = 0
        return ids

    def gold_mask(self, eg: Example) -> numpy.ndarray:
        """(n_tokens, n_tags) bool: the tags each *predicted* token may take.
        A token whose annotation is missing, does not align, or has a label
        the scheme does not know may take any tag; it is marginalised over,
        never read as O."""
        predicted, reference = eg.predicted, eg.reference
        if len(predicted) == len(reference) and numpy.array_equal(predicted.to_array(ORTH), reference.to_array(ORTH)):
            ids = self.encode_doc(reference)
        else:
            ids = self.encode_biluo(eg.get_aligned_ner())
        allowed = numpy.ones((len(ids), len(self.names)), dtype=bool)
        known = numpy.flatnonzero(ids >= 0)
        allowed[known] = False
        allowed[known, ids[known]] = True
        return allowed


class BIO(TagScheme):
    name = "BIO"
    prefixes = ("B", "I")
    role = {"B": Role(True, None), "I": Role(False, None)}
    from_biluo = {"B": "B", "I": "I", "L": "I", "U": "B"}


class BIOES(TagScheme):
    name = "BIOES"
    prefixes = ("B", "I", "E", "S")
    role = {"B": Role(True, False), "I": Role(False, False), "E": Role(False, True), "S": Role(True, True)}
    from_biluo = {"B": "B", "I": "I", "L": "E", "U": "S"}


SCHEMES: Dict[str, type] = {"BIO": BIO, "BIOES": BIOES}


# Lenient reading of tag strings (converters) --------------------------------


class TagRepair(NamedTuple):
    position: int
    tag: str  # the tag as read
    repaired: str
    reason: str


# What a tag prefix means when reading files: BIO, BIOES and BILOU all read.
_READ_AS = {"B": "B", "I": "I", "E": "E", "L": "E", "S": "S", "U": "S"}


def read_tags(tags: Sequence[str]) -> Tuple[List[Span], List[TagRepair]]:
    """Entities of a tag-string sequence from a file (BIO, BIOES or BILOU,
    even mixed), and the repairs made on the way, as conlleval reads it:

    - a lower-case prefix (`i-CHEM`) is read upper-case;
    - `O-<label>` is read as O;
    - a continuation (I/E/L) that does not continue an entity of its label
      starts a new one.

    An entity runs from its B (or S/U) to the last continuation of the same
    label; E/L and S/U close it. A tag that cannot be read at all raises
    `TagError`, which names its position.
    """
    spans: List[Span] = []
    repairs: List[TagRepair] = []
    start, label, open_prefix = -1, None, None
    for i, tag in enumerate(tags):
        prefix, tag_label = _split(tag, i)
        reasons = []
        if prefix.upper() == "O" and tag_label is not None:
            reasons.append("'O-' prefix; read as O")
            tag_label = None
        elif prefix is not None and prefix != prefix.upper():
            reasons.append("lower-case prefix")
        kind = _READ_AS.get(prefix.upper())
        continues = kind in ("I", "E") and label == tag_label and open_prefix in ("B", "I")
        if kind in ("I", "E") and not continues:
            reasons.append(f"{prefix.upper()}-{tag_label} does not continue a {tag_label} entity; starts a new one")
        if reasons:
            repaired = "O" if kind is None else f"{prefix.upper()}-{tag_label}"
            repairs.append(TagRepair(i, tag, repaired, "; ".join(reasons)))
        if not continues and label is not None:
            spans.append((start, i, label))
            start, label, open_prefix = -1, None, None
        if kind is not None and not continues:
            start, label = i, tag_label
        open_prefix = kind if label is not None else None
        if kind in ("E", "S") and label is not None:
            spans.append((start, i + 1, label))
            start, label, open_prefix = -1, None, None
    if label is not None:
        spans.append((start, len(tags), label))
    return spans, repairs


class TagError(ValueError):
    def __init__(self, position: int, message: str):
        super().__init__(message)
        self.position = position


_TAG = re.compile(r"^(?:O|([BIESLUObiesluo])-(\S+))$")


def _split(tag: str, position: int) -> Tuple[str, Optional[str]]:
    match = _TAG.match(tag)
    if match is None:
        raise TagError(position, f"unreadable tag {tag!r}; expected O, B-X, I-X, E-X or S-X")
    return (match.group(1), match.group(2)) if match.group(1) else ("O", None)
