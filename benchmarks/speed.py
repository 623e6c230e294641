"""Prediction speed and peak memory, in characters per second with `nlp.pipe`.

    python -m benchmarks.speed [MODEL ...] [--crfsuite MODEL.pkl] [--texts FILE.jsonl]
        [--batch-size 64] [--repeats 3] [--threads 1,2] [--json OUT.json]

MODEL is a pipeline path or package, or a training config (`.cfg`), whose
pipeline is measured untrained, with the CCKS2019 labels: prediction cost
does not depend on the weights, so a config's speed needs no training run
(e.g. `configs/cpu_default.cfg configs/cpu_accuracy.cfg`). Without any
MODEL, the `crf_ner` factory default is measured the same way. Texts default to the
CCKS2019 test set in ../shared, else the demo dev set. Each (model, thread
count) runs in a fresh process with torch and BLAS limited to that many
threads; it prints the best of `repeats` runs and the process's peak resident
memory after predicting (model loading included: that is what a service pays).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

from benchmarks.common import ROOT, command_line, provenance

CCKS_TEST = ROOT.parent / "shared" / "corpora" / "ccks2019" / "raw" / "subtask1_test_set_with_answer.json"
LABELS = ["解剖部位", "疾病和诊断", "药物", "实验室检验", "手术", "影像检查"]
FACTORY_DEFAULT = "crf_ner-factory-default"


def load_texts(path: Optional[Path]):
    if path is None:
        path = CCKS_TEST if CCKS_TEST.exists() else ROOT / "assets" / "demo" / "dev.jsonl"
    texts = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        if line.strip():
            obj = json.loads(line)
            texts.append(obj.get("originalText") or obj["text"])
    return path, texts


def load_predictor(model: str):
    """Something with .pipe(texts) -> docs with .ents."""
    import spacy
    from spacy.training import Example

    def untrained(nlp):
        nlp.initialize(lambda: [Example.from_dict(nlp.make_doc("口服阿司匹林"), {"entities": [(2, 6, label)]}) for label in LABELS])
        return nlp

    if model == FACTORY_DEFAULT:
        nlp = spacy.blank("zh")
        nlp.add_pipe("crf_ner")
        return untrained(nlp)
    if model.endswith(".cfg"):
        return untrained(spacy.util.load_model_from_config(spacy.util.load_config(model, interpolate=True), auto_fill=True))
    if model.endswith(".pkl"):
        from benchmarks.crfsuite_baseline import CharCRF

        crf, tokenizer = CharCRF.from_disk(Path(model)), spacy.blank("zh")
        return type("CRFPipeline", (), {"pipe": lambda self, texts, batch_size=64: crf.pipe(tokenizer.pipe(texts))})()
    return spacy.load(model)


def measure(model: str, texts: List[str], batch_size: int, repeats: int) -> dict:
    """In this process: load, warm up, best of `repeats` timed passes."""
    predictor = load_predictor(model)
    list(predictor.pipe(texts[:32], batch_size=batch_size))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in predictor.pipe(texts, batch_size=batch_size):
            pass
        best = min(best, time.perf_counter() - start)
    n_chars = sum(len(t) for t in texts)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"chars_per_second": round(n_chars / best), "seconds": round(best, 3), "peak_rss_mb": round(peak_mb)}


def run_isolated(model: str, threads: int, args) -> dict:
    env = {**os.environ, **{v: str(threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    command = [sys.executable, "-m", __spec__.name, "--worker", model, "--threads", str(threads), "--batch-size", str(args.batch_size),
               "--repeats", str(args.repeats)] + (["--texts", str(args.texts)] if args.texts else [])
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"measuring {model} on {threads} threads failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--crfsuite", help="a CharCRF pickle from benchmarks.accuracy")
    parser.add_argument("--texts", type=Path)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        import torch

        torch.set_num_threads(int(args.threads))
        _, texts = load_texts(args.texts)
        print(json.dumps(measure(args.worker, texts, args.batch_size, args.repeats)))
        return
    models = args.models + ([args.crfsuite] if args.crfsuite else []) or [FACTORY_DEFAULT]
    source, texts = load_texts(args.texts)
    n_chars = sum(len(t) for t in texts)
    print(f"texts: {source.name}, {len(texts)} docs, {n_chars:,} chars; batch {args.batch_size}; best of {args.repeats}")
    rows = []
    for model in models:
        for threads in map(int, args.threads.split(",")):
            row = {"model": model, "threads": threads, "batch_size": args.batch_size, **run_isolated(model, threads, args)}
            rows.append(row)
            print(f"{model}  threads {threads}: {row['chars_per_second']:,} chars/s ({row['seconds']} s), peak RSS {row['peak_rss_mb']} MB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        summary = {"command": command_line(__spec__.name, argv), **provenance(), "texts": os.path.relpath(source, ROOT), "docs": len(texts), "chars": n_chars, "repeats": args.repeats, "rows": rows}
        args.json.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
