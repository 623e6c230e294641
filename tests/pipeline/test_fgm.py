"""FGM adversarial training: exact restore, a real effect, a no-op at 0."""
import numpy
import pytest
import spacy
from thinc.api import fix_random_seed

from spacy_medner.ml.adversarial import embedding_tables, perturbed_embeddings

from .test_crf_ner import CHAR_EMBED, assert_overfits_and_round_trips, examples, ner_config, train


def char_nlp(epsilon, seed=0):
    fix_random_seed(seed)
    nlp = spacy.blank("zh")
    config = ner_config()
    config.update({"fgm_epsilon": epsilon})
    nlp.add_pipe("crf_ner", config=config)
    nlp.initialize(lambda: examples(nlp))
    return nlp


def inline_bert_nlp(tiny_bert, epsilon, seed=0):
    fix_random_seed(seed)
    nlp = spacy.blank("zh")
    inline = {
        "@architectures": "spacy-transformers.Tok2VecTransformer.v3",
        "name": tiny_bert,
        "tokenizer_config": {"use_fast": True},
        "grad_factor": 1.0,
        "pooling": {"@layers": "reduce_mean.v1"},
        "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 32, "stride": 24},
    }
    config = ner_config(tok2vec=inline)
    config.update({"fgm_epsilon": epsilon, "fgm_embeddings": "transformer"})
    nlp.add_pipe("crf_ner", config=config)
    nlp.initialize(lambda: examples(nlp))
    return nlp


def snapshot(model, target):
    thinc_tables, torch_tables = embedding_tables(model, target)
    return [node.get_param(name).copy() for node, name in thinc_tables] + [w.detach().clone().numpy() for w in torch_tables]


def gradients(model):
    out = [numpy.asarray(model.get_ref("output").get_grad("W")).copy()]
    crf = model.get_ref("decoder").module.crf
    out.append(crf.parametrizations.transitions.original.grad.clone().numpy())
    return out


def test_char_tables_are_restored_bit_for_bit():
    nlp = char_nlp(epsilon=1.0)
    model = nlp.get_pipe("crf_ner").model
    before = snapshot(model, "char")
    assert len(before) == 3  # char, left bigram, right bigram tables
    # The component's update with no optimizer only accumulates gradients, so
    # the tables must come back unchanged. (nlp.update would make an optimizer.)
    losses = nlp.get_pipe("crf_ner").update(examples(nlp), sgd=None)
    assert losses["crf_ner_adversarial"] > 0
    for a, b in zip(before, snapshot(model, "char")):
        assert numpy.array_equal(a, b)


def test_fgm_changes_the_update_and_is_a_no_op_at_zero():
    grads = {}
    for epsilon in (0.0, 1.0):
        nlp = char_nlp(epsilon)
        nlp.get_pipe("crf_ner").update(examples(nlp), sgd=None)
        grads[epsilon] = gradients(nlp.get_pipe("crf_ner").model)
    plain = char_nlp(0.0)
    plain.get_pipe("crf_ner").update(examples(plain), sgd=None)
    for a, b in zip(grads[0.0], gradients(plain.get_pipe("crf_ner").model)):
        assert numpy.array_equal(a, b)
    assert not numpy.allclose(grads[0.0][0], grads[1.0][0])


def test_zero_epsilon_perturbation_leaves_tables_equal():
    nlp = char_nlp(0.0)
    model = nlp.get_pipe("crf_ner").model
    nlp.get_pipe("crf_ner").update(examples(nlp), sgd=None)
    before = snapshot(model, "char")
    with perturbed_embeddings(model, "char", 0.0) as moved:
        assert moved == 3
        for a, b in zip(before, snapshot(model, "char")):
            assert numpy.array_equal(a, b)


def test_inline_transformer_word_embeddings(tiny_bert):
    nlp = inline_bert_nlp(tiny_bert, epsilon=1.0)
    model = nlp.get_pipe("crf_ner").model
    before = snapshot(model, "transformer")
    assert len(before) == 1 and before[0].shape[1] == 32
    nlp.get_pipe("crf_ner").update(examples(nlp), sgd=None)
    assert numpy.array_equal(before[0], snapshot(model, "transformer")[0])
    off = inline_bert_nlp(tiny_bert, epsilon=0.0)
    off.get_pipe("crf_ner").update(examples(off), sgd=None)
    assert not numpy.allclose(gradients(model)[0], gradients(off.get_pipe("crf_ner").model)[0])


def test_fgm_through_a_listener_is_refused():
    nlp = spacy.blank("zh")
    nlp.add_pipe("tok2vec", config={"model": CHAR_EMBED})
    config = ner_config(tok2vec={"@architectures": "spacy.Tok2VecListener.v1", "width": 64, "upstream": "*"})
    config["fgm_epsilon"] = 1.0
    nlp.add_pipe("crf_ner", config=config)
    with pytest.raises(ValueError, match="FGM .* its token encoder is a listener"):
        nlp.initialize(lambda: examples(nlp))


def test_overfitting_IO_with_fgm(tmp_path):
    nlp = spacy.blank("zh")
    config = ner_config()
    config["fgm_epsilon"] = 0.5
    nlp.add_pipe("crf_ner", config=config)
    assert_overfits_and_round_trips(train(nlp, 80), tmp_path)


def test_bad_fgm_options_are_named():
    for options, name in (({"fgm_epsilon": -1.0}, "fgm_epsilon"), ({"fgm_embeddings": "bert"}, "fgm_embeddings")):
        nlp = spacy.blank("zh")
        config = ner_config()
        config.update(options)
        with pytest.raises(ValueError, match=f"Option '{name}'"):
            nlp.add_pipe("crf_ner", config=config)
