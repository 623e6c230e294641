"""crf_ner in spaCy's test_overfitting_IO style, for every encoder set-up."""
import subprocess
import sys
import warnings

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
import torch
from thinc.api import Adam, fix_random_seed

from ..conftest import TRAIN_DATA

CHAR_EMBED = {"@architectures": "spacy_medner.CharEmbed.v1", "width": 32, "bigram_width": 16, "rows": 2000, "bigram_rows": 2000}


def encoder(tok2vec, **options):
    config = {"@architectures": "spacy_medner.SequenceEncoder.v1", "tok2vec": tok2vec, "rnn": "gru", "rnn_width": 64, "attention": None, "residual": False, "dropout": 0.0}
    config.update(options)
    return config


def ner_config(tok2vec=CHAR_EMBED, decoder="crf", scheme="BIOES", loss=None, **options):
    model = {"@architectures": "spacy_medner.EntityTagger.v1", "decoder": decoder, "encoder": encoder(tok2vec, **options)}
    model.update(loss or {})
    return {"scheme": scheme, "model": model}


def examples(nlp):
    return [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in TRAIN_DATA]


def gold_ents():
    return [[(text[s:e], label) for s, e, label in ents] for text, ents in TRAIN_DATA]


def entities(docs):
    return [[(e.text, e.label_) for e in doc.ents] for doc in docs]


def train(nlp: Language, n_iter: int = 60) -> Language:
    # Seeded so that a test's outcome does not depend on the tests run before it.
    fix_random_seed(0)
    egs = examples(nlp)
    optimizer = nlp.initialize(lambda: egs)
    for _ in range(n_iter):
        nlp.update(egs, sgd=optimizer, losses={})
    return nlp


def scored(docs, key="crf_ner"):
    """Each doc's scored span group as (text, label, score) triples."""
    return [[(s.text, s.label_, p) for s, p in zip(doc.spans[key], doc.spans[key].attrs["scores"])] for doc in docs]


def assert_same_scores(a, b):
    """Same spans; the same probabilities up to float noise (batch shapes
    change the order of float operations)."""
    a, b = list(a), list(b)
    assert [[x[:2] for x in doc] for doc in a] == [[x[:2] for x in doc] for doc in b]
    numpy.testing.assert_allclose([x[2] for doc in a for x in doc], [x[2] for doc in b for x in doc], atol=1e-4)


def assert_scores_follow_the_entities(docs):
    for doc in docs:
        group = doc.spans["crf_ner"]
        assert [(s.start, s.end, s.label_) for s in group] == [(e.start, e.end, e.label_) for e in doc.ents]
        assert len(group.attrs["scores"]) == len(group)
        assert all(0.0 < p <= 1.0 for p in group.attrs["scores"])


def assert_overfits_and_round_trips(nlp: Language, tmp_path):
    texts = [text for text, _ in TRAIN_DATA]
    docs = [nlp(t) for t in texts]
    predicted = entities(docs)
    assert predicted == gold_ents()
    assert_scores_follow_the_entities(docs)
    # Overfit entities are confident: the CRF puts most mass on the gold path.
    assert min(p for doc in docs for p in doc.spans["crf_ner"].attrs["scores"]) > 0.5
    nlp.to_disk(tmp_path / "nlp")
    reloaded = spacy.load(tmp_path / "nlp")
    reloaded_docs = [reloaded(t) for t in texts]
    assert entities(reloaded_docs) == predicted
    assert_same_scores(scored(reloaded_docs), scored(docs))
    assert_same_scores(scored(reloaded.pipe(texts, batch_size=3)), scored(docs))
    through_docbin = DocBin(docs=docs).to_bytes()
    assert scored(DocBin().from_bytes(through_docbin).get_docs(reloaded.vocab)) == scored(docs)
    # Same emissions, not only the same argmax.
    name = "crf_ner"
    before = nlp.get_pipe(name).model.predict([nlp.make_doc(t) for t in texts])
    after = reloaded.get_pipe(name).model.predict([reloaded.make_doc(t) for t in texts])
    for a, b in zip(before, after):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert entities(reloaded.pipe(texts, batch_size=3)) == predicted
    from_bytes = spacy.blank("zh").from_config(nlp.config).from_bytes(nlp.to_bytes())
    assert entities(from_bytes(t) for t in texts) == predicted


