"""span_ner in spaCy's test_overfitting_IO style on a nested toy corpus, and
the span decoder's banded scores against a naive all-pairs reference."""
import re
import subprocess
import sys
import warnings

import catalogue
import numpy
import pytest
import spacy
import torch
from spacy import displacy
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import load_config
from thinc.api import fix_random_seed
from torch.utils._python_dispatch import TorchDispatchMode

from spacy_medner.display import REGISTRY_NAME, label_colors
from spacy_medner.ml.span_pointer import SpanPointerModule, band_mask, find_spans, span_loss, span_module, span_probabilities
from spacy_medner.pipeline.span_ner import DEFAULT_MODEL, non_overlapping, overlaps

from ..conftest import ROOT, shared_corpus

# Body parts inside symptoms and diseases, as in CMeEE: (start, end, label) in characters.
NESTED_DATA = [
    ("患者左下腹疼痛三天", [(2, 5, "bod"), (2, 7, "sym")]),
    ("右上肢麻木伴头痛", [(0, 3, "bod"), (0, 5, "sym"), (6, 8, "sym")]),
    ("口服阿司匹林后胃部不适", [(2, 6, "dru"), (7, 9, "bod"), (7, 11, "sym")]),
    ("诊断为肺部感染", [(3, 5, "bod"), (3, 7, "dis")]),
]
CHAR_EMBED = {"@architectures": "spacy_medner.CharEmbed.v1", "width": 32, "bigram_width": 16, "rows": 2000, "bigram_rows": 2000}


def encoder(tok2vec=CHAR_EMBED, **options):
    config = {"@architectures": "spacy_medner.SequenceEncoder.v1", "tok2vec": tok2vec, "rnn": "gru", "rnn_width": 64, "attention": None, "residual": False, "dropout": 0.0}
    config.update(options)
    return config


def span_config(tok2vec=CHAR_EMBED, kind="global_pointer", max_length=8, width=16, **settings):
    model = {"@architectures": "spacy_medner.SpanPointer.v1", "kind": kind, "max_length": max_length, "width": width, "encoder": encoder(tok2vec)}
    return {"model": model, **settings}


def reference(nlp, text, spans, key="sc"):
    """A converter-style gold doc: every mention in doc.spans[key], the outer
    non-overlapping ones in doc.ents."""
    doc = nlp.make_doc(text)
    group = [doc.char_span(s, e, label=label) for s, e, label in spans]
    doc.spans[key] = group
    outer = [s for s in group if not any(o is not s and o.start <= s.start and s.end <= o.end for o in group)]
    doc.set_ents(outer, default="outside")
    return doc


def examples(nlp, data=NESTED_DATA):
    return [Example(nlp.make_doc(text), reference(nlp, text, spans)) for text, spans in data]


def gold_spans(data=NESTED_DATA):
    return [sorted((text[s:e], label) for s, e, label in spans) for text, spans in data]


def predicted_spans(docs, key="sc"):
    return [sorted((s.text, s.label_) for s in doc.spans[key]) for doc in docs]


def scored(docs, key="sc"):
    return [[(s.start, s.end, s.label_, p) for s, p in zip(doc.spans[key], doc.spans[key].attrs["scores"])] for doc in docs]


def assert_same_scores(a, b):
    a, b = list(a), list(b)
    assert [[x[:3] for x in doc] for doc in a] == [[x[:3] for x in doc] for doc in b]
    numpy.testing.assert_allclose([x[3] for doc in a for x in doc], [x[3] for doc in b for x in doc], atol=1e-4)


def train(nlp, n_iter=60, data=NESTED_DATA):
    fix_random_seed(0)
    egs = examples(nlp, data)
    optimizer = nlp.initialize(lambda: egs)
    for _ in range(n_iter):
        nlp.update(egs, sgd=optimizer, losses={})
    return nlp


