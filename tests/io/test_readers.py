"""io.readers: every format yields the same records, with file and line for
each, bad lines as records carrying their error, and an unreadable input as
one InputError."""
import gzip
import json

import pytest

from spacy_medner.io.readers import MISSING, InputError, RecordReader

TEXTS = ["患者因直肠癌入院", "口服阿司匹林，后复查", 'a "quoted", text\twith tab']


def records(paths, **options):
    return [(r.id, r.text, r.line, r.error) for r in RecordReader(paths, **options)]


def write_jsonl(path, rows, compress=False):
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_jsonl_text_and_id_fields_and_gzip(tmp_path):
    rows = [{"note": t, "pid": f"p{i}"} for i, t in enumerate(TEXTS)]
    plain = write_jsonl(tmp_path / "a.jsonl", rows)
    packed = write_jsonl(tmp_path / "a.jsonl.gz", rows, compress=True)
    expected = [(f"p{i}", t, i + 1, None) for i, t in enumerate(TEXTS)]
    assert records([plain], text_field="note", id_field="pid") == expected
    assert records([packed], text_field="note", id_field="pid") == expected
    # Without an id field, ids are line numbers; with two files, prefixed by the file.
    assert [r[0] for r in records([plain], text_field="note")] == ["1", "2", "3"]
    assert [r[0] for r in records([plain, packed], text_field="note")][2:4] == [f"{plain}:3", f"{packed}:1"]


def test_csv_tsv_text_and_parquet_give_the_same_records(tmp_path):
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, delimiter in (("a.csv", ","), ("a.tsv", "\t")):
        with open(tmp_path / name, "w", newline="", encoding="utf8") as file:
            writer = csv.writer(file, delimiter=delimiter)
            writer.writerow(["id", "text"])
            writer.writerows([[f"r{i}", t] for i, t in enumerate(TEXTS)])
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(3)], "text": TEXTS}), tmp_path / "a.parquet")
    for name in ("a.csv", "a.tsv", "a.parquet"):
        got = [(r.id, r.text) for r in RecordReader([tmp_path / name], id_field="id")]
        assert got == [(f"r{i}", t) for i, t in enumerate(TEXTS)], name
    (tmp_path / "lines.txt").write_text("\n".join(TEXTS[:2]) + "\r\n\n", encoding="utf8")
    assert records([tmp_path / "lines.txt"]) == [("1", TEXTS[0], 1, None), ("2", TEXTS[1], 2, None), ("3", "", 3, None)]


def test_a_folder_of_txt_files_is_one_record_per_file(tmp_path):
    (tmp_path / "notes" / "ward").mkdir(parents=True)
    (tmp_path / "notes" / "b.txt").write_text("第一行\n第二行\n", encoding="utf8")
    (tmp_path / "notes" / "ward" / "a.txt.gz").write_bytes(gzip.compress("术后予奥沙利铂化疗".encode("utf8")))
    (tmp_path / "notes" / "skip.csv").write_text("x\n", encoding="utf8")
    assert records([tmp_path / "notes"]) == [("b.txt", "第一行\n第二行\n", 1, None), ("ward/a.txt.gz", "术后予奥沙利铂化疗", 1, None)]


def test_bad_lines_are_records_with_errors(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"text": "ok"}\n{broken\n' + '{"text": "坏"}'.encode("gbk") + b'\n[1, 2]\n\n{"text": 3}\n{"other": 1}\n{"text": null}\n'
    )
    got = list(RecordReader([path]))
    assert [(r.line, r.text) for r in got if r.error is None] == [(1, "ok"), (6, 3), (7, MISSING), (8, None)]
    errors = {r.line: r.error for r in got if r.error}
    assert set(errors) == {2, 3, 4}
    assert errors[2].startswith("invalid JSON") and "UTF-8" in errors[3] and "JSON object" in errors[4]
    assert all(r.source == str(path) for r in got)
    # A bad id is a bad record, not a crash.
    path2 = write_jsonl(tmp_path / "ids.jsonl", [{"text": "a", "id": 7}, {"text": "b"}, {"text": "c", "id": [1]}])
    got = list(RecordReader([path2], id_field="id"))
    assert got[0].id == "7" and got[0].error is None
    assert "missing" in got[1].error and "[1]" in got[2].error


@pytest.mark.parametrize("name,content,message", [
    ("missing.jsonl", None, "no such file"),
    ("a.xlsx", b"x", "unknown input extension '.xlsx'"),
    ("a.jsonl", b'{"body": "x"}\n', "first record has no field 'text'"),
    ("a.csv", b"id,body\n1,x\n", "no column 'text'"),
    ("a.parquet", b"not parquet", "not a readable Parquet file"),
])
def test_unreadable_inputs_fail_at_check(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        RecordReader([path]).check()
    assert str(path) in str(err.value)


def test_a_truncated_gzip_is_an_input_error(tmp_path):
    data = gzip.compress(("".join(json.dumps({"text": f"记录{i}"}) + "\n" for i in range(2000))).encode("utf8"))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="breaks off"):
        list(RecordReader([path]))


def test_reading_is_streaming(tmp_path):
    """The reader holds one line: the first record comes before the rest of the file is read."""
    path = write_jsonl(tmp_path / "big.jsonl", [{"text": "患者" * 50} for _ in range(20000)])
    reader = RecordReader([path])
    iterator = iter(reader)
    next(iterator)
    assert 0 < reader.bytes_done < reader.total_bytes / 10
