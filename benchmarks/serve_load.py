"""Load on the HTTP service over loopback, with and without micro-batching,
beside `nlp.pipe` on the same texts in one process.

    python -m benchmarks.serve_load [MODEL] [--texts FILE.jsonl] [--requests 240]
        [--batch-requests 60] [--batch-texts 8] [--concurrency 1,8,32]
        [--modes batched,unbatched] [--threads 1] [--rounds 1] [--json OUT.json]

MODEL is a pipeline path or package, or a training config (`.cfg`), served
untrained with the CCKS2019 labels (prediction cost does not depend on the
weights); default `configs/cpu_default.cfg`. Texts default to the CCKS2019
test set in ../shared, else the demo dev set.

Each mode is one `python -m spacy_medner serve` subprocess, all started
before the first measurement and measured in turn cell by cell (mode A, mode
B, next cell), so a change in the machine's load hits both alike:
  batched         --batch-wait-ms 5 (the default)
  batched-nowait  --batch-wait-ms 0 (only requests that queue while the model runs)
  unbatched       --no-batching (each request its own model call)
A cell is N requests from C client threads, each with its own keep-alive
connection: single-text requests `{"text"}` and batch requests of
`--batch-texts` texts `{"texts"}`. It reports requests/s, characters/s, p50
and p99 latency, and errors: a non-200 answer, or entities that differ from
`nlp.pipe`'s in this process (offsets and labels exactly, scores to 1e-3,
since crf_ner's probabilities move in their last digits with the texts that
share a batch), so the figures are of correct answers only.
The client shares the CPU with the server, as it would with an app on the
same host.
"""
import argparse
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
CCKS_TEST = ROOT.parent / "shared" / "corpora" / "ccks2019" / "raw" / "subtask1_test_set_with_answer.json"
DEMO_DEV = ROOT / "assets" / "demo" / "dev.jsonl"
LABELS = ["解剖部位", "疾病和诊断", "药物", "实验室检验", "手术", "影像检查"]
MODES = {"batched": ["--batch-wait-ms", "5"], "batched-nowait": ["--batch-wait-ms", "0"], "unbatched": ["--no-batching"]}


def load_texts(path) -> Tuple[Path, List[str]]:
    if path is None:
        path = CCKS_TEST if CCKS_TEST.exists() else DEMO_DEV
    texts = []
    for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
        if line.strip():
            record = json.loads(line)
            texts.append(record.get("originalText") or record["text"])
    return Path(path), texts