def assert_overfits_and_round_trips(nlp, tmp_path, name="span_ner"):
    texts = [text for text, _ in NESTED_DATA]
    docs = [nlp(t) for t in texts]
    # Every mention, the inner ones included.
    assert predicted_spans(docs) == gold_spans()
    for doc in docs:
        group = doc.spans["sc"]
        assert [(s.start, s.end) for s in group] == sorted((s.start, s.end) for s in group)
        assert len(group.attrs["scores"]) == len(group) and all(0.5 <= p <= 1.0 for p in group.attrs["scores"])
        ents = [(e.start, e.end) for e in doc.ents]
        assert all(a[1] <= b[0] for a, b in zip(ents, ents[1:]))  # doc.ents never overlap
        assert {(e.start, e.end, e.label_) for e in doc.ents} <= {(s.start, s.end, s.label_) for s in group}
    scores = nlp.evaluate(examples(nlp))
    assert scores["spans_sc_f"] == 1.0 and set(scores["spans_sc_per_type"]) == {"bod", "sym", "dru", "dis"}
    assert "ents_f" in scores
    nlp.to_disk(tmp_path / "nlp")
    reloaded = spacy.load(tmp_path / "nlp")
    assert_same_scores(scored(reloaded(t) for t in texts), scored(docs))
    assert_same_scores(scored(reloaded.pipe(texts, batch_size=3)), scored(docs))
    assert_same_scores(scored(nlp.pipe(texts, batch_size=2)), scored(docs))
    from_bytes = spacy.blank("zh").from_config(nlp.config).from_bytes(nlp.to_bytes())
    assert_same_scores(scored(from_bytes(t) for t in texts), scored(docs))
    assert [[(e.text, e.label_) for e in reloaded(t).ents] for t in texts] == [[(e.text, e.label_) for e in d.ents] for d in docs]
    assert scored(DocBin(docs=docs).from_bytes(DocBin(docs=docs).to_bytes()).get_docs(reloaded.vocab)) == scored(docs)
    # The same probabilities everywhere in the band, not only the same spans.
    head, rhead = nlp.get_pipe(name).head, reloaded.get_pipe(name).head
    before = span_probabilities(head, nlp.get_pipe(name).model.predict([nlp.make_doc(t) for t in texts]))
    after = span_probabilities(rhead, reloaded.get_pipe(name).model.predict([reloaded.make_doc(t) for t in texts]))
    for a, b in zip(before, after):
        numpy.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("kind", ["global_pointer", "biaffine"])
def test_overfitting_IO_nested(kind, tmp_path):
    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner", config=span_config(kind=kind))
    # The biaffine head starts from a random bilinear form and needs more steps.
    assert_overfits_and_round_trips(train(nlp, 60 if kind == "global_pointer" else 100), tmp_path)


def test_overfitting_IO_tok2vec_listener(tmp_path):
    nlp = spacy.blank("zh")
    nlp.add_pipe("tok2vec", config={"model": CHAR_EMBED})
    listener = {"@architectures": "spacy.Tok2VecListener.v1", "width": 64, "upstream": "*"}
    nlp.add_pipe("span_ner", config=span_config(tok2vec=listener))
    assert_overfits_and_round_trips(train(nlp, 60), tmp_path)


def test_overfitting_IO_transformer_listener(tiny_bert, tmp_path):
    nlp = spacy.blank("zh")
    model = {
        "@architectures": "spacy-transformers.TransformerModel.v3",
        "name": tiny_bert,
        "tokenizer_config": {"use_fast": True},
        "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 32, "stride": 24},
    }
    nlp.add_pipe("transformer", config={"model": model})
    listener = {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0, "pooling": {"@layers": "reduce_mean.v1"}, "upstream": "*"}
    nlp.add_pipe("span_ner", config=span_config(tok2vec=listener))
    nlp = train(nlp, 100)
    assert span_module(nlp.get_pipe("span_ner").model).sizes == {"n_in": 64, "n_labels": 4}
    assert_overfits_and_round_trips(nlp, tmp_path)


