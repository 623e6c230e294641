"""Bad input: exit 1, one human line naming file and place, no traceback,
no output file left behind."""
import json
import subprocess
import sys

import pytest

GOOD = {"originalText": "口服阿司匹林", "entities": [{"label_type": "药物", "start_pos": 2, "end_pos": 6}]}


def line(obj):
    return json.dumps(obj, ensure_ascii=False)


CASES = {
    "invalid_json": ("ccks2019", "a.txt", line(GOOD) + "\n{\"originalText\": \"x\",\n", "a.txt, line 2: invalid JSON"),
    "out_of_range": ("ccks2019", "a.txt", line({**GOOD, "entities": [{"label_type": "药物", "start_pos": 2, "end_pos": 60}]}), "a.txt, line 1, entity 0: entity '药物' offsets [2, 60) are outside the text"),
    "reversed": ("ccks2019", "a.txt", line(GOOD) + "\n" + line({**GOOD, "entities": [{"label_type": "药物", "start_pos": 5, "end_pos": 2}]}), "a.txt, line 2, entity 0: entity '药物' has reversed"),
    "missing_key": ("ccks2019", "a.txt", line({"text": "口服"}), "a.txt, line 1: missing key 'originalText'"),
    "mention_mismatch": ("cmeee", "d.json", json.dumps([{"text": "口服阿司匹林", "entities": [{"start_idx": 2, "end_idx": 5, "type": "dru", "entity": "布洛芬"}]}], ensure_ascii=False), "d.json, record 0, entity 0: entity 'dru' mention '布洛芬' disagrees"),
    "empty": ("doccano", "e.jsonl", "\n\n", "e.jsonl: the input is empty"),
    "bad_conll_line": ("conll", "c.txt", "口\tO\n服O\n", "c.txt, line 2: expected '<character><TAB><tag>'"),
}


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "spacy_medner", "convert", *args], capture_output=True, text=True, cwd=cwd)


def assert_clean_failure(result, expected, output):
    out = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, out
    assert "Traceback" not in out
    assert expected in out
    assert len(out.splitlines()) == 1, out
    assert not output.exists() and not list(output.parent.glob(".*tmp"))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_fails_cleanly(case, tmp_path):
    fmt, name, content, expected = case
    (tmp_path / name).write_text(content, encoding="utf8")
    out = tmp_path / "out" / "train.spacy"
    assert_clean_failure(run(fmt, name, "-o", str(out), cwd=tmp_path), expected, out)


def test_undecodable_gbk_names_the_line(tmp_path):
    text = line(GOOD) + "\n" + line({**GOOD, "originalText": "患者口服阿司匹林"})
    (tmp_path / "gbk.txt").write_bytes(text.encode("gbk"))
    out = tmp_path / "train.spacy"
    assert_clean_failure(run("ccks2019", "gbk.txt", "-o", str(out), cwd=tmp_path), "gbk.txt, line 1: is not valid UTF-8", out)


def test_brat_txt_without_ann(tmp_path):
    (tmp_path / "brat").mkdir()
    (tmp_path / "brat" / "7.txt").write_text("口服阿司匹林", encoding="utf8")
    out = tmp_path / "train.spacy"
    assert_clean_failure(run("brat", "brat", "-o", str(out), cwd=tmp_path), "7.txt: has no matching .ann file", out)


def test_missing_input_file(tmp_path):
    out = tmp_path / "train.spacy"
    assert_clean_failure(run("doccano", "nope.jsonl", "-o", str(out), cwd=tmp_path), "nope.jsonl: no such file or folder", out)


def test_failed_run_keeps_previous_output(tmp_path):
    (tmp_path / "a.txt").write_text("{oops", encoding="utf8")
    out = tmp_path / "train.spacy"
    out.write_bytes(b"previous")
    result = run("ccks2019", "a.txt", "-o", str(out), cwd=tmp_path)
    assert result.returncode == 1 and out.read_bytes() == b"previous"
