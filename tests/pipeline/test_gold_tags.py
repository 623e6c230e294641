"""The vectorised gold-tag path must agree with spaCy's get_aligned_ner."""
import numpy
import spacy
from hypothesis import given, settings, strategies as st
from spacy.tokens import Span
from spacy.training import Example

from spacy_medner.tags import SCHEMES, TagScheme

NLP = spacy.blank("zh")
TEXT = "患者因直肠癌于我院行直肠癌根治术后口服阿司匹林"


@st.composite
def annotations(draw):
    cuts = sorted(draw(st.sets(st.integers(0, len(TEXT)), max_size=10)))
    spans = [(s, e, draw(st.sampled_from(["药物", "手术", "未知"]))) for s, e in zip(cuts[::2], cuts[1::2]) if s < e]
    missing = draw(st.sets(st.integers(0, len(TEXT) - 1), max_size=5))
    return spans, missing


@settings(max_examples=60, deadline=None)
@given(data=annotations(), name=st.sampled_from(sorted(SCHEMES)))
def test_fast_gold_path_matches_get_aligned_ner(data, name):
    spans, missing = data
    reference = NLP.make_doc(TEXT)
    ents = [Span(reference, s, e, label=l) for s, e, l in spans]
    outside = [i for i in range(len(reference)) if i not in missing and not any(s <= i < e for s, e, _ in spans)]
    reference.set_ents(ents, outside=[reference[i : i + 1] for i in outside], default="unmodified")
    scheme = TagScheme.from_name(name, ["药物", "手术"])  # "未知" is a label the component does not know
    eg = Example(NLP.make_doc(TEXT), reference)
    fast = scheme.gold_mask(eg)
    # The general path, token by token from spaCy's aligned BILUO tags.
    slow = numpy.ones_like(fast)
    for i, biluo in enumerate(eg.get_aligned_ner()):
        if biluo in (None, "-", ""):
            continue
        tag = "O" if biluo == "O" else f"{scheme.from_biluo[biluo[0]]}-{biluo[2:]}"
        if tag in scheme.index:
            slow[i] = False
            slow[i, scheme.index[tag]] = True
    assert numpy.array_equal(fast, slow)
