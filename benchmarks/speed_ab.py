"""A/B prediction speed of code versions or models, interleaved in one run.

    python -m benchmarks.speed_ab VARIANT VARIANT ... [--texts FILE.jsonl] [--threads 1,2]
        [--rounds 5] [--batch-size 64] [--json OUT.json]

A VARIANT is `label=MODEL` (the working tree's code) or `label=MODEL@REV`
(the code of git revision REV, checked out into a temporary worktree and put
first on the worker's PYTHONPATH). `MODEL+int8` measures the experiment of
int8 dynamic quantisation (torch.ao `quantize_dynamic`) of the encoder's
GRU/LSTM and linear layers after loading MODEL. Every round runs each variant once, in a
fresh process, in turn; a variant's figure is the median of its rounds. On a
shared machine whose speed drifts by tens of percent within minutes, only
figures taken this way, side by side, can be compared.

Each worker also returns a digest of the entities it predicted: variants with
the same digest predicted identical entities (start, end, label) on every
text, which is what an exact speed lever must keep. The report prints, per
variant, whether its entities equal the first variant's. With `--gold
DOCBIN` the texts are the gold docs' and each variant's exact-match entity F1
is reported too: what an approximate lever costs.
"""
import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from benchmarks.common import ROOT, command_line, provenance
from benchmarks.speed import load_predictor, load_texts


def quantized(nlp):
    """The experiment: int8 dynamic quantisation of the torch encoder layers
    that `quantize_dynamic` supports (GRU/LSTM, nn.Linear; not the attention's
    packed input projection, which is a bare parameter)."""
    import torch

    for node in nlp.get_pipe("crf_ner").model.walk():
        for shim in node.shims:
            module = getattr(shim, "module", None)
            if isinstance(module, torch.nn.Module) and module.__class__.__name__ == "SequenceEncoderModule":
                torch.ao.quantization.quantize_dynamic(module, {torch.nn.GRU, torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return nlp


def measure(model: str, texts: List[str], batch_size: int, gold=None) -> dict:
    predictor = quantized(load_predictor(model[: -len("+int8")])) if model.endswith("+int8") else load_predictor(model)
    list(predictor.pipe(texts[:32], batch_size=batch_size))
    digest = hashlib.sha256()
    start = time.perf_counter()
    docs = list(predictor.pipe(texts, batch_size=batch_size))
    seconds = time.perf_counter() - start
    for doc in docs:
        digest.update(json.dumps([[e.start_char, e.end_char, e.label_] for e in doc.ents]).encode())
    import spacy_medner

    f1 = {}
    if gold is not None:
        from benchmarks.scoring import entity_set, score

        f1 = {"f": round(100 * score(entity_set(gold), entity_set(docs))["f"], 2)}
    return {**f1,
        "code": str(Path(spacy_medner.__file__).parent),
        "chars_per_second": round(sum(map(len, texts)) / seconds),
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "entities": sum(len(doc.ents) for doc in docs),
        "digest": digest.hexdigest()[:16],
    }


def read_gold(path: Path):
    import spacy
    from spacy.tokens import DocBin

    return list(DocBin().from_disk(path).get_docs(spacy.blank("zh").vocab))


def parse_variant(text: str):
    label, _, target = text.partition("=")
    if not label or not target:
        raise argparse.ArgumentTypeError(f"variant {text!r}: use label=MODEL or label=MODEL@REV")
    model, _, rev = target.partition("@")
    return label, model, rev or None


def checkout(rev: str, into: Path) -> Path:
    path = into / rev.replace("/", "_")
    subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=ROOT, check=True, capture_output=True)
    return path


def run_worker(model: str, code: Optional[Path], threads: int, args) -> dict:
    env = {**os.environ, **{v: str(threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    # The variant's code first on the path. The worker runs as a script from a
    # neutral folder, so neither the working directory nor `-m` puts this
    # checkout ahead of it; it reports which spacy_medner it imported.
    env["PYTHONPATH"] = os.pathsep.join(([str(code)] if code else []) + [str(ROOT)])
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", model, "--threads", str(threads), "--batch-size", str(args.batch_size)]
    if args.texts:
        command += ["--texts", str(args.texts.resolve())]
    if args.gold:
        command += ["--gold", str(args.gold.resolve())]
    base, suffix = (model[: -len("+int8")], "+int8") if model.endswith("+int8") else (model, "")
    if Path(base).exists():
        command[3] = str(Path(base).resolve()) + suffix
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if result.returncode != 0:
        raise SystemExit(f"measuring {model} ({code or 'working tree'}) on {threads} threads failed:\n{result.stderr[-3000:]}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    expected = Path(code or ROOT).resolve() / "spacy_medner"
    if Path(row["code"]).resolve() != expected:
        raise SystemExit(f"the worker for {model} imported spacy_medner from {row['code']}, not {expected}")
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", type=parse_variant)
    parser.add_argument("--texts", type=Path)
    parser.add_argument("--gold", type=Path, help="a DocBin: its texts are measured and its entities score each variant")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        import torch

        torch.set_num_threads(int(args.threads))
        gold = read_gold(args.gold) if args.gold else None
        texts = [doc.text for doc in gold] if gold else load_texts(args.texts)[1]
        print(json.dumps(measure(args.worker, texts, args.batch_size, gold)))
        return
    if len(args.variants) < 2:
        parser.error("give at least two variants")
    source, texts = (args.gold, [d.text for d in read_gold(args.gold)]) if args.gold else load_texts(args.texts)
    n_chars = sum(map(len, texts))
    print(f"texts: {source.name}, {len(texts)} docs, {n_chars:,} chars; batch {args.batch_size}; {args.rounds} interleaved rounds")
    rows = []
    with tempfile.TemporaryDirectory(prefix="speed_ab_") as tmp:
        codes: Dict[str, Optional[Path]] = {}
        try:
            for _, _, rev in args.variants:
                if rev and rev not in codes:
                    codes[rev] = checkout(rev, Path(tmp))
            for threads in map(int, args.threads.split(",")):
                runs: Dict[str, List[dict]] = {label: [] for label, _, _ in args.variants}
                for _ in range(args.rounds):
                    for label, model, rev in args.variants:
                        runs[label].append(run_worker(model, codes.get(rev), threads, args))
                reference = runs[args.variants[0][0]][0]["digest"]
                base = None
                for label, model, rev in args.variants:
                    speeds = [r["chars_per_second"] for r in runs[label]]
                    median = statistics.median(speeds)
                    base = base or median
                    digests = {r["digest"] for r in runs[label]}
                    row = {
                        "variant": label, "model": model, "code": rev or "working tree", "threads": threads,
                        "chars_per_second": round(median), "rounds": speeds, "speedup": round(median / base, 3),
                        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[label]),
                        "entities": runs[label][0]["entities"], "same_entities": digests == {reference},
                        **({"f": runs[label][0]["f"]} if "f" in runs[label][0] else {}),
                    }
                    rows.append(row)
                    print(
                        f"threads {threads}  {label:<24} {row['chars_per_second']:>8,} chars/s  x{row['speedup']:.2f}  "
                        f"peak {row['peak_rss_mb']} MB  entities {row['entities']}  " + (f"F1 {row['f']}  " if "f" in row else "") +
                        f"{'identical' if row['same_entities'] else 'DIFFERENT'}  rounds {speeds}"
                    )
        finally:
            for path in codes.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        summary = {
            "command": command_line(__spec__.name, argv), **provenance(), "texts": source.name, "docs": len(texts),
            "chars": n_chars, "rounds": args.rounds, "batch_size": args.batch_size, "rows": rows,
        }
        args.json.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
