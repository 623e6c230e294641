"""Train and score crf_ner and the baselines on one benchmark corpus.

    python -m benchmarks.accuracy CORPUS [--systems crf_ner,spacy_ner,spacy_ner_cnn,crfsuite] [--steps 900]
        [--eval-frequency 300] [--time-cap SECONDS] [--init-tok2vec pretrain/model-last.bin] [--seed 0]
        [--output benchmarks/results] [--models training/bench] [--data corpus/bench] [--checkpoint-every 100]

Run from the repository root. CORPUS is one of ccks2019, tcm_manual, rocling,
msra, cmeee (read from ../shared) or demo (the embedded demo corpus, for smoke
runs). The systems, what each trains and how its budget is set, are declared
in benchmarks/systems.py:
- the crf_ner rows train their config for --steps steps (warm-up a tenth of
  them, linear decay to zero) and keep the model with the best dev F1; the
  _pretrained ones start from the encoder weights that `spacy pretrain` saved
  (--init-tok2vec; with word features, pretrained with the same encoder);
- spacy_ner: spaCy's transition-based `ner` on crf_ner's encoder, batcher,
  optimizer and schedule (benchmarks/configs/spacy_ner.cfg);
- spacy_ner_cnn: spaCy's default accuracy `ner` config (CNN tok2vec), trained
  for the wall time crf_ner took in the same run (equal training-time budget);
- spacy_ner_cnn_converged: the same config trained as spaCy's defaults say
  (up to 20,000 steps, stopping after 1,600 without a better dev score),
  or at --time-cap seconds if that comes first (the JSON says which stopped it);
- crfsuite: character CRF with ±2 window and bigram features (fixed
  hyper-parameters, no dev selection).
Each test set is scored once, with the dev-selected model. Writes
<output>/<corpus>/<system>.json, which is small, holds no corpus text and is
committed (benchmarks.report builds BENCHMARKS.md from it on any machine), and
keeps the trained models, which are not, under <models>/<corpus>/. --seed N
(not 0) repeats a run with another random seed: <system>.seedN.json, beside
seed 0's file, which stays the row of the tables. --checkpoint-every N also
saves the crf_ner pipelines every N steps
(<models>/<corpus>/<system>/checkpoints/stepN), for benchmarks.selection; it
does not change which model is kept.
"""
import argparse
import json
import time
from pathlib import Path
from typing import Dict, List

import spacy
import srsly
from spacy.cli.train import train as spacy_train
from spacy.tokens import DocBin

from benchmarks.common import ROOT, command_line, provenance
from benchmarks.corpora import SHARED, bench_corpora, demo_corpus, prepare
from benchmarks.crfsuite_baseline import CharCRF
from benchmarks.scoring import entity_set, macro, score
from benchmarks.systems import CONVERGED, EQUAL_TIME, EQUAL_TIME_TO, SYSTEMS, System, seeded
from benchmarks.training_log import TimeBudgetReached, TrainingLog


