"""A CI-sized ablation run (2 steps per row) keeps the workflow working."""
import json
import subprocess
import sys
from pathlib import Path

from spacy_medner.corpora.convert import convert

ROOT = Path(__file__).resolve().parents[1]


def test_ablation_runs_every_row_and_writes_one_table(tmp_path):
    lines = (ROOT / "assets" / "demo" / "train.jsonl").read_text(encoding="utf8").splitlines()
    (tmp_path / "small.jsonl").write_text("\n".join(lines[:12]) + "\n", encoding="utf8")
    docbin, _, _ = convert("doccano", [tmp_path / "small.jsonl"])
    docbin.to_disk(tmp_path / "small.spacy")
    data = str(tmp_path / "small.spacy")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ablation.py"), data, data, "--output", str(tmp_path / "out"), "--steps", "2", "--eval-frequency", "1"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((tmp_path / "out" / "ablation.json").read_text(encoding="utf8"))
    expected = {"crf", "softmax", "plain", "bilstm", "bigru", "att", "mha", "bigru_mha", "mha_heads_1", "mha_heads_4",
                "mha_heads_8", "mha_heads_12", "fgm_off", "fgm_on", "softmax_ce", "softmax_focal", "pretraining_off"}
    assert {r["row"] for r in rows} == expected  # pretraining_on is skipped without --init-tok2vec
    assert all(0.0 <= r["ents_f"] <= 1.0 for r in rows)
    table = (tmp_path / "out" / "ablation.md").read_text(encoding="utf8")
    assert table.count("\n| ") == len(expected) + 1  # header + one line per row
    assert "skipping row pretraining_on" in result.stdout
