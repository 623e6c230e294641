"""Prediction speed of a pipeline with nlp.pipe, in characters per second.

    python benchmarks/speed.py [MODEL] [--texts FILE.jsonl] [--batch-size 64] [--repeats 3]

MODEL is a pipeline path or package; without it, the `crf_ner` factory
default (untrained, labels of CCKS2019) is measured. Texts default to the
CCKS2019 test set in ../shared, else the demo dev set. Prints one line per
thread count (1 and 2), the best of `repeats` runs.
"""
import argparse
import json
import time
from pathlib import Path

import spacy
import torch
from spacy.training import Example

ROOT = Path(__file__).resolve().parents[1]
CCKS_TEST = ROOT.parent / "shared" / "corpora" / "ccks2019" / "raw" / "subtask1_test_set_with_answer.json"
LABELS = ["解剖部位", "疾病和诊断", "药物", "实验室检验", "手术", "影像检查"]


def load_texts(path: Path):
    if path is None:
        path = CCKS_TEST if CCKS_TEST.exists() else ROOT / "assets" / "demo" / "dev.jsonl"
    texts = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        if line.strip():
            obj = json.loads(line)
            texts.append(obj.get("originalText") or obj["text"])
    return path, texts


def factory_default():
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner")
    nlp.initialize(lambda: [Example.from_dict(nlp.make_doc("口服阿司匹林"), {"entities": [(2, 6, label)]}) for label in LABELS])
    return nlp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?")
    parser.add_argument("--texts", type=Path)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    nlp = spacy.load(args.model) if args.model else factory_default()
    source, texts = load_texts(args.texts)
    n_chars = sum(len(t) for t in texts)
    print(f"model: {args.model or 'crf_ner factory default (untrained)'}; texts: {source.name}, {len(texts)} docs, {n_chars:,} chars; batch {args.batch_size}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        list(nlp.pipe(texts[:32], batch_size=args.batch_size))  # warm-up
        best = min(_timed(nlp, texts, args.batch_size) for _ in range(args.repeats))
        print(f"threads {threads}: {n_chars / best:,.0f} chars/s ({best:.2f} s)")


def _timed(nlp, texts, batch_size) -> float:
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
