"""`self-label`: the DocBin holds exactly the confident entities, the unsure
tokens as missing and the rest as O; crf_ner trains on it with the missing
tokens marginalised (a lower loss than reading them as O), from a folder that
holds gold and pseudo-labels together; bad input fails in one line."""
import json

import numpy
import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Corpus, Example
from typer.testing import CliRunner

from spacy_medner.labelling import predict_with_marginals
from spacy_medner.self_training import SelfLabelError, self_label

from .conftest import TRAIN_DATA
from .io.trained import trained_pipeline, write_jsonl
from .test_select import POOL

MIN_PROB, FLOOR = 0.9, 0.05


@pytest.fixture(scope="module")
def model():
    return str(trained_pipeline())


@pytest.fixture(scope="module")
def nlp(model):
    return spacy.load(model)


@pytest.fixture(scope="module")
def pseudo(model, nlp, tmp_path_factory):
    folder = tmp_path_factory.mktemp("self")
    pool = write_jsonl(folder / "unlabelled.jsonl", [{"id": i, "text": t} for i, t, _ in POOL] + [{"id": "bad", "text": ""}])
    summary = self_label(model, [pool], folder / "pseudo.spacy", min_prob=MIN_PROB, uncertain_floor=FLOOR, id_field="id", nlp=nlp)
    docs = list(DocBin().from_disk(folder / "pseudo.spacy").get_docs(nlp.vocab))
    return summary, docs, folder


def test_the_docbin_holds_the_confident_entities_and_the_unsure_tokens_as_missing(nlp, pseudo):
    summary, docs, folder = pseudo
    assert [d.text for d in docs] == [t for _, t, _ in POOL]
    assert [d.user_data["medner_source"]["id"] for d in docs] == [i for i, _, _ in POOL]
    kept = dropped = missing_outside = 0
    for doc, (predicted, marginals) in zip(docs, predict_with_marginals(nlp, [d.text for d in docs])):
        group = predicted.spans["crf_ner"]
        scores = group.attrs["scores"]
        expected_ents = [(s.start, s.end, s.label_) for s, p in zip(group, scores) if p >= MIN_PROB]
        assert [(e.start, e.end, e.label_) for e in doc.ents] == expected_ents
        in_entity = numpy.zeros(len(doc), dtype=bool)
        unsure = numpy.zeros(len(doc), dtype=bool)
        for span, p in zip(group, scores):
            in_entity[span.start:span.end] = True
            unsure[span.start:span.end] |= p < MIN_PROB
        outside_unsure = ~in_entity & (1 - marginals[:, 0] >= FLOOR)
        missing = numpy.array([t.ent_iob == 0 for t in doc])
        assert (missing == (unsure | outside_unsure)).all()
        assert all(t.ent_iob_ == "O" for t, m, i in zip(doc, missing, in_entity) if not m and not i)
        kept += len(expected_ents)
        dropped += sum(p < MIN_PROB for p in scores)
        missing_outside += int(outside_unsure.sum())
    # The case must exercise all three: kept entities, dropped ones, and likely misses.
    assert kept > 0 and dropped > 0 and missing_outside > 0
    assert (summary.entities_kept, summary.entities_dropped) == (kept, dropped)
    assert summary.tokens_missing == sum(t.ent_iob == 0 for d in docs for t in d)
    assert (summary.records_in, summary.records, summary.errors) == (len(POOL) + 1, len(POOL), 1)
    assert json.loads((folder / "pseudo.errors.jsonl").read_text("utf8"))["reason"] == "empty text"


