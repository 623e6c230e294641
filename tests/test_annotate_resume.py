"""A run killed with SIGKILL after its first committed chunk, then resumed
with --resume, gives exactly the records of an uninterrupted run, none twice
and none missing, errors included."""
import json
import os
import signal
import subprocess
import sys
import time

from spacy_medner.annotate import progress_path

from .conftest import ROOT
from .io.trained import assert_same_records, sample_texts, trained_pipeline

N_RECORDS = 3000
CHUNK = 200


def cli(model, source, out, *extra):
    return [sys.executable, "-m", "spacy_medner", "annotate", model, str(source), "--output", str(out),
            "--chunk-size", str(CHUNK), "--batch-size", "32", *extra]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    model = str(trained_pipeline())
    source = tmp_path / "in.jsonl"
    with open(source, "w", encoding="utf8") as file:
        for i, text in enumerate(sample_texts(N_RECORDS)):
            file.write(json.dumps({"id": f"r{i}", "text": "" if i % 97 == 0 else text}, ensure_ascii=False) + "\n")
    full = tmp_path / "full.jsonl"
    done = subprocess.run(cli(model, source, full, "--id-field", "id"), capture_output=True, text=True, timeout=600, cwd=ROOT, env=ENV)
    assert done.returncode == 0, done.stderr

    out = tmp_path / "out.jsonl"
    process = subprocess.Popen(cli(model, source, out, "--id-field", "id"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=ENV)
    committed = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if progress_path(out).exists():
            committed = json.loads(progress_path(out).read_text())["consumed"]
            if committed >= CHUNK:
                break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert CHUNK <= committed < N_RECORDS

    resumed = subprocess.run(cli(model, source, out, "--id-field", "id", "--resume"), capture_output=True, text=True, timeout=600, cwd=ROOT, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert "committed before --resume" in resumed.stdout
    rows = [json.loads(line) for line in out.read_text("utf8").splitlines()]
    assert len({r["id"] for r in rows}) == len(rows)  # none twice
    assert_same_records(rows, [json.loads(line) for line in full.read_text("utf8").splitlines()])
    assert (tmp_path / "out.errors.jsonl").read_bytes() == (tmp_path / "full.errors.jsonl").read_bytes()
    assert len((tmp_path / "full.errors.jsonl").read_text().splitlines()) == len(range(0, N_RECORDS, 97))
    # Resuming a finished job does nothing.
    again = subprocess.run(cli(model, source, out, "--id-field", "id", "--resume"), capture_output=True, text=True, timeout=600, cwd=ROOT, env=ENV)
    assert again.returncode == 0 and [json.loads(line) for line in out.read_text("utf8").splitlines()] == rows


def test_resume_without_a_progress_file_skips_the_ids_written(tmp_path):
    """An output whose progress file is gone (copied elsewhere, say): --resume cuts a
    half-written last line and skips every id already in the file."""
    from spacy_medner.annotate import AnnotateOptions, annotate

    model = str(trained_pipeline())
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in sample_texts(40)), encoding="utf8")
    full, out = tmp_path / "full.jsonl", tmp_path / "out.jsonl"
    annotate(model, [source], full)
    lines = full.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:15]) + lines[15][:10])  # killed mid-line, progress file lost
    summary = annotate(model, [source], out, options=AnnotateOptions(resume=True))
    assert summary.already_written == 15
    read = lambda path: [json.loads(line) for line in path.read_text("utf8").splitlines()]  # noqa: E731
    assert_same_records(read(out), read(full))
