"""Saved pipelines predict exactly what they predicted when they were trained.

`tests/fixtures/pinned/` holds two small pipelines (CRF + BIOES with BiGRU and
windowed MHA; softmax + BIO with BiLSTM and additive attention) trained and
saved before the TagScheme/decoder-layer redesign, with the entities that code
predicted (`tests/fixtures/make_pinned_models.py`). Any change to the tag
scheme, the decoder or the tagger that moves one entity fails here.
"""
from pathlib import Path

import pytest
import spacy
import srsly

PINNED = Path(__file__).resolve().parents[1] / "fixtures" / "pinned"
EXPECTED = srsly.read_json(PINNED / "expected.json")


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def torch_threads(request):
    """Prediction takes other paths with two torch threads (the BiGRU's
    directions run concurrently); both must predict the pinned entities."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(EXPECTED["pipelines"]))
def test_saved_pipeline_predicts_the_pinned_entities(name, torch_threads):
    nlp = spacy.load(PINNED / name)
    expected = EXPECTED["pipelines"][name]["entities"]
    texts = EXPECTED["texts"]
    assert sum(map(len, expected)) > 20  # a reference that pins something
    predicted = [[[e.start, e.end, e.label_] for e in doc.ents] for doc in nlp.pipe(texts, batch_size=7)]
    assert predicted == expected
    assert [[[e.start, e.end, e.label_] for e in nlp(t).ents] for t in texts] == expected