def test_default_model_trains(tmp_path):
    """The factory default (the cpu_default encoder, max_length 16)."""
    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner")
    assert nlp.get_pipe("span_ner").max_length == 16
    nlp = train(nlp, 40)
    assert predicted_spans(nlp.pipe(text for text, _ in NESTED_DATA)) == gold_spans()


# The banded scorer ---------------------------------------------------------


def module(kind, max_length=5, n_in=8, n_labels=3, width=6):
    fix_random_seed(0)
    m = SpanPointerModule(kind, max_length, width)
    m.build(n_in=n_in, n_labels=n_labels)
    return m.eval()


@pytest.mark.parametrize("kind", ["global_pointer", "biaffine"])
def test_banded_scores_equal_all_pairs_reference(kind):
    m = module(kind)
    lengths = [11, 7, 3]
    X = torch.randn(3, 11, 8)
    mask = torch.arange(11)[None] < torch.tensor(lengths)[:, None]
    with torch.no_grad():
        banded = m(X, mask, mode="scores")
        starts, ends = m.starts_and_ends(X)
        # The naive O(T²) reference: every (start, end) pair of every label.
        full = torch.einsum("bslw,belw->bsel", starts, ends.expand_as(starts)) + m.bias
    assert banded.shape == (3, 11, 5, 3)
    valid = band_mask(mask, 5)
    checked = 0
    for b, n in enumerate(lengths):
        for s in range(n):
            for e in range(n):
                d = e - s
                if 0 <= d < 5:
                    assert valid[b, s, d]
                    torch.testing.assert_close(banded[b, s, d], full[b, s, e])
                    checked += 1
    assert checked == int(valid.sum()) == sum(sum(min(5, n - s) for s in range(n)) for n in lengths)


@pytest.mark.parametrize("kind", ["global_pointer", "biaffine"])
def test_decoding_in_pieces_finds_what_the_whole_band_holds(kind):
    """Prediction scores long docs a piece of starts at a time."""
    m = module(kind)
    X = torch.randn(2, 40, 8) * 3
    mask = torch.arange(40)[None] < torch.tensor([40, 23])[:, None]
    with torch.no_grad():
        probs = torch.sigmoid(m(X, mask, mode="scores")) * band_mask(mask, 5).unsqueeze(3)
        for threshold in (0.2, 0.5):
            expected = (probs >= threshold).nonzero().tolist()
            assert expected
            for chunk in (1, 7, 40, 512):
                found, p = m.decode(X, mask, threshold, chunk=chunk)
                order = sorted(range(len(found)), key=lambda i: found[i].tolist())
                assert [found[i].tolist() for i in order] == expected
                torch.testing.assert_close(p[order], probs[tuple(found[order].T)], atol=1e-5, rtol=1e-5)


def test_global_pointer_scores_depend_on_relative_position():
    """Rotary encoding: the same start/end vectors score the same at any offset."""
    m = module("global_pointer")
    x = torch.randn(1, 1, 8)
    X = torch.cat([torch.randn(1, 3, 8), x, torch.randn(1, 2, 8), x, torch.randn(1, 6, 8)], dim=1)
    Y = torch.cat([x, torch.randn(1, 2, 8), x, torch.randn(1, 9, 8)], dim=1)
    mask = torch.ones(1, 13, dtype=torch.bool)
    with torch.no_grad():
        a, b = m(X, mask, mode="scores"), m(Y, mask, mode="scores")
    # x starts at 3 then ends at 6 in X; at 0 and 3 in Y: offset 3 both times.
    torch.testing.assert_close(a[0, 3, 3], b[0, 0, 3])


