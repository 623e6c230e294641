"""Throughput and memory of `annotate`, and prediction cost against record
length, alone and beside a training process.

    python -m benchmarks.annotate_throughput MODEL [--records 4000] [--engines local,n2,ray]
        [--memory 10000,200000] [--memory-model MODEL2] [--lengths 100,1000,10000,100000] [--busy]
        [--json OUT.json]

- throughput: `annotate` on `--records` demo texts (assets/demo/train.jsonl
  repeated) with one process, `--n-process 2` and Ray with 2 actors;
  records/s and chars/s over the whole run (pipeline loading and, for Ray,
  actor start-up included: what a user waits for), and the peak RSS of each
  worker (sampled every 0.1 s with psutil: the CLI process for one process,
  each forked worker for --n-process, each `_Predictor` actor for Ray).
- memory: peak RSS of a one-process `annotate` run on each of `--memory`
  record counts (e.g. 10,000 and 200,000: 20×); flat means streaming.
- lengths: one record of each length (cut from the demo texts joined), predicted
  whole (`--split-length 0`) and split at sentence ends (the default 2000), as
  ms per record and chars/s; with `--busy`, again while a second process trains
  a crf_ner pipeline with torch's default threads. Linear cost is a flat
  chars/s column. (benchmarks/scaling.py measures 100 to 10,000 characters
  on an idle machine; these rows extend it to 100,000 and to a busy one.)

Figures on a shared 2-core machine are noisy: each is one run, and the
machine's load average at the start is printed beside them.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import psutil

from benchmarks.common import ROOT, command_line, provenance

DEMO = ROOT / "assets" / "demo" / "train.jsonl"


def demo_texts() -> List[str]:
    return [json.loads(line)["text"] for line in DEMO.read_text("utf8").splitlines() if line.strip()]


def write_records(path: Path, n: int) -> int:
    texts = demo_texts()
    chars = 0
    with open(path, "w", encoding="utf8") as file:
        for i in range(n):
            text = texts[i % len(texts)]
            chars += len(text)
            file.write(json.dumps({"id": f"r{i}", "text": text}, ensure_ascii=False) + "\n")
    return chars


class PeakRSS:
    """Peak RSS (MiB) per process, sampled every `interval` s, of the processes `select()` returns."""

    def __init__(self, select: Callable[[], List[psutil.Process]], interval: float = 0.1):
        self.select, self.interval = select, interval
        self.peaks: Dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for process in self.select():
                try:
                    rss = process.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                self.peaks[process.pid] = max(self.peaks.get(process.pid, 0.0), rss)
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def tree(root: psutil.Process) -> Callable[[], List[psutil.Process]]:
    def select() -> List[psutil.Process]:
        try:
            return [root] + root.children(recursive=True)
        except psutil.Error:
            return []
    return select


def run_cli(model: str, source: Path, output: Path, *extra: str) -> Dict:
    command = [sys.executable, "-m", "spacy_medner", "annotate", model, str(source), "--output", str(output), "--overwrite", *extra]
    start = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    with PeakRSS(tree(process)) as rss:
        stdout, stderr = process.communicate()
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"annotate failed: {stderr.strip().splitlines()[-1] if stderr.strip() else process.returncode}")
    main = rss.peaks.get(process.pid, 0.0)
    workers = [v for pid, v in rss.peaks.items() if pid != process.pid]
    return {"seconds": round(seconds, 2), "peak_rss_main_mib": round(main, 1), "peak_rss_workers_mib": [round(v, 1) for v in sorted(workers)]}


def run_ray(model: str, source: Path, output: Path, actors: int) -> Dict:
    import ray

    from spacy_medner.annotate import AnnotateOptions
    from spacy_medner.distributed import annotate_ray

    if not ray.is_initialized():
        ray.init(num_cpus=actors + 1, log_to_driver=False, include_dashboard=False)

    def actors_now() -> List[psutil.Process]:
        found = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info.get("cmdline") or [])
            if "_Predictor" in cmdline:
                found.append(process)
        return found

    start = time.perf_counter()
    with PeakRSS(actors_now) as rss:
        annotate_ray(model, [source], output, options=AnnotateOptions(overwrite=True, id_field="id"), actors=actors)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "peak_rss_workers_mib": [round(v, 1) for v in sorted(rss.peaks.values())]}


def throughput(args, folder: Path) -> List[Dict]:
    source = folder / "records.jsonl"
    chars = write_records(source, args.records)
    rows = []
    for engine in args.engines.split(","):
        if engine == "local":
            result = run_cli(args.model, source, folder / "local.jsonl")
        elif engine.startswith("n"):
            result = run_cli(args.model, source, folder / f"{engine}.jsonl", "--n-process", engine[1:])
        elif engine == "ray":
            result = run_ray(args.model, source, folder / "ray.jsonl", args.actors)
        else:
            raise SystemExit(f"--engines: unknown engine {engine!r} (local, n2, n4, ray)")
        row = {"engine": engine, "records": args.records, "chars": chars, **result,
               "records_per_s": round(args.records / result["seconds"], 1), "chars_per_s": round(chars / result["seconds"])}
        rows.append(row)
        print(f"{engine:>6}: {row['records_per_s']:>8,.1f} records/s {row['chars_per_s']:>9,} chars/s "
              f"({row['seconds']} s; peak RSS main {row.get('peak_rss_main_mib', '-')} MiB, workers {row['peak_rss_workers_mib']} MiB)", flush=True)
    outputs = [[json.loads(line) for line in (folder / f"{r['engine']}.jsonl").read_text("utf8").splitlines()] for r in rows]
    spans = [[[(e["start"], e["end"], e["label"]) for e in row["entities"]] for row in out] for out in outputs]
    gaps = [abs(a.get("score", 0) - b.get("score", 0)) for out in outputs[1:] for x, y in zip(outputs[0], out)
            for a, b in zip(x["entities"], y["entities"])]
    print(f"entities identical across engines: {all(s == spans[0] for s in spans)}; "
          f"largest score difference (batch composition): {max(gaps, default=0):.1e}", flush=True)
    return rows


def memory(args, folder: Path) -> List[Dict]:
    rows = []
    for n in map(int, args.memory.split(",")):
        source = folder / f"memory_{n}.jsonl"
        write_records(source, n)
        result = run_cli(args.memory_model or args.model, source, folder / f"memory_{n}.out.jsonl", "--chunk-size", "1000")
        rows.append({"records": n, "input_mib": round(source.stat().st_size / 2**20, 1), **result})
        print(f"{n:>8,} records ({rows[-1]['input_mib']} MiB in): peak RSS {result['peak_rss_main_mib']} MiB, {result['seconds']} s", flush=True)
        source.unlink()
    return rows


BUSY = r"""
import sys, time, spacy, spacy_medner
from spacy.training import Example
from tests.io.trained import ENCODER  # `python -c` runs with the repository root (cwd) on sys.path
from tests.conftest import TRAIN_DATA
nlp = spacy.blank("zh")
nlp.add_pipe("crf_ner", config={"model": {"@architectures": "spacy_medner.EntityTagger.v1", "decoder": "crf", "encoder": {**ENCODER, "rnn_width": 256}}})
egs = [Example.from_dict(nlp.make_doc(t), {"entities": ents}) for t, ents in TRAIN_DATA] * 8
optimizer = nlp.initialize(lambda: egs)
print("training", flush=True)
while True:
    nlp.update(egs, sgd=optimizer, losses={})