ENCODER_SWITCHES = {
    "plain": dict(rnn=None),
    "bilstm": dict(rnn="lstm"),
    "bigru": dict(rnn="gru"),
    "att": dict(rnn=None, attention="additive", residual=True),
    "mha": dict(rnn=None, attention="mha", attention_heads=4, residual=True),
    "bigru_mha": dict(rnn="gru", attention="mha", attention_heads=4, residual=True, layer_norm=True),
    "bigru_mha_windowed": dict(rnn="gru", attention="mha", attention_heads=2, attention_window=4),
    "bilstm_2_layers": dict(rnn="lstm", rnn_depth=2, residual=True),
}


@pytest.mark.parametrize("switches", ENCODER_SWITCHES.values(), ids=ENCODER_SWITCHES.keys())
def test_overfitting_IO_inline_tok2vec(switches, tmp_path):
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config=ner_config(**switches))
    assert_overfits_and_round_trips(train(nlp, 100), tmp_path)


FOCAL = {"focal_gamma": 2.0, "label_smoothing": 0.05, "label_weights": {"药物": 2.0, "O": 0.5}}


@pytest.mark.parametrize(
    "decoder,scheme,loss",
    [("softmax", "BIOES", None), ("crf", "BIO", None), ("softmax", "BIO", None), ("softmax", "BIOES", FOCAL)],
    ids=["softmax-BIOES", "crf-BIO", "softmax-BIO", "softmax-focal"],
)
def test_overfitting_IO_decoders_and_schemes(decoder, scheme, loss, tmp_path):
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config=ner_config(decoder=decoder, scheme=scheme, loss=loss))
    assert_overfits_and_round_trips(train(nlp, 80), tmp_path)


def test_overfitting_IO_default_model(tmp_path):
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner")
    assert_overfits_and_round_trips(train(nlp), tmp_path)


def test_parameter_averages_reach_the_torch_layers(tmp_path):
    """spaCy evaluates and saves inside nlp.use_params(optimizer.averages); the
    BiGRU, attention and CRF weights are torch, and must be swapped too."""
    fix_random_seed(0)
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config=ner_config(attention="mha", attention_heads=2, attention_window=8))
    egs = examples(nlp)
    optimizer = nlp.initialize(lambda: egs, sgd=Adam(0.01, use_averages=True))
    for _ in range(5):
        nlp.update(egs, sgd=optimizer, losses={})
    shims = [shim for node in nlp.get_pipe("crf_ner").model.walk() for shim in node.shims]
    assert len(shims) == 2  # the encoder (BiGRU + attention) and the CRF
    trained = {(shim.id, n): t.detach().clone() for shim in shims for n, t in shim._model.named_parameters()}
    assert all(key in optimizer.averages for key in trained)
    assert any(not numpy.allclose(optimizer.averages[key], t.numpy()) for key, t in trained.items())
    texts = [text for text, _ in TRAIN_DATA]
    with nlp.use_params(optimizer.averages):
        for shim in shims:
            for name, tensor in shim._model.named_parameters():
                numpy.testing.assert_array_equal(tensor.detach().numpy(), optimizer.averages[(shim.id, name)])
        averaged_emissions = nlp.get_pipe("crf_ner").model.predict([nlp.make_doc(t) for t in texts])
        nlp.to_disk(tmp_path / "averaged")
    for shim in shims:
        for name, tensor in shim._model.named_parameters():
            assert torch.equal(tensor, trained[(shim.id, name)]), name
    reloaded = spacy.load(tmp_path / "averaged")
    reloaded_emissions = reloaded.get_pipe("crf_ner").model.predict([reloaded.make_doc(t) for t in texts])
    for a, b in zip(averaged_emissions, reloaded_emissions):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_overfitting_IO_word_features(tmp_path):
    words = {**CHAR_EMBED, "@architectures": "spacy_medner.CharEmbed.v2", "word_width": 8, "word_rows": 2000}
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config=ner_config(tok2vec=words))
    assert_overfits_and_round_trips(train(nlp), tmp_path)


def test_overfitting_IO_tok2vec_listener(tmp_path):
    nlp = spacy.blank("zh")
    nlp.add_pipe("tok2vec", config={"model": CHAR_EMBED})
    listener = {"@architectures": "spacy.Tok2VecListener.v1", "width": 64, "upstream": "*"}
    nlp.add_pipe("crf_ner", config=ner_config(tok2vec=listener))
    assert_overfits_and_round_trips(train(nlp), tmp_path)


