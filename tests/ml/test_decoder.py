"""The decoder as a thinc layer: its calls go through the shim, its loss
gradient is the true one, and it survives copying."""
import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from thinc.api import fix_random_seed

from spacy_medner.ml.decoder import TagDecoder
from spacy_medner.tags import BIOES

from ..conftest import TRAIN_DATA


def decoder_for(labels=("A", "B"), kind="crf"):
    fix_random_seed(0)
    scheme = BIOES(labels)
    decoder = TagDecoder(kind)
    decoder.set_scheme(scheme)
    decoder.initialize()
    with torch.no_grad():
        if kind == "crf":
            for p in decoder.module.crf.parameters():
                p.normal_(0, 1.0)
    return decoder, scheme


def random_emissions(decoder, lengths, seed=0):
    rng = numpy.random.default_rng(seed)
    return [decoder.ops.asarray2f(rng.normal(size=(n, decoder.get_dim("nO"))).astype("float32")) for n in lengths]


@pytest.mark.parametrize("kind", ["crf", "softmax"])
def test_predict_is_the_constrained_viterbi_path(kind):
    decoder, scheme = decoder_for(kind=kind)
    emissions = random_emissions(decoder, [7, 0, 1, 12])
    decoded = decoder.predict(emissions)
    assert [len(d) for d in decoded] == [7, 0, 1, 12]
    assert all(scheme.is_valid(ids) for ids in decoded)
    X, mask, rows = decoder._pad(emissions)
    with torch.no_grad():
        direct = decoder.module.decode(X, mask)
    for row, i in enumerate(rows):
        assert direct[row, : len(emissions[i])].tolist() == decoded[i].tolist()


def test_loss_gradient_matches_finite_differences():
    decoder, scheme = decoder_for(labels=("A",))
    emissions = random_emissions(decoder, [3, 2], seed=1)
    gold = [numpy.ones((3, len(scheme.names)), dtype=bool), numpy.zeros((2, len(scheme.names)), dtype=bool)]
    gold[0][1] = False
    gold[0][1, scheme.index["S-A"]] = True  # partial: one annotated token
    gold[1][:, 0] = True  # all O
    loss, d_emissions = decoder.loss(emissions, gold)
    eps = 1e-2
    for doc, (t, k) in ((0, (1, 2)), (1, (0, 0)), (0, (2, 1))):
        bumped = [e.copy() for e in emissions]
        bumped[doc][t, k] += eps
        up, _ = decoder.loss(bumped, gold)
        bumped[doc][t, k] -= 2 * eps
        down, _ = decoder.loss(bumped, gold)
        assert d_emissions[doc][t, k] == pytest.approx((up - down) / (2 * eps), abs=2e-3)
    assert loss > 0


def test_copy_keeps_the_layer_and_its_predictions():
    decoder, _ = decoder_for()
    copied = decoder.copy()
    assert isinstance(copied, TagDecoder) and copied.id != decoder.id
    emissions = random_emissions(decoder, [9, 4])
    assert [d.tolist() for d in copied.decode(emissions)] == [d.tolist() for d in decoder.decode(emissions)]
    assert copied.module is not decoder.module


def test_nan_loss_stops_training_with_a_clear_error():
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config={"model": {"encoder": {"attention": None, "rnn_width": 16}}})
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN_DATA]
    nlp.initialize(lambda: examples)
    output = nlp.get_pipe("crf_ner").model.get_ref("output")
    output.set_param("W", output.get_param("W") * numpy.nan)
    with pytest.raises(ValueError, match="loss of component 'crf_ner' is nan"):
        nlp.update(examples)
