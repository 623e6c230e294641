"""`nlp.pipe(texts, n_process=2)` with a crf_ner pipeline: it used to hang for
ever once the parent had predicted with more than one torch thread (forked
workers inherit libgomp's thread team without its threads); the fork hook of
spacy_medner.threads sets one thread in each forked child."""
import json
import os
import signal
import subprocess
import sys

import pytest

from spacy_medner.threads import FORK_THREADS_ENV, THREADS_ENV, cores_share, fork_threads, worker_threads

from .io.trained import sample_texts, trained_pipeline

SCRIPT = r"""
import json, sys
import spacy, torch
torch.set_num_threads(2)  # what a 2-core machine gives by default: the parent forms an OpenMP team
nlp = spacy.load(sys.argv[1])
texts = json.loads(sys.argv[2])
one = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=8)]
two = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=8, n_process=2)]
print(json.dumps({"one": one, "two": two}))
"""


def run_script(*args, timeout=180, script=SCRIPT):
    """Run SCRIPT in its own process group, killed whole (hung workers included) on timeout."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", FORK_THREADS_ENV)}
    process = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_n_process_2_returns_the_entities_of_one_process():
    texts = sample_texts(120)
    try:
        result = run_script(str(trained_pipeline()), json.dumps(texts, ensure_ascii=False))
    except subprocess.TimeoutExpired:
        pytest.fail("nlp.pipe(n_process=2) did not return within 180 s: the forked workers hang")
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(out["two"]) == len(texts)
    assert out["two"] == out["one"]
    assert sum(map(len, out["one"])) > 0  # the pipeline predicts something to compare


def test_thread_counts_and_their_overrides(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv(FORK_THREADS_ENV, raising=False)
    assert cores_share(1, cores=8) == 8
    assert cores_share(3, cores=8) == 2
    assert cores_share(16, cores=8) == 1
    assert worker_threads() == 1
    assert fork_threads() == 1
    monkeypatch.setenv(THREADS_ENV, "3")
    assert worker_threads() == 3
    monkeypatch.setenv(THREADS_ENV, "zero")
    with pytest.raises(ValueError, match=THREADS_ENV):
        worker_threads()
    monkeypatch.setenv(FORK_THREADS_ENV, "0")
    assert fork_threads() == 1  # the hook never raises in a child


def test_forked_workers_may_take_more_threads_when_the_parent_ran_one():
    """annotate --n-process pins the parent to one thread, so that its workers can
    take more: no libgomp team was formed before the fork."""
    script = SCRIPT.replace("torch.set_num_threads(2)", "torch.set_num_threads(1); import os; os.environ['SPACY_MEDNER_FORK_THREADS'] = '2'")
    result = run_script(str(trained_pipeline()), json.dumps(sample_texts(40), ensure_ascii=False), script=script)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["two"] == out["one"]