def test_crf_ner_marginalises_the_missing_tokens_and_trains_on_gold_plus_pseudo(model, pseudo):
    summary, docs, folder = pseudo
    learner = spacy.load(model)
    pipe = learner.get_pipe("crf_ner")
    examples = [Example(learner.make_doc(d.text), d) for d in docs]
    missing_docs = [k for k, d in enumerate(docs) if any(t.ent_iob == 0 for t in d)]
    assert missing_docs
    for k in missing_docs:
        mask = pipe.tag_scheme.gold_mask(examples[k])
        missing = numpy.array([t.ent_iob == 0 for t in docs[k]])
        assert mask[missing].all() and (mask[~missing].sum(axis=1) == 1).all()
    # Marginalising sums over a superset of the paths "O" allows: the loss can only be lower.
    as_o = []
    for k in missing_docs:
        doc = docs[k].copy()
        doc.set_ents(list(doc.ents), default="outside")
        as_o.append(Example(learner.make_doc(doc.text), doc))
    emissions = pipe.model.predict([eg.predicted for eg in as_o])
    loss_missing, _ = pipe.get_loss([examples[k] for k in missing_docs], emissions)
    loss_as_o, _ = pipe.get_loss(as_o, emissions)
    assert numpy.isfinite(loss_missing) and loss_missing < loss_as_o - 1e-3
    # Gold and pseudo-labels in one folder: spaCy's Corpus reads both.
    corpus_dir = folder / "train"
    corpus_dir.mkdir()
    gold = DocBin()
    for text, ents in TRAIN_DATA:
        gold.add(Example.from_dict(learner.make_doc(text), {"entities": ents}).reference)
    gold.to_disk(corpus_dir / "gold.spacy")
    (corpus_dir / "pseudo.spacy").write_bytes((folder / "pseudo.spacy").read_bytes())
    train = list(Corpus(corpus_dir)(learner))
    assert len(train) == len(TRAIN_DATA) + len(docs)
    optimizer = learner.resume_training()
    first = last = None
    for step in range(15):
        loss = learner.update(train, sgd=optimizer, losses={})["crf_ner"]
        assert numpy.isfinite(loss)
        first = loss if first is None else first
        last = loss
    assert last < first


def test_cli_reports_what_it_kept_and_writes_what_the_library_writes(model, pseudo, tmp_path):
    import spacy_medner.cli.self_label  # noqa: F401  (registers the command)
    from spacy_medner.cli import app

    summary, docs, folder = pseudo
    out = tmp_path / "pseudo.spacy"
    result = CliRunner().invoke(app, ["self-label", model, str(folder / "unlabelled.jsonl"), "--output", str(out),
                                      "--min-prob", str(MIN_PROB), "--uncertain-floor", str(FLOOR), "--id-field", "id"])
    assert result.exit_code == 0, result.output
    assert f"{len(POOL) + 1} records in: {len(POOL)} labelled ({len(POOL)} docs), 1 errors" in result.stdout
    assert f"entities: {summary.entities_kept} kept (p ≥ {MIN_PROB:g}), {summary.entities_dropped} dropped" in result.stdout
    assert f"tokens: {summary.tokens_missing} of {summary.tokens} missing" in result.stdout
    again = list(DocBin().from_disk(out).get_docs(docs[0].vocab))
    assert [[(t.ent_iob, t.ent_type_) for t in d] for d in again] == [[(t.ent_iob, t.ent_type_) for t in d] for d in docs]


@pytest.mark.parametrize("args,message", [
    (["--min-prob", "1.5"], "--min-prob must be a probability in [0, 1], got 1.5"),
    (["--output", "pseudo.jsonl"], "name the output .spacy"),
    (["--model", "blank"], "has no crf_ner component"),
    (["--input", "bad"], "nothing to label (all 1 records were bad)"),
])
def test_bad_input_fails_in_one_line_with_nothing_written(model, tmp_path, args, message):
    from spacy_medner.cli import app
    import spacy_medner.cli.self_label  # noqa: F401  (registers the command)

    blank = tmp_path / "blank"
    spacy.blank("zh").to_disk(blank)
    good = write_jsonl(tmp_path / "in.jsonl", [{"text": POOL[0][1]}])
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": ""}])
    options = dict(zip(args[::2], args[1::2]))
    out = tmp_path / options.get("--output", "pseudo.spacy")
    command = ["self-label", str(blank) if options.get("--model") == "blank" else model,
               str(bad if options.get("--input") == "bad" else good), "--output", str(out)]
    if "--min-prob" in options:
        command += ["--min-prob", options["--min-prob"]]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not out.exists()


def test_without_entity_scores_self_labelling_fails(model, tmp_path):
    nlp = spacy.load(model, config={"components": {"crf_ner": {"spans_key": None}}})
    pool = write_jsonl(tmp_path / "in.jsonl", [{"text": POOL[0][1]}])
    with pytest.raises(SelfLabelError, match="spans_key is null"):
        self_label(str(tmp_path), [pool], tmp_path / "out.spacy", nlp=nlp)
    assert not (tmp_path / "out.spacy").exists()