def transformer_nlp(tiny_bert, window=32, stride=24, transformer=None, **encoder_options):
    """A transformer component (TransformerModel.v3 unless `transformer` overrides
    its model config) and crf_ner listening to it."""
    nlp = spacy.blank("zh")
    model = {
        "@architectures": "spacy-transformers.TransformerModel.v3",
        "name": tiny_bert,
        "tokenizer_config": {"use_fast": True},
        "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": window, "stride": stride},
    }
    model.update(transformer or {})
    nlp.add_pipe("transformer", config={"model": model})
    listener = {
        "@architectures": "spacy-transformers.TransformerListener.v1",
        "grad_factor": 1.0,
        "pooling": {"@layers": "reduce_mean.v1"},
        "upstream": "*",
    }
    nlp.add_pipe("crf_ner", config=ner_config(tok2vec=listener, **encoder_options))
    return nlp


def test_overfitting_IO_transformer_listener(tiny_bert, tmp_path):
    nlp = train(transformer_nlp(tiny_bert, rnn="gru", attention="mha", attention_heads=4), 150)
    assert nlp.get_pipe("crf_ner").model.get_ref("encoder").get_ref("sequence_encoder").get_dim("nI") == 32
    assert_overfits_and_round_trips(nlp, tmp_path)


def char_nlp(tiny_bert):
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config=ner_config())
    return nlp


@pytest.mark.parametrize(
    "build,use_averages,frozen,warns",
    [
        (transformer_nlp, True, [], True),
        (transformer_nlp, False, [], False),
        (transformer_nlp, True, ["transformer"], False),  # frozen weights never change: raw is the average
        (char_nlp, True, [], False),  # crf_ner's own torch layers take the averages
    ],
    ids=["transformer_averaged", "transformer_raw", "transformer_frozen", "char_averaged"],
)
def test_averaging_warns_when_it_cannot_reach_transformer_weights(tiny_bert, build, use_averages, frozen, warns):
    nlp = build(tiny_bert)
    nlp.config["training"]["optimizer"]["use_averages"] = use_averages
    nlp.config["training"]["frozen_components"] = frozen
    egs = examples(nlp)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nlp.initialize(lambda: egs)
    messages = [str(w.message) for w in caught if "use_averages" in str(w.message)]
    assert len(messages) == int(warns), messages
    if warns:
        assert "'transformer' (HFShim)" in messages[0]


def test_transformer_doc_longer_than_window(tiny_bert):
    nlp = train(transformer_nlp(tiny_bert, window=16, stride=12), 150)
    text = "".join(t for t, _ in TRAIN_DATA) * 4  # 192 characters, 12 windows
    doc = nlp(text)
    assert len(doc) == len(text)
    # Strided spans: every token is covered by wordpieces, far past one window.
    assert (doc._.trf_data.align.lengths > 0).all()
    assert len(doc._.trf_data.tensors[0]) >= len(text) // 16
    # Every repetition, including those far past the first window, finds gold
    # entities; silent truncation would leave the later ones empty. (The model
    # saw only short sentences, so not every gold entity is found in this long
    # context, and the BiGRU's context differs between repetitions: equal
    # recall per repetition is what matters, not identical output.)
    period = len(text) // 4
    gold, offset = set(), 0
    for sentence, ents in TRAIN_DATA:
        gold |= {(offset + s, sentence[s:e], label) for s, e, label in ents}
        offset += len(sentence)
    found = [
        {(e.start_char % period, e.text, e.label_) for e in doc.ents if e.start_char // period == k} & gold
        for k in range(4)
    ]
    assert all(len(f) >= len(gold) // 2 for f in found), found


@pytest.fixture(scope="module")
def trained():
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config=ner_config())
    return train(nlp)


@pytest.mark.parametrize("text", ["", " ", "   ", "\n\n", "甲", "。"])
def test_edge_case_docs(trained, text):
    doc = trained(text)
    assert len(doc.ents) == 0 or all(e.text.strip() for e in doc.ents)
    assert [d.text for d in trained.pipe([text, "口服阿司匹林", text])] == [text, "口服阿司匹林", text]


def test_very_long_doc(trained):
    text = "口服阿司匹林后复查血常规。" * 420  # 5,460 characters in one CRF sequence
    doc = trained(text)
    assert len(doc) == len(text)
    assert [e.text for e in doc.ents if e.label_ == "药物"].count("阿司匹林") == 420


def test_no_entity_starts_or_ends_with_whitespace(trained):
    # Whitespace tokens inside a likely entity: predictions must be trimmed.
    texts = ["口服 阿司匹林  后复查　血常规", "  口服阿司匹林", "腹部CT \n示肝脏"]
    for doc in trained.pipe(texts):
        for ent in doc.ents:
            assert ent.text == ent.text.strip(), ent.text
            assert not ent[0].is_space and not ent[-1].is_space


def test_pipe_equals_call_with_mixed_lengths(trained):
    texts = ["", "患者因直肠癌于我院行直肠癌根治术", "甲", "口服阿司匹林后复查血常规" * 30, "腹部CT示肝脏多发占位"]
    assert entities(trained.pipe(texts, batch_size=5)) == entities(trained(t) for t in texts)


def test_missing_annotation_is_not_read_as_outside(trained):
    ner = trained.get_pipe("crf_ner")
    text = "口服阿司匹林后复查血常规"
    missing = Example(trained.make_doc(text), Doc(trained.vocab, words=list(text)))  # ents never set
    outside = Example.from_dict(trained.make_doc(text), {"entities": []})
    docs = [missing.predicted, outside.predicted]
    emissions = ner.model.predict(docs)
    loss_missing, d_missing = ner.get_loss([missing], emissions[:1])
    loss_outside, _ = ner.get_loss([outside], emissions[1:])
    assert loss_missing == pytest.approx(0.0, abs=1e-4)
    assert numpy.abs(d_missing[0]).max() < 1e-4
    assert loss_outside > 1.0  # the trained model sees 阿司匹林 as a drug, so "all O" costs


def test_partially_annotated_doc_trains():
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config=ner_config())
    egs = examples(nlp)
    text = "口服阿司匹林后复查血常规"
    tags = ["-", "-", "B-药物", "I-药物", "I-药物", "L-药物", "-", "-", "-", "-", "-", "-"]
    egs.append(Example.from_dict(nlp.make_doc(text), {"entities": tags}))
    optimizer = nlp.initialize(lambda: egs)
    for _ in range(60):
        nlp.update(egs, sgd=optimizer)
    assert ("阿司匹林", "药物") in entities([nlp(text)])[0]


