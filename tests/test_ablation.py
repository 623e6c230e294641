"""A CI-sized ablation run (2 steps per row) keeps the workflow working."""
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.ablation import ROWS
from benchmarks.markdown import tables
from spacy_medner.corpora.convert import convert

ROOT = Path(__file__).resolve().parents[1]


def test_ablation_runs_every_row_and_writes_one_table(tmp_path):
    lines = (ROOT / "assets" / "demo" / "train.jsonl").read_text(encoding="utf8").splitlines()
    (tmp_path / "small.jsonl").write_text("\n".join(lines[:12]) + "\n", encoding="utf8")
    docbin, _, _ = convert("doccano", [tmp_path / "small.jsonl"])
    docbin.to_disk(tmp_path / "small.spacy")
    data = str(tmp_path / "small.spacy")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.ablation", data, data, "--output", str(tmp_path / "out"), "--steps", "2", "--eval-frequency", "1"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((tmp_path / "out" / "ablation.json").read_text(encoding="utf8"))
    expected = set(ROWS) - {"pretraining_on"}  # skipped without --init-tok2vec
    assert {r["row"] for r in rows} == expected and len(rows) == len(expected)
    assert all(0.0 <= r["ents_f"] <= 1.0 for r in rows)
    [table] = tables((tmp_path / "out" / "ablation.md").read_text(encoding="utf8"))
    assert [(line["group"], line["row"], float(line["F1"])) for line in table] == [
        (r["group"], r["row"], round(100 * r["ents_f"], 2)) for r in rows]
    assert "skipping row pretraining_on" in result.stdout