def train_spacy(system: System, data: Path, models: Path, args, time_budget: float = 0.0) -> Dict:
    output = models / seeded(system.name, args.seed)
    log_path = output / "training_log.json"
    overrides = {
        "paths.train": str(data / "train.spacy"), "paths.dev": str(data / "dev.spacy"),
        "training.logger.@loggers": "medner_bench.TimedLogger.v1", "training.logger.log_path": str(log_path),
        "system.seed": args.seed,
    }
    if system.schedule == CONVERGED:
        # spaCy's own schedule and stopping rule; the cap only keeps a run inside a session.
        if args.time_cap:
            overrides["training.logger.time_budget"] = args.time_cap
    elif system.schedule == EQUAL_TIME:
        if not time_budget:
            raise ValueError(f"{system.name} trains for a time budget: pass time_budget")
        # spaCy's own defaults (constant rate, patience 1600), stopped by the clock.
        overrides.update({"training.max_steps": 100_000, "training.logger.time_budget": time_budget,
                          "training.eval_frequency": args.eval_frequency})
    else:
        if system.pretrained:
            overrides["paths.init_tok2vec"] = str(args.init_tok2vec)
        overrides.update(system.overrides())
        overrides["training.eval_frequency"] = args.eval_frequency
        if args.checkpoint_every:
            averaged = spacy.util.load_config(system.config_path)["training"]["optimizer"].get("use_averages")
            if overrides.get("training.optimizer.use_averages", averaged):
                # The logger saves the raw weights; evaluations would have scored the averaged ones.
                raise ValueError(f"--checkpoint-every: {system.name} trains with use_averages = true, "
                                 "so a checkpoint would not hold the weights its evaluation scored")
            overrides.update({"training.logger.checkpoint_every": args.checkpoint_every,
                              "training.logger.checkpoint_dir": str(output / "checkpoints")})
        overrides.update({
            "training.max_steps": args.steps,
            "training.optimizer.learn_rate.total_steps": args.steps,
            "training.optimizer.learn_rate.warmup_steps": max(1, args.steps // 10),
        })
    max_steps = overrides.get("training.max_steps", spacy.util.load_config(system.config_path)["training"]["max_steps"])
    start = time.perf_counter()
    try:
        spacy_train(system.config_path, output, overrides=overrides)
        stopped = None
    except TimeBudgetReached as stop:
        print(stop)
        stopped = "time budget" if time_budget else "time cap"
    seconds = time.perf_counter() - start
    log = TrainingLog.from_disk(log_path)
    best = max(log.evaluations, key=lambda e: e["score"])
    return {
        # steps: where training ended, which may lie after the last evaluation.
        "train_seconds": round(seconds, 1), "steps": log.last_step, "best_step": best["step"],
        "seconds_to_best": best["seconds"], "dev_f": best["score"], "time_budget": time_budget or None,
        "stopped_by": stopped or ("max_steps" if max_steps and log.last_step >= max_steps else "patience"),
        "init_tok2vec": overrides.get("paths.init_tok2vec"), "model": str(output / "model-best"),
        "evaluations": log.evaluations,
    }


def train_crfsuite(data: Path, models: Path) -> Dict:
    nlp = spacy.blank("zh")
    start = time.perf_counter()
    crf = CharCRF().fit(DocBin().from_disk(data / "train.spacy").get_docs(nlp.vocab))
    seconds = time.perf_counter() - start
    path = models / "crfsuite.pkl"
    crf.to_disk(path)
    dev = score(*_gold_and_predicted(data / "dev.spacy", nlp, crf))
    return {"train_seconds": round(seconds, 1), "seconds_to_best": round(seconds, 1), "dev_f": dev["f"], "model": str(path)}


def _gold_and_predicted(path: Path, nlp, predictor):
    gold = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    predicted = predictor.pipe(nlp.make_doc(d.text) for d in gold) if isinstance(predictor, CharCRF) else predictor.pipe(d.text for d in gold)
    return entity_set(gold), entity_set(predicted)


def evaluate(system: System, data: Path, model: str) -> Dict:
    if system.config is None:
        nlp, predictor = spacy.blank("zh"), CharCRF.from_disk(Path(model))
    else:
        nlp = predictor = spacy.load(model)
    tests = {}
    for path in sorted(data.glob("test-*.spacy")):
        tests[path.stem[len("test-"):]] = score(*_gold_and_predicted(path, nlp, predictor))
    result = {"tests": tests}
    if len(tests) > 1:
        result["macro"] = macro(list(tests.values()))
    return result


def torch_threads(system: System) -> Dict:
    """The torch thread count of a run that uses torch (imported only then)."""
    if not system.needs_torch:
        return {}
    import torch

    return {"torch_threads": torch.get_num_threads()}


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--systems", default=",".join(name for name, s in SYSTEMS.items() if s.default),
                        help="comma-separated, from: " + ", ".join(SYSTEMS))
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--eval-frequency", type=int, default=300)
    parser.add_argument("--time-cap", type=float, default=0.0,
                        help="stop the systems trained to convergence after this many seconds if patience has not stopped them")
    parser.add_argument("--init-tok2vec", type=Path,
                        help="weights from `spacy pretrain`, for " + ", ".join(name for name, s in SYSTEMS.items() if s.pretrained))
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results", help="JSON results (committed)")
    parser.add_argument("--models", type=Path, default=ROOT / "training" / "bench", help="trained models (not committed)")
    parser.add_argument("--data", type=Path, default=ROOT / "corpus" / "bench")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="random seed of the spaCy systems (crfsuite's L-BFGS has none)")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="also save the crf_ner systems every N steps, for benchmarks.selection")
    parser.add_argument("--limit", type=int, help="keep only the first records of each split (smoke runs)")
    parser.add_argument("--shared", type=Path, default=SHARED, help="folder holding <corpus>/raw")
    args = parser.parse_args(argv)
    corpora = {**bench_corpora(args.shared), "demo": demo_corpus()}
    if args.corpus not in corpora:
        parser.error(f"unknown corpus {args.corpus!r}; choose from {', '.join(corpora)}")
    names = args.systems.split(",")
    if set(names) - set(SYSTEMS):
        parser.error(f"unknown systems {sorted(set(names) - set(SYSTEMS))}; choose from {', '.join(SYSTEMS)}")
    systems = [SYSTEMS[name] for name in names]
    unseeded = [s.name for s in systems if s.config is None]
    if args.seed and unseeded:
        parser.error(f"{', '.join(unseeded)} has no random seed (L-BFGS is deterministic): run it with seed 0 only")
    pretrained = [s.name for s in systems if s.pretrained]
    if pretrained and not (args.init_tok2vec and args.init_tok2vec.exists()):
        parser.error(f"{', '.join(pretrained)} needs --init-tok2vec pointing at `spacy pretrain` weights (got {args.init_tok2vec})")
    try:
        data = prepare(corpora[args.corpus], args.data, max_length=args.max_length, limit=args.limit)
    except FileNotFoundError as err:
        print(f"skipping {args.corpus}: {err}")
        return
    out = args.output / args.corpus
    models = args.models / args.corpus
    out.mkdir(parents=True, exist_ok=True)
    models.mkdir(parents=True, exist_ok=True)
    command = command_line(__spec__.name, argv)
    # Taken once, before training: a commit or a date change while a run trains must not be credited with it.
    started = provenance()
    budget = 0.0
    for system in systems:
        print(f"=== {args.corpus}: {system.name}")
        if system.config is None:
            trained = train_crfsuite(data, models)
        elif system.schedule == EQUAL_TIME:
            budget = budget or _earlier_train_seconds(out, args.seed)
            if not budget:
                print(f"skipping {system.name}: its time budget is {EQUAL_TIME_TO}'s training time; run {EQUAL_TIME_TO} first")
                continue
            trained = train_spacy(system, data, models, args, time_budget=budget)
        else:
            trained = train_spacy(system, data, models, args)
            if system.name == EQUAL_TIME_TO:
                budget = trained["train_seconds"]
        result = {
            "corpus": args.corpus, "system": system.name, "seed": args.seed, "command": command, **started,
            **torch_threads(system), "splits": srsly.read_json(data / "splits.json"), **trained,
            **evaluate(system, data, trained["model"]),
        }
        result["model"] = _repo_relative(result["model"])  # the result file is committed: no home directories
        run = seeded(system.name, args.seed)
        (out / f"{run}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf8")
        tests = ", ".join(f"{name} F1 {100 * s['f']:.2f}" for name, s in result["tests"].items())
        print(f"{args.corpus} {run}: dev F1 {100 * trained['dev_f']:.2f}; {tests}; trained {trained['train_seconds']} s")


def _repo_relative(path: str) -> str:
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path


def _earlier_train_seconds(out: Path, seed: int) -> float:
    path = out / f"{seeded(EQUAL_TIME_TO, seed)}.json"
    return srsly.read_json(path)["train_seconds"] if path.exists() else 0.0


if __name__ == "__main__":
    main()
