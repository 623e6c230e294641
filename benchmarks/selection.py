"""Judge model-selection rules on dev alone: keep the best evaluation, or the last.

    python -m benchmarks.selection CORPUS --seeds 3,4 [--system crf_ner] [--every 300]
        [--halvings 1000] [--models training/bench] [--data corpus/bench] [--output benchmarks/results]

The runs must have been trained by `python -m benchmarks.accuracy CORPUS --systems
SYSTEM --seed N --checkpoint-every K`, which saves every K steps. Each
checkpoint is scored once on every dev record. Then the dev split is halved at
random, --halvings times: each rule picks a checkpoint by its F1 on one half,
and the pick is scored on the other half (and the other way round). The
held-out half is what a test set would see, so a rule that picks dev noise
scores no better there than one that ignores dev. The test split is never read.

Rules:
- best of every --every steps (benchmarks.accuracy's eval frequency): what it keeps;
- best of every checkpoint (every K steps: more evaluations to choose from, and more noise to pick);
- last: the final checkpoint, which ignores dev.

Writes <output>/<corpus>/selection.json (benchmarks.report adds it to BENCHMARKS.md).
"""
import argparse
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy
import spacy
from spacy.tokens import DocBin

from benchmarks.common import ROOT, command_line, provenance
from benchmarks.systems import STEPS, SYSTEMS, seeded
from spacy_medner.corpora.build import SOURCE_KEY

# counts[checkpoint, record] = (correct, predicted, gold) exact-match entities
Counts = numpy.ndarray


def record_counts(gold_docs: Sequence, predicted_docs: Sequence) -> numpy.ndarray:
    """(records, 3): correct, predicted and gold entities of each dev record.

    The converters cut long records into segments (one Doc each, with the record
    id in user_data); the segments of a record are summed, so that a halving
    never puts part of a record on each side."""
    records = [(doc.user_data.get(SOURCE_KEY) or {}).get("id", i) for i, doc in enumerate(gold_docs)]
    row_of = {record: row for row, record in enumerate(dict.fromkeys(records))}
    counts = numpy.zeros((len(row_of), 3), dtype=numpy.int64)
    for record, gold, predicted in zip(records, gold_docs, predicted_docs):
        g = {(e.start_char, e.end_char, e.label_) for e in gold.ents}
        p = {(e.start_char, e.end_char, e.label_) for e in predicted.ents}
        counts[row_of[record]] += (len(g & p), len(p), len(g))
    return counts


def f1(counts: numpy.ndarray) -> numpy.ndarray:
    """Micro F1 from summed (..., 3) counts: 2·correct / (predicted + gold)."""
    correct, predicted, gold = counts[..., 0], counts[..., 1], counts[..., 2]
    total = predicted + gold
    return numpy.where(total > 0, 2 * correct / numpy.maximum(total, 1), 0.0)


def held_out_scores(counts: Counts, rules: Dict[str, List[int]], halvings: int, seed: int = 0) -> Dict[str, numpy.ndarray]:
    """For each rule (the checkpoint indices it may choose from; the best on the
    selection half is kept, ties going to the later checkpoint), the F1 of its
    pick on the held-out half, for each of 2 · halvings (selection, held-out) pairs."""
    n_records = counts.shape[1]
    rng = numpy.random.RandomState(seed)
    scores: Dict[str, List[float]] = {rule: [] for rule in rules}
    for _ in range(halvings):
        in_first = numpy.zeros(n_records, dtype=bool)
        in_first[rng.permutation(n_records)[: n_records // 2]] = True
        for select, hold in ((in_first, ~in_first), (~in_first, in_first)):
            selection_f = f1(counts[:, select].sum(axis=1))
            held_f = f1(counts[:, hold].sum(axis=1))
            for rule, candidates in rules.items():
                # On a tie spaCy saves the later evaluation as model-best; max() keeps the first it meets, hence reversed.
                best = max(reversed(candidates), key=lambda c: selection_f[c])
                scores[rule].append(held_f[best])
    return {rule: numpy.asarray(values) for rule, values in scores.items()}


def checkpoint_steps(folder: Path) -> List[int]:
    steps = sorted(int(p.name[len("step"):]) for p in folder.glob("step*") if p.name[len("step"):].isdigit())
    if not steps:
        raise FileNotFoundError(f"no checkpoints in {folder}: train with `python -m benchmarks.accuracy ... --checkpoint-every N`")
    return steps


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--seeds", required=True, help="comma-separated seeds of runs trained with --checkpoint-every")
    # Checkpoints are saved by the rows trained for --steps (benchmarks.accuracy, --checkpoint-every).
    parser.add_argument("--system", default="crf_ner", choices=[name for name, s in SYSTEMS.items() if s.config and s.schedule == STEPS])
    parser.add_argument("--every", type=int, default=300, help="the eval frequency whose 'best of' rule benchmarks.accuracy applies")
    parser.add_argument("--halvings", type=int, default=1000)
    parser.add_argument("--models", type=Path, default=ROOT / "training" / "bench")
    parser.add_argument("--data", type=Path, default=ROOT / "corpus" / "bench")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    started = provenance()
    nlp = spacy.blank("zh")
    dev = list(DocBin().from_disk(args.data / args.corpus / "dev.spacy").get_docs(nlp.vocab))
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        folder = args.models / args.corpus / seeded(args.system, seed) / "checkpoints"
        steps = checkpoint_steps(folder)
        counts = numpy.stack([record_counts(dev, spacy.load(folder / f"step{step}").pipe(d.text for d in dev)) for step in steps])
        rules = {
            f"best of every {args.every} steps": [i for i, s in enumerate(steps) if s % args.every == 0],
            f"best of every {steps[0]} steps": list(range(len(steps))),
            "last": [len(steps) - 1],
        }
        held = held_out_scores(counts, rules, args.halvings)
        last = held["last"]
        runs.append({
            "seed": seed, "steps": steps, "dev_f": dict(zip(map(str, steps), f1(counts.sum(axis=1)).round(4).tolist())),
            "held_out_f": {rule: round(float(v.mean()), 4) for rule, v in held.items()},
            # paired with 'last' on the same halves: how often the rule's pick did better, and worse
            "against_last": {rule: {"better": round(float((v > last).mean()), 3), "worse": round(float((v < last).mean()), 3)}
                             for rule, v in held.items() if rule != "last"},
        })
        print(f"seed {seed}: dev F1 by step " + ", ".join(f"{s}: {100 * f:.2f}" for s, f in runs[-1]["dev_f"].items()))
        for rule, f in runs[-1]["held_out_f"].items():
            print(f"  {rule}: held-out half F1 {100 * f:.2f}")
    result = {"corpus": args.corpus, "selection_of": args.system, "command": command_line(__spec__.name, argv), **started,
              "dev_records": int(counts.shape[1]), "dev_segments": len(dev), "halvings": args.halvings, "runs": runs}
    out = args.output / args.corpus / "selection.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
