"""`annotate`: the entities equal `nlp(text)`'s, bad records land in the
errors file with file, line and reason, long records are split and merged
back with offsets into the original text, every output format holds the same
entities, and the JSON lines read back through `convert doccano/prodigy`."""
import io
import json
import subprocess
import sys

import pytest
import spacy

from spacy_medner.corpora.segment import segment
from spacy_medner.annotate import AnnotateError, AnnotateOptions, Progress, annotate

from .conftest import ROOT, TRAIN_DATA
from .io.trained import assert_same_records, sample_texts, trained_pipeline, write_jsonl


@pytest.fixture(scope="module")
def model():
    return str(trained_pipeline())


@pytest.fixture(scope="module")
def nlp(model):
    return spacy.load(model)


def entities_of(nlp, text):
    return [{"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text} for e in nlp(text).ents]


def strip_scores(entities):
    return [{k: v for k, v in e.items() if k != "score"} for e in entities]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text("utf8").splitlines()]


MIXED = [
    {"id": "a", "text": TRAIN_DATA[0][0]},
    {"id": "b", "text": ""},
    {"id": "c", "text": 42},
    '{"id": "d", "text": "unterminated',
    {"id": "e"},
    {"id": "f", "text": TRAIN_DATA[1][0]},
    {"id": "g", "text": "x" * 300},
    {"id": "h", "text": TRAIN_DATA[2][0]},
]


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "spacy_medner", "annotate", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


def test_cli_predicts_like_nlp_and_reports_bad_records(model, nlp, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", MIXED)
    out, errors = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    result = run_cli(model, source, "--output", out, "--errors", errors, "--id-field", "id", "--max-chars", 200, "--chunk-size", 2)
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["a", "f", "h"]
    for row in rows:
        assert row["text"] == next(r["text"] for r in MIXED if isinstance(r, dict) and r.get("id") == row["id"])
        assert strip_scores(row["entities"]) == entities_of(nlp, row["text"])
    assert sum(len(r["entities"]) for r in rows) >= 4
    bad = read_jsonl(errors)
    assert [(e["line"], e["id"]) for e in bad] == [(2, "b"), (3, "c"), (4, "4"), (5, "e"), (7, "g")]
    assert all(e["source"] == str(source) for e in bad)
    reasons = [e["reason"] for e in bad]
    assert reasons[0] == "empty text" and "not a string" in reasons[1] and "invalid JSON" in reasons[2]
    assert "missing text field" in reasons[3] and "--max-chars" in reasons[4]
    assert "8 records in" in result.stdout and "3 written, 5 errors" in result.stdout


@pytest.mark.parametrize("args,message", [
    (["missing.jsonl"], "no such file"),
    (["in.docx"], "unknown input extension"),
    (["in.jsonl", "--text-field", "body"], "first record has no field 'body'"),
])
def test_cli_exits_1_with_one_line_when_the_input_cannot_be_read(model, tmp_path, args, message):
    write_jsonl(tmp_path / "in.jsonl", [{"text": "患者"}])
    (tmp_path / "in.docx").write_bytes(b"x")
    out = tmp_path / "out.jsonl"
    result = run_cli(model, *[tmp_path / a if i == 0 else a for i, a in enumerate(args)], "--output", out)
    assert result.returncode == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_an_existing_output_needs_resume_or_overwrite(model, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": TRAIN_DATA[0][0]}])
    out = tmp_path / "out.jsonl"
    annotate(model, [source], out)
    before = out.read_bytes()
    with pytest.raises(AnnotateError, match="--resume"):
        annotate(model, [source], out)
    assert out.read_bytes() == before
    annotate(model, [source], out, options=AnnotateOptions(overwrite=True))
    assert out.read_bytes() == before


def long_record(n_sentences=80):
    return "".join(TRAIN_DATA[i % len(TRAIN_DATA)][0] + "。" for i in range(n_sentences))


def test_long_records_are_split_at_sentence_ends_and_merged_with_original_offsets(model, nlp, tmp_path):
    text = long_record()
    assert len(text) > 1000
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": text}, {"text": TRAIN_DATA[3][0]}])
    split, whole = tmp_path / "split.jsonl", tmp_path / "whole.jsonl"
    annotate(model, [source], split, options=AnnotateOptions(split_length=100, batch_size=4))
    annotate(model, [source], whole, options=AnnotateOptions(split_length=0))
    split_rows, whole_rows = read_jsonl(split), read_jsonl(whole)
    assert [r["text"] for r in split_rows] == [text, TRAIN_DATA[3][0]]
    entities = split_rows[0]["entities"]
    assert len(entities) >= 80  # every sentence has at least one entity
    assert all(text[e["start"]:e["end"]] == e["text"] for e in entities)
    # The pieces end at sentence ends, cover the text, and their entities come back shifted.
    pieces = segment(text, (), 100)
    assert len(pieces) > 8 and all(text[end - 1] == "。" for _, end in pieces)
    assert "".join(text[s:e] for s, e in pieces) == text
    expected = [{**e, "start": e["start"] + s, "end": e["end"] + s} for s, end in pieces for e in entities_of(nlp, text[s:end])]
    assert strip_scores(entities) == expected
    assert strip_scores(whole_rows[0]["entities"]) == entities_of(nlp, text)


def test_parquet_and_docbin_outputs_hold_the_same_entities(model, tmp_path):
    import pyarrow.dataset
    from spacy.tokens import DocBin

    texts = sample_texts(30) + [long_record(30)]
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])
    options = AnnotateOptions(chunk_size=7, split_length=100)
    annotate(model, [source], tmp_path / "out.jsonl", options=options)
    annotate(model, [source], tmp_path / "out.parquet", options=options)
    annotate(model, [source], tmp_path / "out.spacy", options=options)
    rows = read_jsonl(tmp_path / "out.jsonl")
    table = pyarrow.dataset.dataset(tmp_path / "out.parquet", format="parquet").to_table().to_pylist()
    assert len(list((tmp_path / "out.parquet").glob("part-*.parquet"))) == 5  # 31 records in chunks of 7
    assert [r["id"] for r in table] == [r["id"] for r in rows]
    assert [r["text"] for r in table] == texts
    assert [[{k: v for k, v in e.items() if v is not None} for e in r["entities"]] for r in table] == [r["entities"] for r in rows]
    vocab = spacy.blank("zh").vocab
    docs = [doc for part in sorted((tmp_path / "out.spacy").glob("*.spacy")) for doc in DocBin().from_disk(part).get_docs(vocab)]
    assert [d.text for d in docs] == texts  # the long record's pieces joined back exactly
    assert [d.user_data["id"] for d in docs] == [r["id"] for r in rows]
    assert [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs] == [
        [(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in rows]


@pytest.mark.parametrize("fmt", ["doccano", "prodigy"])
def test_jsonl_reads_back_through_convert_as_pre_annotations(model, nlp, tmp_path, fmt):
    from spacy.tokens import DocBin

    texts = sample_texts(6)
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])
    out = tmp_path / "out.jsonl"
    annotate(model, [source], out, options=AnnotateOptions(jsonl_format=fmt))
    result = subprocess.run([sys.executable, "-m", "spacy_medner", "convert", fmt, str(out), "--output", str(tmp_path / "back.spacy")],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    docs = list(DocBin().from_disk(tmp_path / "back.spacy").get_docs(spacy.blank("zh").vocab))
    assert [d.text for d in docs] == texts
    assert [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs] == [
        [(e["start"], e["end"], e["label"]) for e in entities_of(nlp, t)] for t in texts]


def test_n_process_2_writes_what_one_process_writes(model, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in sample_texts(80)] + [{"text": ""}, {"text": long_record(20)}])
    annotate(model, [source], tmp_path / "one.jsonl", options=AnnotateOptions(split_length=100))
    annotate(model, [source], tmp_path / "two.jsonl", options=AnnotateOptions(split_length=100, n_process=2, batch_size=8, chunk_size=10))
    assert_same_records(read_jsonl(tmp_path / "two.jsonl"), read_jsonl(tmp_path / "one.jsonl"))
    assert (tmp_path / "one.errors.jsonl").read_bytes() == (tmp_path / "two.errors.jsonl").read_bytes()


def test_progress_logs_lines_off_a_terminal(model, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in sample_texts(20)])
    stream = io.StringIO()
    annotate(model, [source], tmp_path / "out.jsonl", progress=lambda reader: Progress(reader, stream=stream, log_every=0.0))
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 20 and "\r" not in stream.getvalue()
    assert lines[-1].startswith("20 records") and "records/s" in lines[-1] and "chars/s" in lines[-1] and "100% of input read" in lines[-1]
