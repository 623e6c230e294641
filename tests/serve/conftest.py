"""A small trained pipeline and a real server in a subprocess, on a free
loopback port, for the HTTP and browser tests."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from ..conftest import ROOT, TRAIN_DATA

CHAR_EMBED = {"@architectures": "spacy_medner.CharEmbed.v1", "width": 32, "bigram_width": 16, "rows": 2000, "bigram_rows": 2000}
ENCODER = {"@architectures": "spacy_medner.SequenceEncoder.v1", "tok2vec": CHAR_EMBED, "rnn": "gru", "rnn_width": 64,
           "attention": None, "residual": False, "dropout": 0.0}


@pytest.fixture(scope="session")
def served_model(tmp_path_factory) -> Path:
    """crf_ner (CharEmbed + BiGRU) overfitted on TRAIN_DATA, saved to disk."""
    import spacy
    from spacy.training import Example
    from thinc.api import fix_random_seed

    fix_random_seed(0)
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config={"model": {"@architectures": "spacy_medner.EntityTagger.v1", "decoder": "crf", "encoder": ENCODER}})
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(60):
        nlp.update(examples, sgd=optimizer, losses={})
    path = tmp_path_factory.mktemp("served") / "model"
    nlp.to_disk(path)
    return path


SCORES_CODE = Path(__file__).resolve().parent / "scores_component.py"


@pytest.fixture(scope="session")
def scored_model(served_model, tmp_path_factory) -> Path:
    """served_model plus a component that gives each entity a fixed probability."""
    import spacy

    from . import scores_component  # noqa: F401  registers test_entity_scores

    nlp = spacy.load(served_model)
    nlp.add_pipe("test_entity_scores")
    path = tmp_path_factory.mktemp("scored") / "model"
    nlp.to_disk(path)
    return path


def same_answer(got, expected, tolerance: float = 1e-3) -> bool:
    """The same entities (offsets, label, text exactly) with scores equal to
    `tolerance`: crf_ner's probabilities differ in their last digits with the
    texts that share a batch, and a service batches texts together."""
    if isinstance(got, dict) and isinstance(expected, dict):
        if set(got) != set(expected):
            return False
        return all(
            abs(got[k] - expected[k]) <= tolerance if k == "score" else same_answer(got[k], expected[k], tolerance)
            for k in got
        )
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(same_answer(g, e, tolerance) for g, e in zip(got, expected))
    return got == expected


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m spacy_medner serve` in a subprocess, stopped on exit."""

    def __init__(self, model: Path, options: List[str], log: Path, env: Optional[dict] = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [sys.executable, "-m", "spacy_medner", "serve", str(model), "--port", str(self.port), "--threads", "1", *options]
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
        self._log_file = open(log, "wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=self._log_file, stderr=subprocess.STDOUT)

    def wait_listening(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the server did not listen within {timeout} s:\n{self.log.read_text()}")

    def wait_ready(self, timeout: float = 120) -> None:
        import httpx

        self.wait_listening()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(self.url + "/healthz").status_code == 200:
                return
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.1)
        raise AssertionError(f"/healthz was not 200 within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


@pytest.fixture(scope="session")
def start_server(served_model, tmp_path_factory) -> Iterator:
    """start_server(*options, env=None, ready=True, model=None) → a Server,
    listening (and with the model loaded when `ready`)."""
    for module in ("fastapi", "uvicorn"):
        pytest.importorskip(module, reason="the serve extra is not installed: pip install -e '.[serve,test]'")
    servers = []

    def start(*options: str, env: Optional[dict] = None, ready: bool = True, model: Optional[Path] = None) -> Server:
        log = tmp_path_factory.mktemp("server") / "server.log"
        server = Server(model or served_model, list(options), log, env)
        servers.append(server)
        server.wait_ready() if ready else server.wait_listening()
        return server

    yield start
    for server in servers:
        server.stop()


# Small limits, so the tests can cross them with small bodies.
LIMITS = ["--max-text-chars", "200", "--max-batch-texts", "8", "--max-body-bytes", "4000"]


@pytest.fixture(scope="session")
def server(start_server) -> Server:
    return start_server(*LIMITS)


@pytest.fixture(scope="session")
def scored_server(start_server, scored_model) -> Server:
    """Entities with probabilities, served by two worker processes."""
    return start_server(*LIMITS, "--code", str(SCORES_CODE), "--workers", "2", model=scored_model)