"""


def lengths(args) -> List[Dict]:
    import spacy
    import torch

    import spacy_medner  # noqa: F401
    from spacy_medner.annotate import merge_pieces
    from spacy_medner.corpora.segment import segment
    from spacy_medner.threads import limit_threads, worker_threads

    limit_threads(args.threads or worker_threads(1))
    nlp = spacy.load(args.model)
    joined = "".join(demo_texts())
    while len(joined) < max(map(int, args.lengths.split(","))):
        joined += joined
    list(nlp.pipe(demo_texts()[:16]))  # warm-up

    def predict(text: str, split: int) -> None:
        cuts = segment(text, (), split) if split and len(text) > split else [(0, len(text))]
        docs = list(nlp.pipe((text[s:e] for s, e in cuts), batch_size=64))
        merge_pieces(list(zip(docs, (s for s, _ in cuts))), None)

    def measure(label: str) -> List[Dict]:
        rows = []
        for length in map(int, args.lengths.split(",")):
            text = joined[:length]
            for split in (0, 2000):
                repeats, start = 0, time.perf_counter()
                while True:
                    predict(text, split)
                    repeats += 1
                    if time.perf_counter() - start > args.min_seconds:
                        break
                seconds = (time.perf_counter() - start) / repeats
                row = {"machine": label, "length": length, "split_length": split, "threads": torch.get_num_threads(),
                       "ms_per_record": round(1000 * seconds, 1), "chars_per_s": round(length / seconds)}
                rows.append(row)
                print(f"{label:>5} {length:>7,} chars, split {split:>4}: {row['ms_per_record']:>9,.1f} ms, {row['chars_per_s']:>8,} chars/s", flush=True)
        return rows

    rows = measure("idle")
    if args.busy:
        with beside_a_trainer():
            rows += measure("busy")
    return rows


@contextlib.contextmanager
def beside_a_trainer() -> Iterator[None]:
    """Run the block while another process trains a torch model with torch's
    default threads (BUSY): the busy hospital server of the annotate issue."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    busy = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert busy.stdout.readline().strip() == "training"
        yield
    finally:
        busy.kill()
        busy.wait()


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--engines", default="local,n2,ray", help="Comma-separated: local, nN (--n-process N), ray; empty to skip.")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--memory", default="", help="Record counts for the memory rows, e.g. 10000,200000.")
    parser.add_argument("--memory-model", help="A (faster) pipeline for the memory rows; default MODEL.")
    parser.add_argument("--lengths", default="", help="Record lengths for the length rows, e.g. 100,1000,10000,100000.")
    parser.add_argument("--busy", action="store_true", help="Also measure the lengths beside a training process.")
    parser.add_argument("--threads", type=int, help="Torch threads for the length rows (default: annotate's, 1).")
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    summary = {"command": command_line(__spec__.name if __spec__ else "benchmarks.annotate_throughput", argv), **provenance(),
               "model": args.model, "load_average_at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        if args.engines:
            summary["throughput"] = throughput(args, Path(tmp))
        if args.memory:
            summary["memory"] = memory(args, Path(tmp))
    if args.lengths:
        summary["lengths"] = lengths(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf8")


if __name__ == "__main__":
    main()
