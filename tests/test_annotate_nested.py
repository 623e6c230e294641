"""annotate with a span_ner (nested-entity) pipeline: without `--spans-key`
the entities carry span_ner's scores, and every row carries `mentions`
(every span of its group, nested ones too) with offsets into the whole text,
a record cut into pieces included, in every output format; crf_ner output
is unchanged (tests/test_annotate.py), and the scoring group is read off the
pipeline (`io.entities.scoring_group`)."""
import json
import os
import subprocess
import sys

import pytest
import spacy

from spacy_medner.annotate import AnnotateOptions, annotate
from spacy_medner.corpora.segment import segment
from spacy_medner.io.entities import ScoringGroup, doc_entities, doc_mentions, scoring_group

from .conftest import ROOT
from .io.trained import trained_pipeline
from .io.trained_span import TEXTS, gold_mentions, long_nested_record, same_items, trained_span_pipeline
from .pipeline.test_span_ner import span_config

SPLIT = 40  # characters: the long record is cut into several pieces


@pytest.fixture(scope="module")
def model():
    return str(trained_span_pipeline())


@pytest.fixture(scope="module")
def nlp(model):
    return spacy.load(model)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text("utf8").splitlines()]


def write_input(path, texts):
    path.write_text("".join(json.dumps({"id": f"r{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)), "utf8")
    return path


def expected_row(nlp, text, split=SPLIT):
    """What a row must hold: each piece's doc.ents and span group, predicted
    alone and shifted to offsets into the whole text."""
    cuts = segment(text, (), split) if split and len(text) > split else [(0, len(text))]
    entities, mentions = [], []
    for start, end in cuts:
        doc = nlp(text[start:end])
        entities += [{**e, "start": e["start"] + start, "end": e["end"] + start} for e in doc_entities(doc, "sc")]
        mentions += [{**m, "start": m["start"] + start, "end": m["end"] + start} for m in doc_mentions(doc, "sc")]
    return entities, mentions


def assert_row(row, nlp, text):
    entities, mentions = expected_row(nlp, text)
    assert list(row) == ["id", "text", "entities", "mentions"] and row["text"] == text
    assert same_items(row["entities"], entities) and same_items(row["mentions"], mentions)
    for item in row["entities"] + row["mentions"]:
        assert text[item["start"]:item["end"]] == item["text"] and 0.5 <= item["score"] <= 1.0


def test_rows_carry_span_ner_scores_and_nested_mentions(model, nlp, tmp_path):
    long_text = long_nested_record()
    assert len(segment(long_text, (), SPLIT)) >= 5
    source = write_input(tmp_path / "in.jsonl", TEXTS + [long_text])
    out = tmp_path / "out.jsonl"
    annotate(model, [source], out, options=AnnotateOptions(split_length=SPLIT, batch_size=4, chunk_size=3))
    rows = read_jsonl(out)
    assert [r["text"] for r in rows] == TEXTS + [long_text]
    for row in rows:
        assert_row(row, nlp, row["text"])
    # The short records: every gold mention, the inner ones too, and doc.ents a non-overlapping subset.
    for row in rows[:-1]:
        assert sorted((m["start"], m["end"], m["label"]) for m in row["mentions"]) == gold_mentions(row["text"])
        ents = [(e["start"], e["end"]) for e in row["entities"]]
        assert all(a[1] <= b[0] for a, b in zip(ents, ents[1:]))
        assert {(e["start"], e["end"], e["label"]) for e in row["entities"]} < {(m["start"], m["end"], m["label"]) for m in row["mentions"]}
    # The long record's mentions come from pieces all over it, nested pairs included.
    mentions = rows[-1]["mentions"]
    assert max(m["start"] for m in mentions) > len(long_text) - SPLIT
    assert any(a["start"] <= b["start"] and b["end"] <= a["end"] and a != b for a in mentions for b in mentions)


def test_parquet_docbin_and_two_processes_hold_the_same_mentions(model, tmp_path):
    import pyarrow.dataset
    from spacy.tokens import DocBin

    texts = TEXTS * 3 + [long_nested_record()]
    source = write_input(tmp_path / "in.jsonl", texts)
    options = dict(split_length=SPLIT, chunk_size=5, batch_size=4)
    annotate(model, [source], tmp_path / "out.jsonl", options=AnnotateOptions(**options))
    annotate(model, [source], tmp_path / "two.jsonl", options=AnnotateOptions(**options, n_process=2))
    annotate(model, [source], tmp_path / "out.parquet", options=AnnotateOptions(**options))
    annotate(model, [source], tmp_path / "out.spacy", options=AnnotateOptions(**options))
    rows = read_jsonl(tmp_path / "out.jsonl")
    for a, b in zip(read_jsonl(tmp_path / "two.jsonl"), rows):
        assert a.keys() == b.keys() and same_items(a["entities"], b["entities"]) and same_items(a["mentions"], b["mentions"])
    table = pyarrow.dataset.dataset(tmp_path / "out.parquet", format="parquet").to_table().to_pylist()
    assert [list(r) for r in table] == [["id", "text", "entities", "mentions"]] * len(texts)
    for field in ("entities", "mentions"):
        assert all(same_items(t[field], r[field]) for t, r in zip(table, rows))
    # DocBin: the span group and its scores, the long record's pieces joined back.
    docs = [d for part in sorted((tmp_path / "out.spacy").glob("*.spacy")) for d in DocBin().from_disk(part).get_docs(spacy.blank("zh").vocab)]
    assert [d.text for d in docs] == texts
    for doc, row in zip(docs, rows):
        assert same_items(doc_mentions(doc, "sc"), row["mentions"]) and same_items(doc_entities(doc, "sc"), row["entities"])


def test_cli_reads_the_group_off_the_pipeline_and_an_explicit_key_wins(model, nlp, tmp_path):
    source = write_input(tmp_path / "in.jsonl", TEXTS[:2])

    def run(out, *extra):
        result = subprocess.run([sys.executable, "-m", "spacy_medner", "annotate", model, str(source), "--output", str(out), *extra],
                                capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr
        return read_jsonl(out)

    for row in run(tmp_path / "auto.jsonl"):
        assert_row(row, nlp, row["text"])
    # A key the pipeline does not fill: no scores, and no mentions in it.
    for row, text in zip(run(tmp_path / "explicit.jsonl", "--spans-key", "other"), TEXTS):
        assert row["entities"] == [{k: v for k, v in e.items() if k != "score"} for e in doc_entities(nlp(text), "sc")]
        assert row["entities"] and row["mentions"] == []


def test_scoring_group_of_a_pipeline():
    def pipeline(factory, **config):
        nlp = spacy.blank("zh")
        nlp.add_pipe(factory, config=config)
        return nlp

    assert scoring_group(pipeline("crf_ner")) == ScoringGroup("crf_ner", False)
    assert scoring_group(pipeline("crf_ner", spans_key=None)) == ScoringGroup(None, False)
    assert scoring_group(pipeline("crf_ner", spans_key="probs")) == ScoringGroup("probs", False)
    assert scoring_group(pipeline("span_ner", **span_config())) == ScoringGroup("sc", True)
    assert scoring_group(pipeline("span_ner", **span_config(spans_key="mentions"))) == ScoringGroup("mentions", True)
    assert scoring_group(pipeline("span_ner", **span_config()), "explicit") == ScoringGroup("explicit", True)
    renamed = spacy.blank("zh")
    renamed.add_pipe("span_ner", name="nested", config=span_config(spans_key="m"))
    assert scoring_group(renamed) == ScoringGroup("m", True)
    # Neither component: the historical key (a custom component may fill it).
    assert scoring_group(spacy.blank("zh")) == ScoringGroup("crf_ner", False)


def test_crf_ner_rows_have_no_mentions(tmp_path):
    model = str(trained_pipeline())
    source = write_input(tmp_path / "in.jsonl", ["患者因直肠癌于我院行直肠癌根治术"])
    annotate(model, [source], tmp_path / "out.jsonl")
    (row,) = read_jsonl(tmp_path / "out.jsonl")
    assert list(row) == ["id", "text", "entities"] and all("score" in e for e in row["entities"])
