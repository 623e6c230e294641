import numpy
import pytest
from hypothesis import given, strategies as st

from spacy_medner import tags


@st.composite
def spans_and_length(draw):
    length = draw(st.integers(0, 30))
    cuts = sorted(draw(st.sets(st.integers(0, length), max_size=12)))
    spans = []
    for start, end in zip(cuts[::2], cuts[1::2]):
        if start < end and draw(st.booleans()):
            spans.append((start, end, draw(st.sampled_from(["药物", "手术", "X"]))))
    return spans, length


@pytest.mark.parametrize("scheme", tags.SCHEMES)
@given(data=spans_and_length())
def test_encode_decode_round_trip(scheme, data):
    spans, length = data
    encoded = tags.spans_to_tags(spans, length, scheme)
    assert tags.tags_to_spans(encoded, scheme) == sorted(spans)
    names = tags.tag_names({"药物", "手术", "X"}, scheme)
    ids = [names.index(t) for t in encoded]
    assert tags.is_valid(ids, tags.allowed_transitions(names, scheme))


def test_adjacent_same_label_spans_stay_apart():
    spans = [(0, 2, "A"), (2, 4, "A")]
    for scheme in tags.SCHEMES:
        assert tags.tags_to_spans(tags.spans_to_tags(spans, 4, scheme), scheme) == spans


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
def test_allowed_transitions(scheme, sequence, valid):
    names = tags.tag_names(["A", "B"], scheme)
    ids = [names.index(t) for t in sequence]
    assert tags.is_valid(ids, tags.allowed_transitions(names, scheme)) is valid


def test_overlapping_spans_are_rejected():
    with pytest.raises(ValueError, match="overlaps"):
        tags.spans_to_tags([(0, 3, "A"), (2, 4, "B")], 5, "BIO")


def test_unknown_scheme_names_the_option():
    with pytest.raises(ValueError, match="option 'scheme'"):
        tags.tag_names(["A"], "BILOU")


def test_from_biluo_keeps_missing_missing():
    assert tags.from_biluo(None, "BIO") is None
    assert tags.from_biluo("-", "BIOES") is None
    assert tags.from_biluo("U-A", "BIO") == "B-A"
    assert tags.from_biluo("L-A", "BIOES") == "E-A"
    assert tags.from_biluo("O", "BIOES") == "O"


def test_tag_inventory_does_not_depend_on_label_order():
    assert tags.tag_names(["B", "A"], "BIO") == tags.tag_names(["A", "B"], "BIO")
    assert tags.tag_names(["A"], "BIOES")[0] == "O"
    assert len(tags.tag_names(["A", "B"], "BIOES")) == 9
    assert numpy.asarray(tags.allowed_transitions(tags.tag_names(["A"], "BIO"), "BIO")[1]).shape == (3, 3)
