"""What entity probabilities cost, and how well calibrated they are.

    python -m benchmarks.entity_scores speed MODEL [--texts FILE.jsonl] [--rounds 5] [--threads 2] [--json OUT.json]
    python -m benchmarks.entity_scores calibration MODEL DEV.spacy TEST.spacy --corpus NAME [--json OUT.json] [--plots DIR]

`speed` times `nlp.pipe` (batch 64) over the texts with the span group off
(`spans_key = null`: Viterbi only) and on (entity probabilities: one more
forward-backward pass), alternating the two in each round, and reports the
median chars/s of each and their ratio. It checks that both give the same
`doc.ents` first. MODEL may be a training config, measured untrained as in
benchmarks.speed (cost does not depend on the weights).

`calibration` fits the temperature on DEV (one for all labels, and one per
label), then scores TEST's entities with the raw model, the global
temperature and the per-label temperatures: ECE (10 bins), Brier, NLL and
the share to review for 98% (and 95%) precision on the rest. Temperature changes no
entity, so P/R/F is the raw model's throughout.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks.common import ROOT, command_line, provenance


def measure_speed(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from benchmarks.speed import load_predictor, load_texts

    texts_path, texts = load_texts(args.texts)
    nlp = load_predictor(args.model)
    pipe = nlp.get_pipe("crf_ner")
    n_chars = sum(map(len, texts))
    settings = {"viterbi_only": None, "with_scores": "crf_ner"}

    def run(key):
        pipe.spans_key = key
        start = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=64))
        return time.perf_counter() - start, docs

    _, plain = run(None)
    _, scored = run("crf_ner")
    if [[(e.start, e.end, e.label_) for e in d.ents] for d in plain] != [[(e.start, e.end, e.label_) for e in d.ents] for d in scored]:
        raise SystemExit("entities differ with scores on: a bug, not a speed difference")
    times = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, key in settings.items():
            times[name].append(run(key)[0])
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {
        "kind": "entity_scores_speed",
        "model": args.model,
        "texts": str(texts_path.relative_to(ROOT.parent)) if texts_path.is_relative_to(ROOT.parent) else str(texts_path),
        "n_texts": len(texts),
        "n_chars": n_chars,
        "threads": args.threads,
        "rounds": args.rounds,
        "chars_per_s": {name: n_chars / m for name, m in medians.items()},
        "time_ratio": medians["with_scores"] / medians["viterbi_only"],
        "all_times_s": times,
    }


def measure_calibration(args) -> dict:
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    from spacy_medner.calibration import (
        EntityOutcomes, calibrate, plot, reliability_bins, review_share, summary, threshold_curve,
    )

    nlp = spacy.load(args.model)

    def examples(path):
        return [Example(nlp.make_doc(d.text), d) for d in DocBin().from_disk(path).get_docs(nlp.vocab)]

    fit = calibrate(EntityOutcomes(nlp, examples(args.dev)), per_label=True)
    test = EntityOutcomes(nlp, examples(args.test))
    rows = {}
    for name, temperatures in (
        ("raw", None),
        ("global", {label: fit["temperature"] for label in set(test.labels)}),
        ("per_label", fit["label_temperatures"]),
    ):
        if temperatures is None:
            probs = test.probabilities(1.0)
        else:
            probs = test.probabilities(fit["temperature"])
            for label, t in temperatures.items():
                of_label = test.labels == label
                probs[of_label] = test.probabilities(t)[of_label]
        rows[name] = {
            **summary(probs, test.correct),
            "review_share_98": review_share(probs, test.correct),
            "review_share_95": review_share(probs, test.correct, precision=0.95),
        }
        if args.plots:
            metrics = {
                **rows[name],
                "reliability": reliability_bins(probs, test.correct),
                "threshold_curve": threshold_curve(probs, test.correct, test.n_gold),
            }
            folder = Path(args.plots) / f"{args.corpus}-{name}"
            folder.mkdir(parents=True, exist_ok=True)
            plot(metrics, folder, title=f"{args.corpus} test, {name}")
    return {
        "kind": "entity_calibration",
        "corpus": args.corpus,
        "model": args.model,
        "temperature": fit["temperature"],
        "label_temperatures": fit["label_temperatures"],
        "dev": {"n_entities": fit["n_entities"], "before": fit["before"], "after": fit["after"], "after_per_label": fit["after_per_label"]},
        "test": {"n_entities": int(len(test.correct)), "n_gold": test.n_gold, "precision": float(test.correct.mean()), **rows},
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    speed = sub.add_parser("speed")
    speed.add_argument("model")
    speed.add_argument("--texts", type=Path, default=None)
    speed.add_argument("--rounds", type=int, default=5)
    speed.add_argument("--threads", type=int, default=2)
    speed.add_argument("--json", type=Path, default=None)
    calibration = sub.add_parser("calibration")
    calibration.add_argument("model")
    calibration.add_argument("dev", type=Path)
    calibration.add_argument("test", type=Path)
    calibration.add_argument("--corpus", required=True)
    calibration.add_argument("--json", type=Path, default=None)
    calibration.add_argument("--plots", type=Path, default=None)
    args = parser.parse_args(argv)
    result = measure_speed(args) if args.what == "speed" else measure_calibration(args)
    result["command"] = command_line(__spec__.name, argv)
    result.update(provenance())
    print(json.dumps({k: v for k, v in result.items() if k != "all_times_s"}, indent=2, ensure_ascii=False))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf8")


if __name__ == "__main__":
    main()
