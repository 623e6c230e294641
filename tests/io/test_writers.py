"""io.writers: a chunk is committed whole or not at all, and restore() brings
an output back to its last committed state."""
import json

import pytest

from spacy_medner.io.writers import JsonlWriter, OutputError, ParquetWriter, output_kind, result_row


def test_jsonl_restore_cuts_what_came_after_the_commit(tmp_path):
    writer = JsonlWriter(tmp_path / "out.jsonl")
    writer.start()
    writer.write([{"id": "1", "entities": []}, {"id": "2", "entities": []}], [])
    committed = writer.state()
    writer.write([{"id": "3", "entities": []}], [])
    with open(tmp_path / "out.jsonl", "ab") as file:
        file.write(b'{"id": "4", "ent')  # killed mid-write
    again = JsonlWriter(tmp_path / "out.jsonl")
    again.restore(committed)
    assert list(again.written_ids()) == ["1", "2"]
    # Without a committed state: back to the last complete line.
    with open(tmp_path / "out.jsonl", "ab") as file:
        file.write(b'{"id": "3", "entities": []}\n{"id": "4"')
    again.restore(None)
    assert list(again.written_ids()) == ["1", "2", "3"]
    (tmp_path / "out.jsonl").write_bytes(b"")
    with pytest.raises(OutputError, match="fewer than"):
        again.restore(committed)


def test_parquet_parts_after_the_commit_are_removed(tmp_path):
    writer = ParquetWriter(tmp_path / "out.parquet")
    writer.start()
    rows = [{"id": str(i), "text": "患者", "entities": [{"start": 0, "end": 2, "label": "X", "text": "患者"}]} for i in range(3)]
    writer.write(rows[:2], [])
    committed = writer.state()
    writer.write(rows[2:], [])
    (tmp_path / "out.parquet" / ".part-000002.parquet.tmp").write_bytes(b"half")
    again = ParquetWriter(tmp_path / "out.parquet")
    again.restore(committed)
    assert list(again.written_ids()) == ["0", "1"]
    assert sorted(p.name for p in (tmp_path / "out.parquet").iterdir()) == ["part-000000.parquet"]


def test_row_shapes_and_output_kinds():
    entities = [{"start": 0, "end": 2, "label": "药物", "text": "阿司", "score": 0.9}]
    assert result_row("1", "阿司匹林", entities) == {"id": "1", "text": "阿司匹林", "entities": entities}
    assert result_row("1", "阿司匹林", entities, include_text=False) == {"id": "1", "entities": entities}
    assert result_row("1", "阿司匹林", entities, jsonl_format="doccano")["label"] == [[0, 2, "药物"]]
    assert result_row("1", "阿司匹林", entities, jsonl_format="prodigy")["spans"] == entities
    assert json.dumps(result_row("1", "t", []))  # JSON-able
    assert [output_kind(__import__("pathlib").Path(p)) for p in ("a.jsonl", "a.parquet", "a.spacy")] == ["jsonl", "parquet", "docbin"]
    with pytest.raises(OutputError, match="unknown output extension"):
        output_kind(__import__("pathlib").Path("a.csv"))