def prepare_model(model: str, folder: Path) -> str:
    """A servable pipeline: `model` itself, or a config's pipeline untrained."""
    if not model.endswith(".cfg"):
        return model
    import spacy
    from spacy.training import Example

    nlp = spacy.util.load_model_from_config(spacy.util.load_config(model, interpolate=True), auto_fill=True)
    nlp.initialize(lambda: [Example.from_dict(nlp.make_doc("口服阿司匹林"), {"entities": [(2, 6, label)]}) for label in LABELS])
    path = folder / Path(model).stem
    nlp.to_disk(path)
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, model: str, mode: str, threads: int, log: Path) -> None:
        self.mode, self.port = mode, free_port()
        self.log = log
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        command = [sys.executable, "-m", "spacy_medner", "serve", model, "--port", str(self.port), "--threads", str(threads),
                   "--max-text-chars", "1000000", "--max-body-bytes", "100000000", "--log-level", "warning", *MODES[mode]]
        self._out = open(log, "wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the {self.mode} server exited:\n{self.log.read_text()[-3000:]}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the {self.mode} server was not ready within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()


def same_answer(got, expected, tolerance: float = 1e-3) -> bool:
    """Same entities, scores equal to `tolerance` (see the module docstring)."""
    if isinstance(got, dict) and isinstance(expected, dict):
        return set(got) == set(expected) and all(
            abs(got[k] - expected[k]) <= tolerance if k == "score" else same_answer(got[k], expected[k], tolerance) for k in got
        )
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(same_answer(g, e, tolerance) for g, e in zip(got, expected))
    return got == expected


def run_cell(port: int, bodies: List[Tuple[bytes, int, object]], concurrency: int) -> Dict:
    """Send every body once from `concurrency` threads; latencies and answers."""
    n = len(bodies)
    latencies, answers = [0.0] * n, [None] * n
    counter = itertools.count()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            i = next(counter)  # itertools.count is atomic under the GIL
            if i >= n:
                break
            start = time.perf_counter()
            try:
                connection.request("POST", "/v1/entities", bodies[i][0], {"Content-Type": "application/json"})
                response = connection.getresponse()
                answers[i] = (response.status, response.read())
            except (OSError, http.client.HTTPException) as err:
                answers[i] = (None, str(err).encode())
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            latencies[i] = time.perf_counter() - start
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    errors = sum(1 for (status, data), body in zip(answers, bodies) if status != 200 or not same_answer(json.loads(data), body[2]))
    ordered = sorted(latencies)
    return {
        "requests": n, "seconds": round(wall, 3), "requests_per_second": round(n / wall, 1),
        "chars_per_second": round(sum(b[1] for b in bodies) / wall),
        "p50_ms": round(1000 * statistics.median(ordered), 1), "p99_ms": round(1000 * ordered[min(n - 1, int(0.99 * n))], 1),
        "errors": errors,
    }


def pipe_baseline(model: str, texts: List[str], threads: int) -> Tuple[Dict, List[dict]]:
    """`nlp.pipe` in this process on the same texts (batch 64), and one text at
    a time, with the servers' thread count; each text's output fields (entities, and mentions for span_ner) are the reference."""
    import spacy
    import torch

    import spacy_medner  # noqa: F401
    from spacy_medner.io.entities import doc_result, scoring_group

    torch.set_num_threads(threads)
    nlp = spacy.load(model)
    list(nlp.pipe(texts[:32]))
    chars = sum(map(len, texts))
    start = time.perf_counter()
    group = scoring_group(nlp)
    reference = [doc_result(doc, group) for doc in nlp.pipe(texts, batch_size=64)]
    batched = time.perf_counter() - start
    start = time.perf_counter()
    for text in texts:
        doc_result(nlp(text), group)
    alone = time.perf_counter() - start
    figures = {"pipe_batch64_chars_per_second": round(chars / batched), "one_at_a_time_chars_per_second": round(chars / alone),
               "one_at_a_time_texts_per_second": round(len(texts) / alone, 1)}
    return figures, reference


def bodies_for(texts: List[str], reference: List[dict], kind: str, n: int, batch_texts: int) -> List[Tuple[bytes, int, object]]:
    bodies = []
    for i in range(n):
        if kind == "single":
            j = i % len(texts)
            bodies.append((json.dumps({"text": texts[j]}, ensure_ascii=False).encode(), len(texts[j]), reference[j]))
        else:
            ids = [(i * batch_texts + k) % len(texts) for k in range(batch_texts)]
            body = json.dumps({"texts": [texts[j] for j in ids]}, ensure_ascii=False).encode()
            bodies.append((body, sum(len(texts[j]) for j in ids), {"results": [reference[j] for j in ids]}))
    return bodies


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(ROOT / "configs" / "cpu_default.cfg"))
    parser.add_argument("--texts", type=Path)
    parser.add_argument("--requests", type=int, default=240, help="single-text requests per cell")
    parser.add_argument("--batch-requests", type=int, default=60, help="batch requests per cell")
    parser.add_argument("--batch-texts", type=int, default=8, help="texts per batch request")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--modes", default="batched,unbatched", help=f"any of {','.join(MODES)}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each server (and of nlp.pipe)")
    parser.add_argument("--rounds", type=int, default=1, help="measure every cell this many times, keep the best requests/s")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"--modes: unknown {unknown}; choose from {list(MODES)}")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    # A SIGTERM unwinds like Ctrl+C, so the servers are stopped and the temporary model removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    source, texts = load_texts(args.texts)
    folder = Path(tempfile.mkdtemp(prefix="serve_load_"))
    try:
        model = prepare_model(args.model, folder)
        servers = [Server(model, mode, args.threads, folder / f"{mode}.log") for mode in modes]
        try:
            for server in servers:
                server.wait_ready()
            baseline, reference = pipe_baseline(model, texts, args.threads)
            print(f"texts: {source.name}, {len(texts)} records, {sum(map(len, texts)):,} chars; model {args.model}; "
                  f"{args.threads} torch thread(s) per server; {os.cpu_count()} cores shared by server and client")
            print(f"nlp.pipe (batch 64): {baseline['pipe_batch64_chars_per_second']:,} chars/s; one text at a time: "
                  f"{baseline['one_at_a_time_chars_per_second']:,} chars/s ({baseline['one_at_a_time_texts_per_second']} texts/s)")
            kinds = {"single": bodies_for(texts, reference, "single", args.requests, args.batch_texts),
                     f"batch of {args.batch_texts}": bodies_for(texts, reference, "batch", args.batch_requests, args.batch_texts)}
            for server in servers:  # warm-up: first requests pay for lazy initialisation
                run_cell(server.port, kinds["single"][:16], 4)
            rows = []
            for kind, bodies in kinds.items():
                for concurrency in concurrencies:
                    best: Dict[str, Dict] = {}
                    for _ in range(args.rounds):
                        for server in servers:
                            cell = run_cell(server.port, bodies, concurrency)
                            if server.mode not in best or cell["requests_per_second"] > best[server.mode]["requests_per_second"]:
                                best[server.mode] = cell
                    for mode in modes:
                        rows.append({"mode": mode, "request": kind, "concurrency": concurrency, **best[mode]})
        finally:
            for server in servers:
                server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print()
    print("| request | concurrency | mode | requests/s | chars/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['request']} | {row['concurrency']} | {row['mode']} | {row['requests_per_second']:,} | {row['chars_per_second']:,} "
              f"| {row['p50_ms']} | {row['p99_ms']} | {row['errors']} |")
    if args.json:
        from benchmarks.common import provenance

        result = {"texts": str(source), "model": args.model, "threads": args.threads, "batch_texts": args.batch_texts,
                  "nlp_pipe": baseline, "cells": rows, "provenance": provenance(),
                  "command": " ".join(["python", "-m", "benchmarks.serve_load", *(argv if argv is not None else sys.argv[1:])])}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    if any(row["errors"] for row in rows):
        raise SystemExit("some requests failed or disagreed with nlp.pipe: see the errors column")


if __name__ == "__main__":
    main()