def test_add_label_before_initialize():
    nlp = spacy.blank("zh")
    ner = nlp.add_pipe("crf_ner", config=ner_config())
    assert ner.add_label("罕见标签") == 1 and ner.add_label("罕见标签") == 0
    nlp.initialize(lambda: examples(nlp))
    # Labels given before initialize are kept even if no example has them.
    assert "罕见标签" in ner.labels and "药物" in ner.labels
    assert ner.model.get_ref("decoder").get_dim("nO") == 1 + 4 * 7


def test_labels_from_initialize_argument():
    nlp = spacy.blank("zh")
    ner = nlp.add_pipe("crf_ner", config=ner_config())
    ner.initialize(lambda: examples(nlp), nlp=nlp, labels=["药物", "手术", "其他"])
    assert ner.labels == ("其他", "手术", "药物")
    assert ner.model.get_ref("decoder").get_dim("nO") == 1 + 4 * 3
    with pytest.raises(ValueError, match="after it was initialized"):
        ner.add_label("新标签")


@pytest.mark.parametrize(
    "options,option_name",
    [
        (dict(rnn="gru", rnn_width=64, attention="mha", attention_heads=5), "attention_heads"),
        (dict(rnn=None, attention="mha", attention_heads=7), "attention_heads"),
        (dict(rnn="rnn"), "rnn"),
        (dict(rnn="gru", rnn_width=63), "rnn_width"),
        (dict(attention="local"), "attention"),
        (dict(dropout=1.5), "dropout"),
    ],
)
def test_bad_config_option_is_named(options, option_name):
    nlp = spacy.blank("zh")
    with pytest.raises(ValueError, match=f"option '{option_name}'"):
        nlp.add_pipe("crf_ner", config=ner_config(**options))
        nlp.initialize(lambda: examples(nlp))


def test_bad_scheme_is_named():
    nlp = spacy.blank("zh")
    with pytest.raises(ValueError, match="option 'scheme'"):
        nlp.add_pipe("crf_ner", config=ner_config(scheme="IOB2"))