class _Shapes(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


@pytest.mark.parametrize("kind", ["global_pointer", "biaffine"])
@pytest.mark.parametrize("mode", ["scores", "loss", "decode"])
def test_no_tensor_is_quadratic_in_length(kind, mode):
    """Structural linear cost: over a forward (and backward) pass on a long
    doc, no tensor has two axes of the doc's length."""
    T, M = 301, 5
    m = module(kind, max_length=M).train(mode == "loss")
    X = torch.randn(2, T, 8, requires_grad=mode == "loss")
    mask = torch.ones(2, T, dtype=torch.bool)
    target = torch.zeros(2, T, M, 3)
    keep = torch.ones(2, T, M, 3, dtype=torch.bool)
    with _Shapes() as seen:
        out = m(X, mask, mode=mode, target=target, keep=keep, threshold=0.5)
        if mode == "loss":
            out.backward()
    assert seen.shapes and max(sum(n == T for n in shape) for shape in seen.shapes) == 1
    assert (2, T, M, 3) in seen.shapes  # the band of scores
    assert max(numpy.prod(shape) for shape in seen.shapes) <= 2 * T * M * 3 * 7


def test_find_spans_is_the_thresholded_band():
    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner", config=span_config(max_length=5))
    nlp = train(nlp, 3)
    pipe = nlp.get_pipe("span_ner")
    docs = [nlp.make_doc(t) for t in ["患者左下腹疼痛三天", "", "痛", "右上肢麻木伴头痛"]]
    hidden = pipe.model.predict(docs)
    probs = span_probabilities(pipe.head, hidden)
    for threshold in (0.3, 0.5, 0.01):
        for (spans, scores), p in zip(find_spans(pipe.head, hidden, threshold), probs):
            expected = sorted((s, s + d + 1, l) for s, d, l in zip(*numpy.nonzero(p >= threshold)))
            assert [tuple(x) for x in spans.tolist()] == expected
            numpy.testing.assert_allclose(scores, [p[s, e - s - 1, l] for s, e, l in expected], atol=1e-6)
    # Band entries past the end of a doc are never candidates.
    assert probs[2].shape == (1, 5, 4) and (probs[2][0, 1:] == 0).all()


# Training data: missing annotation, long mentions, no span group -----------


def test_span_over_missing_tokens_is_out_of_the_loss():
    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner", config=span_config(max_length=8))
    pipe = nlp.get_pipe("span_ner")
    train(nlp, 1)
    text = "患者左下腹疼痛三天"
    ref = nlp.make_doc(text)
    ref.spans["sc"] = [ref.char_span(2, 5, label="bod"), ref.char_span(2, 7, label="sym")]
    # 左下腹疼痛 annotated, 三天 (7, 8) missing.
    ref.set_ents([ref.char_span(2, 7, label="sym")], missing=[ref[7:9]], default="outside")
    eg = Example(nlp.make_doc(text), ref)
    target, keep = pipe.gold_arrays(eg)
    labels = pipe.labels
    expected = numpy.ones_like(keep)
    for s in range(9):
        for d in range(8):
            if s <= 8 and s + d >= 7:
                expected[s, d] = False
    numpy.testing.assert_array_equal(keep, expected)
    assert target[2, 2, labels.index("bod")] == 1 and target[2, 4, labels.index("sym")] == 1 and target.sum() == 2
    # What is out of the loss cannot move it: flip every masked target.
    hidden = pipe.model.predict([eg.predicted])
    loss, grad = span_loss(pipe.head, hidden, [target], [keep])
    flipped = numpy.where(keep, target, 1.0 - target)
    loss2, grad2 = span_loss(pipe.head, hidden, [flipped], [keep])
    assert loss == pytest.approx(loss2)
    numpy.testing.assert_allclose(grad[0], grad2[0])
    # ... while a negative that is in the loss does.
    loss3, _ = span_loss(pipe.head, hidden, [flipped], [numpy.ones_like(keep)])
    assert loss3 > loss + 0.1


def test_gold_span_over_missing_tokens_stays_positive():
    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner", config=span_config(max_length=5))
    train(nlp, 1)
    ref = nlp.make_doc("患者左下腹疼痛三天")
    ref.spans["sc"] = [ref.char_span(2, 5, label="bod")]
    ref.set_ents([], missing=[ref[2:5]], default="outside")
    target, keep = nlp.get_pipe("span_ner").gold_arrays(Example(nlp.make_doc(ref.text), ref))
    bod = nlp.get_pipe("span_ner").labels.index("bod")
    assert target[2, 2, bod] == 1 and keep[2, 2, bod] and not keep[2, 2].all() and not keep[3, 0].any()


def test_doc_without_entity_annotation_is_read_from_its_span_group():
    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner", config=span_config(max_length=5))
    train(nlp, 1)
    ref = nlp.make_doc("患者左下腹疼痛三天")
    ref.spans["sc"] = [ref.char_span(2, 5, label="bod")]
    assert not ref.has_annotation("ENT_IOB")
    target, keep = nlp.get_pipe("span_ner").gold_arrays(Example(nlp.make_doc(ref.text), ref))
    assert keep.all() and target.sum() == 1


def test_overlaps():
    missing = numpy.array([0, 0, 1, 0, 0], dtype=bool)
    got = overlaps(missing, 3)
    for s in range(5):
        for d in range(3):
            assert got[s, d] == any(missing[s : s + d + 1])


def test_mentions_longer_than_max_length_warn_with_counts():
    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner", config=span_config(max_length=3))
    n_long = sum(e - s > 3 for _, spans in NESTED_DATA for s, e, _ in spans)
    n_all = sum(len(spans) for _, spans in NESTED_DATA)
    with pytest.warns(UserWarning, match=f"{n_long} of {n_all} training mentions .* longer than max_length = 3"):
        train(nlp, 1)
    nlp2 = spacy.blank("zh")
    nlp2.add_pipe("span_ner", config=span_config(max_length=5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        train(nlp2, 1)  # every mention fits: no warning


def test_missing_span_group_is_one_line_error_naming_the_key():
    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner", config=span_config(spans_key="mentions"))
    egs = examples(nlp)  # their groups are under "sc"
    with pytest.raises(ValueError, match=r"doc\.spans\['mentions'\]") as error:
        nlp.initialize(lambda: egs)
    assert "\n" not in str(error.value)
    nlp2 = spacy.blank("zh")
    nlp2.add_pipe("span_ner", config=span_config())
    optimizer = nlp2.initialize(lambda: examples(nlp2))
    bad = Example.from_dict(nlp2.make_doc("右上肢麻木"), {"entities": [(0, 3, "bod")]})
    with pytest.raises(ValueError, match=r"doc\.spans\['sc'\]"):
        nlp2.update([bad], sgd=optimizer)


def test_empty_span_group_means_no_mentions():
    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner", config=span_config())
    data = NESTED_DATA + [("今日无不适", [])]
    nlp = train(nlp, 40, data)
    assert predicted_spans([nlp("今日无不适")]) == [[]]


# Output policy and options ---------------------------------------------------


def test_ents_take_the_most_probable_then_the_longer_span():
    spans = [(0, 5, 1), (0, 3, 0), (4, 6, 2), (6, 8, 1), (6, 7, 0)]
    assert non_overlapping(spans, [0.9, 0.95, 0.6, 0.7, 0.7]) == [(0, 3, 0), (4, 6, 2), (6, 8, 1)]
    assert non_overlapping(spans, [0.99, 0.95, 0.6, 0.7, 0.8]) == [(0, 5, 1), (6, 7, 0)]


def test_set_ents_false_leaves_ents_alone():
    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner", config=span_config(set_ents=False))
    nlp = train(nlp, 60)
    doc = nlp("患者左下腹疼痛三天")
    assert len(doc.spans["sc"]) == 2 and not doc.ents
    assert "ents_f" not in nlp.evaluate(examples(nlp))


@pytest.mark.parametrize(
    "settings,option",
    [({"threshold": 0.0}, "threshold"), ({"threshold": 1.5}, "threshold"), ({"model": {"kind": "pointer"}}, "kind"),
     ({"model": {"max_length": 0}}, "max_length"), ({"model": {"width": 7}}, "width")],
)
def test_bad_options_are_named(settings, option):
    config = span_config()
    config["model"].update(settings.pop("model", {}))
    config.update(settings)
    with pytest.raises(ValueError, match=f"'{option}'"):
        spacy.blank("zh").add_pipe("span_ner", config=config)


@pytest.fixture(scope="module")
def trained():
    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner", config=span_config())
    return train(nlp, 60)


def test_displacy_span_style_uses_the_label_colours(trained, tmp_path):
    trained.to_disk(tmp_path / "nlp")
    key = ("spacy", "displacy_colors", REGISTRY_NAME)
    before = catalogue.REGISTRY.pop(key, None)  # the colours must come back with the loaded pipeline
    try:
        nlp = spacy.load(tmp_path / "nlp")
        html = displacy.render(nlp("患者左下腹疼痛三天"), style="span", options={"spans_key": "sc"})
    finally:
        if before is not None:
            catalogue.REGISTRY[key] = before
    colors = label_colors(["bod", "dis", "dru", "sym"])
    assert colors["bod"] in html and colors["sym"] in html
    assert re.search(r">\s*bod\s*<", html) and re.search(r">\s*sym\s*<", html)


def test_loads_through_entry_points_without_import(trained, tmp_path):
    trained.to_disk(tmp_path / "nlp")
    script = (
        "import spacy\n"
        f"nlp = spacy.load({str(tmp_path / 'nlp')!r})\n"
        "doc = nlp('诊断为肺部感染')\n"
        "print(sorted((s.text, s.label_) for s in doc.spans['sc']))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "[('肺部', 'bod'), ('肺部感染', 'dis')]" in out.stdout


# configs/cmeee_span.cfg ------------------------------------------------------


def test_cmeee_config_keeps_the_default_encoder_and_the_factory_default():
    """The benchmark compares decoders: the encoder must be cpu_default's."""
    span = load_config(ROOT / "configs" / "cmeee_span.cfg", interpolate=False)
    default = load_config(ROOT / "configs" / "cpu_default.cfg", interpolate=False)
    assert span["components"]["span_ner"]["model"]["encoder"] == default["components"]["crf_ner"]["model"]["encoder"]
    assert DEFAULT_MODEL["encoder"] == default["components"]["crf_ner"]["model"]["encoder"]
    assert span["nlp"]["pipeline"] == ["span_ner"] and span["components"]["span_ner"]["spans_key"] == "sc"
    assert span["training"]["score_weights"]["spans_sc_f"] == 1.0
    assert "fgm_epsilon" not in span["components"]["span_ner"]


def test_cmeee_config_max_length_is_the_shortest_covering_99_percent():
    import json

    raw = shared_corpus("cmeee")
    records = json.loads((raw / "CMeEE-V2_dev.json").read_text(encoding="utf8"))
    lengths = numpy.sort([e["end_idx"] - e["start_idx"] + 1 for r in records for e in r["entities"]])
    covering = int(lengths[int(numpy.ceil(0.99 * len(lengths))) - 1])
    config = load_config(ROOT / "configs" / "cmeee_span.cfg", interpolate=False)
    assert config["components"]["span_ner"]["model"]["max_length"] == covering


def test_whitespace_edges_are_trimmed_and_duplicates_keep_the_higher_score(trained):
    pipe = trained.get_pipe("span_ner")
    doc = trained.make_doc("患者  左下腹  疼痛")  # a second space is a token of its own
    assert [t.text for t in doc][2] == " " and doc[6].is_space
    bod, sym = pipe.labels.index("bod"), pipe.labels.index("sym")
    spans = numpy.array([[2, 6, bod], [3, 6, bod], [2, 3, sym], [3, 9, sym]])
    pipe.set_annotations([doc], [(spans, numpy.array([0.6, 0.9, 0.7, 0.8], dtype="float32"))])
    group = doc.spans["sc"]
    assert [(s.text, s.label_) for s in group] == [("左下腹", "bod"), ("左下腹  疼痛", "sym")]
    assert group.attrs["scores"] == pytest.approx([0.9, 0.8])
    assert [(e.text, e.label_) for e in doc.ents] == [("左下腹", "bod")]
