from collections import Counter

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.util import registry

from ..conftest import TRAIN_DATA


@pytest.fixture
def corpus_path(tmp_path):
    nlp = spacy.blank("zh")
    docbin = DocBin()
    # 药物 appears in 1 of 8 docs' entities below the threshold; the rest are common.
    data = TRAIN_DATA[:1] * 6 + TRAIN_DATA[3:4]
    for text, ents in data:
        doc = nlp.make_doc(text)
        doc.set_ents([doc.char_span(s, e, label=l) for s, e, l in ents], default="outside")
        docbin.add(doc)
    docbin.to_disk(tmp_path / "train.spacy")
    return tmp_path / "train.spacy"


def test_rare_label_examples_are_repeated(corpus_path):
    reader = registry.readers.get("spacy_medner.OversampledCorpus.v1")(corpus_path, rare_below=0.1, factor=4)
    nlp = spacy.blank("zh")
    assert reader.rare_labels(nlp) == {"药物"}
    seen = Counter(eg.reference.text for eg in reader(nlp))
    assert seen == {TRAIN_DATA[0][0]: 6, TRAIN_DATA[3][0]: 4}


def test_factor_one_is_the_plain_corpus(corpus_path):
    reader = registry.readers.get("spacy_medner.OversampledCorpus.v1")(corpus_path, rare_below=0.5, factor=1)
    assert sum(1 for _ in reader(spacy.blank("zh"))) == 7


def test_bad_factor_is_named(corpus_path):
    with pytest.raises(ValueError, match="Option 'factor'"):
        registry.readers.get("spacy_medner.OversampledCorpus.v1")(corpus_path, factor=0)