def test_loads_through_entry_points_without_import(trained, tmp_path):
    trained.to_disk(tmp_path / "nlp")
    script = (
        "import sys, spacy\n"
        f"nlp = spacy.load({str(tmp_path / 'nlp')!r})\n"
        "print([(e.text, e.label_) for e in nlp('口服阿司匹林后复查血常规').ents])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "('阿司匹林', '药物')" in out.stdout


def test_scores_use_ner_scorer(trained):
    scores = trained.evaluate(examples(trained))
    assert scores["ents_f"] == 1.0
    assert set(scores["ents_per_type"]) == {"疾病和诊断", "手术", "药物", "实验室检验", "影像检查", "解剖部位"}


def trained_nlp(**settings):
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config={**ner_config(), **settings})
    return train(nlp, 60)


def test_threshold_moves_low_scored_entities_out_of_ents_only(tmp_path):
    nlp = trained_nlp()
    texts = ["患者因直肠癌于我院行直肠癌根治术后口服阿司匹林", "腹部CT示肝脏多发占位，术后予奥沙利铂化疗"]
    docs = list(nlp.pipe(texts))
    scores = sorted(p for doc in docs for p in doc.spans["crf_ner"].attrs["scores"])
    assert len(scores) >= 3
    cut = (scores[0] + scores[1]) / 2  # above the least confident entity only
    nlp.get_pipe("crf_ner").threshold = cut
    thresholded = list(nlp.pipe(texts))
    assert_same_scores(scored(thresholded), scored(docs))  # the span group keeps every Viterbi entity
    for before, after in zip(docs, thresholded):
        kept = [(s.start, s.end, s.label_) for s, p in zip(before.spans["crf_ner"], before.spans["crf_ner"].attrs["scores"]) if p >= cut]
        assert [(e.start, e.end, e.label_) for e in after.ents] == kept
    assert sum(len(d.ents) for d in thresholded) == sum(len(d.ents) for d in docs) - 1


def test_candidates_are_unchosen_spans_above_the_floor():
    nlp = trained_nlp(candidates_key="near_misses", candidate_floor=0.01)
    doc = nlp("口服阿司匹林后复查血常规，术后予奥沙利铂化疗")
    chosen = {(e.start, e.end, e.label_) for e in doc.ents}
    group = doc.spans["near_misses"]
    assert len(group) == len(group.attrs["scores"])
    assert all(p >= 0.01 for p in group.attrs["scores"])
    assert not chosen & {(s.start, s.end, s.label_) for s in group}
    # Exact: the same probability as scoring that span directly.
    pipe = nlp.get_pipe("crf_ner")
    emissions = pipe.model.predict([nlp.make_doc(doc.text)])
    spans = numpy.array([[s.start, s.end, pipe.labels.index(s.label_)] for s in group]).reshape(-1, 3)
    direct = pipe.decoder.entity_probabilities(emissions, [spans], pipe.tag_scheme)[0]
    numpy.testing.assert_allclose(direct, group.attrs["scores"], rtol=1e-5)


def test_spans_key_null_sets_no_scores():
    nlp = trained_nlp(spans_key=None)
    doc = nlp(TRAIN_DATA[0][0])
    assert "crf_ner" not in doc.spans and len(doc.ents) == 2


@pytest.mark.parametrize(
    "settings,option",
    [({"threshold": 1.5}, "threshold"), ({"candidate_floor": -0.1}, "candidate_floor"), ({"threshold": 0.5, "spans_key": None}, "threshold")],
)
def test_bad_score_options_name_the_option(settings, option):
    nlp = spacy.blank("zh")
    with pytest.raises(ValueError, match=f"Option '{option}'"):
        nlp.add_pipe("crf_ner", config=settings)


def test_label_colours_ship_with_the_pipeline(tmp_path):
    """A loaded pipeline registers its labels' colours, so displaCy needs no options."""
    from spacy import displacy
    from spacy.util import registry

    from spacy_medner.display import REGISTRY_NAME

    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config=ner_config())
    egs = [Example.from_dict(nlp.make_doc("患者有头痛症状"), {"entities": [(3, 5, "症状和体征X")]})] + examples(nlp)
    nlp.initialize(lambda: egs)
    colors = nlp.get_pipe("crf_ner").cfg["colors"]
    assert set(colors) == set(nlp.get_pipe("crf_ner").labels) and len(set(colors.values())) == len(colors)
    nlp.to_disk(tmp_path / "nlp")
    registry.displacy_colors.register(REGISTRY_NAME, func={})  # as in a fresh process
    reloaded = spacy.load(tmp_path / "nlp")
    doc = reloaded.make_doc("患者有头痛症状")
    doc.ents = [Span(doc, 3, 5, label="症状和体征X")]
    assert colors["症状和体征X"] in displacy.render(doc, style="ent")
