"""The tag schemes: one property test per scheme, and the decoding,
encoding and lenient reading that the component and the converters share."""
import itertools

import numpy
import pytest
import spacy
from hypothesis import given, strategies as st
from spacy.tokens import Span

from spacy_medner.tags import BIO, BIOES, SCHEMES, TagError, TagScheme, read_tags

LABELS = ("药物", "手术", "X")


@st.composite
def spans_and_length(draw):
    length = draw(st.integers(0, 30))
    cuts = sorted(draw(st.sets(st.integers(0, length), max_size=12)))
    spans = []
    for start, end in zip(cuts[::2], cuts[1::2]):
        if start < end and draw(st.booleans()):
            spans.append((start, end, draw(st.sampled_from(LABELS))))
    return spans, length


@pytest.mark.parametrize("name", SCHEMES)
@given(data=spans_and_length())
def test_scheme_round_trips_spans_through_legal_tags(name, data):
    """The property every scheme must have: spans → tags → ids is legal, and
    decodes (ids and strings alike) to the same spans."""
    spans, length = data
    scheme = TagScheme.from_name(name, LABELS)
    encoded = scheme.encode_spans(spans, length)
    ids = numpy.array([scheme.index[t] for t in encoded], dtype=int)
    assert scheme.is_valid(ids)
    assert scheme.spans(ids) == sorted(spans)
    assert read_tags(encoded) == (sorted(spans), [])


@pytest.mark.parametrize("name", SCHEMES)
def test_every_legal_sequence_decodes_to_spans_that_encode_back(name):
    """Exhaustively over short sequences: the legal ones are exactly the
    encodings of some set of spans."""
    scheme = TagScheme.from_name(name, ("A", "B"))
    K = len(scheme.names)
    for n in range(1, 5):
        for ids in itertools.product(range(K), repeat=n):
            ids = numpy.array(ids)
            spans = scheme.spans(ids)
            legal = [scheme.index[t] for t in scheme.encode_spans(spans, n)] == ids.tolist()
            assert scheme.is_valid(ids) == legal, [scheme.names[i] for i in ids]


@pytest.mark.parametrize(
    "ids_of, expected",
    [
        (["B-A", "I-A", "B-A", "I-A"], {"BIO": [(0, 2, "A"), (2, 4, "A")]}),
        (["B-A", "E-A", "S-A", "B-A", "E-A"], {"BIOES": [(0, 2, "A"), (2, 3, "A"), (3, 5, "A")]}),
        (["O", "O", "B-A"], {"BIO": [(2, 3, "A")]}),
        (["O", "B-B", "E-B"], {"BIOES": [(1, 3, "B")]}),
        (["O", "O", "S-A"], {"BIOES": [(2, 3, "A")]}),
        (["O", "O", "O"], {"BIO": [], "BIOES": []}),
        ([], {"BIO": [], "BIOES": []}),
    ],
)
def test_decode_adjacent_entities_last_token_and_all_outside(ids_of, expected):
    for name, spans in expected.items():
        scheme = TagScheme.from_name(name, ("A", "B"))
        ids = numpy.array([scheme.index[t] for t in ids_of], dtype=int)
        assert scheme.spans(ids) == spans
        assert scheme.decode(ids).shape == (len(spans), 3)


@pytest.mark.parametrize(
    "scheme,sequence,valid",
    [
        ("BIO", ["O", "I-A"], False),
        ("BIO", ["B-A", "I-B"], False),
        ("BIO", ["I-A"], False),
        ("BIO", ["B-A", "I-A", "B-A"], True),
        ("BIOES", ["B-A", "O"], False),
        ("BIOES", ["B-A", "E-A"], True),
        ("BIOES", ["S-A", "E-A"], False),
        ("BIOES", ["B-A", "I-A"], False),  # may not end inside an entity
        ("BIOES", ["B-A", "B-A", "E-A"], False),
    ],
)
def test_allowed_moves(scheme, sequence, valid):
    tag_scheme = TagScheme.from_name(scheme, ["A", "B"])
    assert tag_scheme.is_valid([tag_scheme.index[t] for t in sequence]) is valid


def test_overlapping_spans_are_rejected():
    with pytest.raises(ValueError, match="overlaps"):
        BIO(["A", "B"]).encode_spans([(0, 3, "A"), (2, 4, "B")], 5)


def test_unknown_scheme_names_the_option():
    with pytest.raises(ValueError, match="option 'scheme'"):
        TagScheme.from_name("BILOU", ["A"])


def test_biluo_maps_onto_the_scheme_and_missing_stays_missing():
    bio, bioes = BIO(["A"]), BIOES(["A"])
    assert bio.encode_biluo([None, "-", "U-A", "O", "L-A", "U-Z"]).tolist() == [-1, -1, bio.index["B-A"], 0, bio.index["I-A"], -1]
    assert bioes.encode_biluo(["L-A", "U-A"]).tolist() == [bioes.index["E-A"], bioes.index["S-A"]]


@pytest.mark.parametrize("name", SCHEMES)
def test_doc_encoding_matches_span_encoding(name):
    nlp = spacy.blank("zh")
    doc = nlp.make_doc("患者因直肠癌于我院行直肠癌根治术")
    spans = [(3, 6, "A"), (6, 7, "B"), (10, 16, "A")]
    doc.set_ents([Span(doc, s, e, label=l) for s, e, l in spans], default="outside")
    scheme = TagScheme.from_name(name, ["A", "B"])
    expected = [scheme.index[t] for t in scheme.encode_spans(spans, len(doc))]
    assert scheme.encode_doc(doc).tolist() == expected
    # A label the scheme does not know is missing, not O.
    assert TagScheme.from_name(name, ["A"]).encode_doc(doc)[6] == -1


def test_tag_inventory_does_not_depend_on_label_order():
    assert BIO(["B", "A"]).names == BIO(["A", "B"]).names == ["O", "B-A", "I-A", "B-B", "I-B"]
    assert len(BIOES(["A", "B"]).names) == 9
    assert BIO(["A"]).allowed_moves()[1].shape == (3, 3)


@pytest.mark.parametrize(
    "tags,spans,reasons",
    [
        (["B-A", "I-A", "O"], [(0, 2, "A")], []),
        (["i-A", "I-A"], [(0, 2, "A")], ["lower-case prefix; I-A does not continue a A entity; starts a new one"]),
        (["O-A", "B-A"], [(1, 2, "A")], ["'O-' prefix; read as O"]),
        (["B-A", "I-B"], [(0, 1, "A"), (1, 2, "B")], ["I-B does not continue a B entity; starts a new one"]),
        (["B-A", "E-A", "E-A"], [(0, 2, "A"), (2, 3, "A")], ["E-A does not continue a A entity; starts a new one"]),
        (["B-A", "L-A", "U-B"], [(0, 2, "A"), (2, 3, "B")], []),  # BILOU reads too
    ],
)
def test_read_tags_repairs_like_conlleval(tags, spans, reasons):
    got_spans, repairs = read_tags(tags)
    assert got_spans == spans
    assert [r.reason for r in repairs] == reasons


def test_read_tags_names_the_unreadable_position():
    with pytest.raises(TagError) as err:
        read_tags(["O", "B-A", "BX"])
    assert err.value.position == 2 and "unreadable tag 'BX'" in str(err.value)
