"""Prediction time against document length (100 to 100,000 characters).

    python -m benchmarks.scaling MODEL [--lengths 100,300,1000,3000,10000,30000,100000]
        [--chars-per-length 60000] [--threads 2] [--busy] [--plot benchmarks/scaling.png] [--json OUT.json]

With `--busy` every length is measured again while another process trains a
torch model (benchmarks.annotate_throughput.BUSY), as on a hospital server
that is rarely idle.

Documents of each length are cut from the CCKS2019 test texts joined end to
end (the demo dev set without ../shared), so every length sees the same kind
of text; each length predicts about the same number of characters in total.
Linear cost means a flat characters-per-second line: the BiGRU is linear, and
attention is windowed (attention_window), so no doc pays for its full square.
"""
import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.common import command_line, provenance
from benchmarks.speed import load_predictor, load_texts


def docs_of_length(text: str, length: int, n_chars: int):
    n_docs = max(2, n_chars // length)
    return [text[(i * length) % (len(text) - length):][:length] for i in range(n_docs)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--texts", type=Path)
    parser.add_argument("--lengths", default="100,300,1000,3000,10000,30000,100000")
    parser.add_argument("--chars-per-length", type=int, default=60000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--busy", action="store_true", help="also measure beside a process that trains")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    predictor = load_predictor(args.model)
    _, texts = load_texts(args.texts)
    joined = "".join(texts)
    while len(joined) < 2 * max(map(int, args.lengths.split(","))):
        joined += joined
    list(predictor.pipe(texts[:16]))  # warm-up
    def measure(machine: str):
        rows = []
        for length in map(int, args.lengths.split(",")):
            docs = docs_of_length(joined, length, args.chars_per_length)
            start = time.perf_counter()
            for _ in predictor.pipe(docs, batch_size=args.batch_size):
                pass
            seconds = time.perf_counter() - start
            row = {"machine": machine, "length": length, "docs": len(docs), "ms_per_doc": round(1000 * seconds / len(docs), 3),
                   "chars_per_second": round(len(docs) * length / seconds)}
            rows.append(row)
            print(f"{machine:>5} {length:>7} chars: {row['ms_per_doc']:>10.2f} ms/doc, {row['chars_per_second']:,} chars/s ({len(docs)} docs)")
        return rows

    rows = measure("idle")
    if args.busy:
        from benchmarks.annotate_throughput import beside_a_trainer

        with beside_a_trainer():
            rows += measure("busy")
    summary = {"command": command_line(__spec__.name, argv), **provenance(), "model": args.model, "threads": args.threads, "batch_size": args.batch_size, "rows": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2), encoding="utf8")
    if args.plot:
        plot(rows, args.plot, f"{Path(args.model).name}, {args.threads} threads, batch {args.batch_size}")


def plot(rows, path: Path, title: str) -> None:
    import matplotlib  # bench extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for machine in dict.fromkeys(r.get("machine", "idle") for r in rows):
        mine = [r for r in rows if r.get("machine", "idle") == machine]
        lengths, ms = [r["length"] for r in mine], [r["ms_per_doc"] for r in mine]
        label = "beside a training process" if machine == "busy" else "no other job started"
        left.loglog(lengths, ms, "o-", label=label)
        left.loglog(lengths, [ms[0] * n / lengths[0] for n in lengths], "--", color="grey")
        right.semilogx(lengths, [r["chars_per_second"] for r in mine], "o-", label=label)
    left.set_xlabel("document length (characters)")
    left.set_ylabel("ms per document (dashed: linear from the first point)")
    left.legend()
    right.legend()
    right.set_ylim(bottom=0)
    right.set_xlabel("document length (characters)")
    right.set_ylabel("characters per second")
    fig.suptitle(f"Prediction time against document length ({title})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
