from hypothesis import given, strategies as st

from spacy_medner.corpora.segment import segment


@st.composite
def text_and_spans(draw):
    text = draw(st.text(alphabet="甲乙丙丁。，；\n ", min_size=0, max_size=200))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=10)))
    spans = [(s, e) for s, e in zip(cuts[::2], cuts[1::2]) if s < e]
    return text, spans


@given(data=text_and_spans(), max_length=st.integers(1, 60))
def test_segments_cover_text_and_never_cut_an_entity(data, max_length):
    text, spans = data
    pieces = segment(text, spans, max_length)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    for start, end in spans:
        assert any(s <= start and end <= e for s, e in pieces)
    for s, e in pieces:
        # Over-long only when an entity forces it.
        assert e - s <= max_length or any(a < e and s < b and b - a > 0 for a, b in spans)


def test_prefers_sentence_ends():
    text = "甲乙丙，丁甲。乙丙丁甲乙丙。"
    assert segment(text, [], 8) == [(0, 7), (7, 14)]
