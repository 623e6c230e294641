"""Nested entities: every mention, exact match, for a flat tagger, a span decoder and spaCy's spancat.

    python -m benchmarks.nested CORPUS [--systems crf_ner,spancat,crfsuite,span_ner] [--minutes 10]
        [--steps crf_ner=400,spancat=300] [--evaluations 5] [--output benchmarks/results/nested]
        [--models training/nested] [--data corpus/nested] [--limit N] [--shared ../shared/corpora]

CORPUS is cmeee (CMeEE-V2 dev split 80/20 as benchmarks/corpora.py prepares it:
every mention in doc.spans["sc"], the longest outer ones in doc.ents),
ccks2019 (flat: its span group holds the same mentions as doc.ents) or demo
(smoke runs). Every system is scored against the gold mentions of
doc.spans["sc"], exact start, end and type, micro and per type:
- crf_ner (configs/cpu_default.cfg) is a flat tagger: trained on doc.ents,
  scored on its doc.ents. The recall of a perfect flat prediction (every gold
  outer mention, nothing else) is its ceiling, stored with each result;
- span_ner (configs/cmeee_span.cfg) and spancat
  (benchmarks/configs/spancat_cmeee.cfg, n-grams up to the span decoder's
  max_length) are trained on doc.spans["sc"] and scored on theirs;
- crfsuite, the character CRF of benchmarks/crfsuite_baseline.py, flat like
  crf_ner, with its fixed hyper-parameters (no budget, no dev selection).

Budget: the trained systems get the same wall time (--minutes, default 10),
one seed (0), one torch thread, and no FGM (crf_ner's fgm_epsilon is set to 0;
FGM would double its time per step). Each runs its config's schedule over
--steps steps (warm-up a tenth, linear decay to zero, where the config's
learning rate is a warmup_linear schedule), chosen per system to fit the wall
time, and is stopped by the clock (benchmarks.training_log) if it has not
finished; dev is evaluated --evaluations times, and the test split is scored
once with the best dev evaluation's model (spaCy's model-best). Dev selection
uses each component's own score (crf_ner: outer-mention ents_f; span systems:
spans_sc_f). Prediction speed is the time of `nlp.pipe` over the test texts
while they are scored, so it is measured on a machine that may be shared.

Writes <output>/<corpus>_<system>.json (committed; benchmarks.report builds
the "Nested entities" section of BENCHMARKS.md from them) and keeps the
models under <models>/<corpus>/<system>/ (not committed).

Declarations and this module's top level import only the standard library:
benchmarks.report reads the systems below on a machine without spaCy.
"""
import argparse
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

from benchmarks.common import ROOT, command_line, provenance
from benchmarks.scoring import score

SPAN_CONFIG = "configs/cmeee_span.cfg"
SPANCAT_CONFIG = "benchmarks/configs/spancat_cmeee.cfg"
DEFAULT_MAX_LENGTH = 16  # spancat's n-gram limit until configs/cmeee_span.cfg says otherwise
GOLD_KEY = "sc"  # the converters' span group: every mention
RESULTS = ROOT / "benchmarks" / "results" / "nested"
FLAT, SPANS = "doc.ents", "doc.spans"


@dataclass(frozen=True)
class NestedSystem:
    name: str
    title: str  # its row in BENCHMARKS.md
    config: Optional[str]  # None: the character CRF, not a spaCy pipeline
    predicts: str  # FLAT or SPANS: where its predictions are read
    ours: bool = False


# Report order: ours first, then the baselines.
NESTED_SYSTEMS: Dict[str, NestedSystem] = {s.name: s for s in [
    NestedSystem("span_ner", "span_ner, configs/cmeee_span.cfg (ours)", SPAN_CONFIG, SPANS, ours=True),
    NestedSystem("crf_ner", "crf_ner flat, configs/cpu_default.cfg without FGM (ours)", "configs/cpu_default.cfg", FLAT, ours=True),
    NestedSystem("spancat", "spaCy `spancat`, same encoder", SPANCAT_CONFIG, SPANS),
    NestedSystem("crfsuite", "character CRF (sklearn-crfsuite), flat", None, FLAT),
]}
# The order the trainings were asked for: the flat rows first, the span decoder when its config exists.
DEFAULT_SYSTEMS = ["crf_ner", "spancat", "crfsuite", "span_ner"]


def result_path(output: Path, corpus: str, system: str) -> Path:
    return output / f"{corpus}_{system}.json"


def span_max_length(config_path: Path = ROOT / SPAN_CONFIG) -> Tuple[int, str]:
    """(the span decoder's maximum span length, where it was read). Read from the
    config text (no spaCy needed): the first `max_length = N` in a
    [components.*] section of the span_ner component, the corpus readers'
    max_length (a document limit) excluded."""
    if not config_path.exists():
        return DEFAULT_MAX_LENGTH, f"default {DEFAULT_MAX_LENGTH}: {config_path.name} not found"
    section = ""
    for line in config_path.read_text(encoding="utf8").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif section.startswith("components.") and re.match(r"(max_length|max_span_length|max_width)\s*=\s*\d+$", line):
            key, value = (part.strip() for part in line.split("=", 1))
            return int(value), f"{config_path.relative_to(ROOT)} [{section}] {key}"
    return DEFAULT_MAX_LENGTH, f"default {DEFAULT_MAX_LENGTH}: no max_length in a component section of {config_path.name}"


Entity = Tuple[int, int, int, str]


def mentions(docs: Iterable, where: str, key: str = GOLD_KEY) -> Set[Entity]:
    """(doc index, start char, end char, label) of each mention in doc.ents or doc.spans[key]."""
    found = set()
    for i, doc in enumerate(docs):
        spans = doc.ents if where == FLAT else doc.spans.get(key, [])
        found.update((i, s.start_char, s.end_char, s.label_) for s in spans)
    return found


def flat_ceiling(gold_docs: List) -> Dict:
    """The scores of a perfect flat prediction (doc.ents, the outer mentions)
    against every mention: precision 1, recall = outer / all mentions."""
    return score(mentions(gold_docs, SPANS), mentions(gold_docs, FLAT))


def _schedule_overrides(config, steps: int) -> Dict:
    """max_steps = steps, and a warmup_linear rate decaying to zero at that step."""
    overrides = {"training.max_steps": steps}
    rate = config["training"]["optimizer"].get("learn_rate")
    if isinstance(rate, dict) and rate.get("@schedules", "").startswith("warmup_linear"):
        overrides["training.optimizer.learn_rate.total_steps"] = steps
        overrides["training.optimizer.learn_rate.warmup_steps"] = max(1, steps // 10)
    return overrides


def run_overrides(system: NestedSystem, data: Path, log_path: Path, steps: int, evaluations: int, budget: float,
                  max_length: int) -> Dict:
    """Every config override of a budgeted run: paths, clock, schedule, no FGM, spancat's n-gram limit."""
    from spacy.util import load_config

    config = load_config(ROOT / system.config, interpolate=False)
    overrides = {
        "paths.train": str(data / "train.spacy"), "paths.dev": str(data / "dev.spacy"), "system.seed": 0,
        "training.logger.@loggers": "medner_bench.TimedLogger.v1", "training.logger.log_path": str(log_path),
        "training.logger.time_budget": budget, "training.eval_frequency": max(1, steps // evaluations),
        # The clock and max_steps end the run, not spaCy's patience.
        "training.patience": 0,
        **_schedule_overrides(config, steps),
    }
    for name, component in config["components"].items():
        if "fgm_epsilon" in component:
            overrides[f"components.{name}.fgm_epsilon"] = 0.0
    if system.name == "spancat":
        overrides["components.spancat.suggester.max_size"] = max_length
    return overrides


def train_budgeted(system: NestedSystem, data: Path, models: Path, steps: int, evaluations: int, budget: float,
                   max_length: int) -> Dict:
    from spacy.cli.train import train as spacy_train

    from benchmarks.training_log import TimeBudgetReached, TrainingLog

    output = models / system.name
    log_path = output / "training_log.json"
    overrides = run_overrides(system, data, log_path, steps, evaluations, budget, max_length)
    start = time.perf_counter()
    try:
        spacy_train(ROOT / system.config, output, overrides=overrides)
        stopped = "max_steps"
    except TimeBudgetReached as stop:
        print(stop)
        stopped = "time budget"
    seconds = time.perf_counter() - start
    log = TrainingLog.from_disk(log_path)
    if not log.evaluations:
        raise RuntimeError(f"{system.name}: no dev evaluation inside the budget; lower --steps or raise --evaluations")
    best = max(log.evaluations, key=lambda e: e["score"])
    return {
        "config": system.config, "overrides": {k: v for k, v in overrides.items() if not k.startswith("paths.") and "log_path" not in k},
        "max_steps": steps, "time_budget": budget, "stopped_by": stopped,
        "train_seconds": round(seconds, 1), "steps": log.last_step, "best_step": best["step"],
        "seconds_to_best": best["seconds"], "dev_score": best["score"], "evaluations": log.evaluations,
        "model": str(output / "model-best"),
    }


def train_crfsuite(data: Path, models: Path) -> Dict:
    import spacy
    from spacy.tokens import DocBin

    from benchmarks.crfsuite_baseline import CharCRF

    nlp = spacy.blank("zh")
    start = time.perf_counter()
    crf = CharCRF().fit(DocBin().from_disk(data / "train.spacy").get_docs(nlp.vocab))
    seconds = time.perf_counter() - start
    models.mkdir(parents=True, exist_ok=True)
    path = models / "crfsuite.pkl"
    crf.to_disk(path)
    # Fixed hyper-parameters (150 L-BFGS iterations): no budget, no dev selection.
    return {"config": None, "train_seconds": round(seconds, 1), "seconds_to_best": round(seconds, 1), "steps": None,
            "stopped_by": "150 L-BFGS iterations", "model": str(path)}


def evaluate(system: NestedSystem, data: Path, model: str) -> Dict:
    """Every test split scored against all gold mentions; the time of prediction gives chars/s."""
    import spacy
    from spacy.tokens import DocBin

    from benchmarks.crfsuite_baseline import CharCRF

    if system.config is None:
        nlp, crf = spacy.blank("zh"), CharCRF.from_disk(Path(model))
        predict = lambda texts: crf.pipe(nlp.make_doc(t) for t in texts)  # noqa: E731
    else:
        nlp = spacy.load(model)
        predict = nlp.pipe
    key = _spans_key(nlp) if system.predicts == SPANS else None
    tests = {}
    for path in sorted(data.glob("test-*.spacy")):
        gold = list(DocBin().from_disk(path).get_docs(nlp.vocab))
        texts = [d.text for d in gold]
        start = time.perf_counter()
        predicted = list(predict(texts))
        seconds = time.perf_counter() - start
        result = score(mentions(gold, SPANS), mentions(predicted, system.predicts, key or GOLD_KEY))
        # Outer mentions only (doc.ents against gold doc.ents): the score the accuracy tables give a flat tagger.
        if system.predicts == FLAT or any(d.ents for d in predicted):
            result["outer"] = {k: v for k, v in score(mentions(gold, FLAT), mentions(predicted, FLAT)).items() if k in ("p", "r", "f")}
        n_chars = sum(len(t) for t in texts)
        result.update({"n_chars": n_chars, "predict_seconds": round(seconds, 2), "chars_per_second": round(n_chars / seconds)})
        tests[path.stem[len("test-"):]] = result
    return {"tests": tests, "predicts": system.predicts + (f"[{key!r}]" if key else "")}


def _spans_key(nlp) -> str:
    """The span group a span component writes (its `spans_key` setting, else "sc")."""
    for name in nlp.pipe_names:
        key = nlp.config["components"][name].get("spans_key")
        if key:
            return key
    return GOLD_KEY


def gold_ceiling(data: Path) -> Dict:
    import spacy
    from spacy.tokens import DocBin

    vocab = spacy.blank("zh").vocab
    ceilings = {}
    for path in sorted(data.glob("test-*.spacy")):
        s = flat_ceiling(list(DocBin().from_disk(path).get_docs(vocab)))
        ceilings[path.stem[len("test-"):]] = {"r": s["r"], "f": s["f"], "n_gold": s["n_gold"], "n_outer": s["n_predicted"],
                                              "per_type": {k: {"r": v["r"], "n_gold": v["n_gold"]} for k, v in s["per_type"].items()}}
    return ceilings


def parse_steps(text: str, names: List[str]) -> Dict[str, int]:
    """`crf_ner=400,spancat=300` (or one number for every system) → {system: steps}."""
    if not text:
        return {}
    if "=" not in text:
        return {name: int(text) for name in names}
    steps = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in NESTED_SYSTEMS or not value.isdigit():
            raise ValueError(f"--steps: {item!r} is not SYSTEM=STEPS with SYSTEM one of {', '.join(NESTED_SYSTEMS)}")
        steps[name] = int(value)
    return steps


def limit_threads() -> int:
    """One torch thread per process (and one BLAS thread: set before numpy loads, else it is too late)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import torch

    torch.set_num_threads(1)
    return torch.get_num_threads()


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS), help="comma-separated, from: " + ", ".join(NESTED_SYSTEMS))
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-time budget of each trained system")
    parser.add_argument("--steps", default="", help="each system's schedule length, SYSTEM=N,... or one N for all (default 1000)")
    parser.add_argument("--evaluations", type=int, default=5, help="dev evaluations over the schedule")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results (committed)")
    parser.add_argument("--models", type=Path, default=ROOT / "training" / "nested", help="trained models (not committed)")
    parser.add_argument("--data", type=Path, default=ROOT / "corpus" / "nested")
    parser.add_argument("--limit", type=int, help="keep only the first records of each split (smoke runs)")
    parser.add_argument("--shared", type=Path, help="folder holding <corpus>/raw (default ../shared/corpora)")
    args = parser.parse_args(argv)
    names = args.systems.split(",")
    unknown = sorted(set(names) - set(NESTED_SYSTEMS))
    if unknown:
        parser.error(f"--systems: unknown {unknown}; choose from {', '.join(NESTED_SYSTEMS)}")
    try:
        steps = parse_steps(args.steps, names)
    except ValueError as err:
        parser.error(str(err))
    missing = [n for n in names if NESTED_SYSTEMS[n].config and not (ROOT / NESTED_SYSTEMS[n].config).exists()]
    if missing:
        parser.error(f"--systems: {', '.join(missing)} needs {', '.join(NESTED_SYSTEMS[n].config for n in missing)}, not found")
    threads = limit_threads()

    import srsly

    import spacy_medner  # noqa: F401  (registers crf_ner, span_ner and the architectures)
    from benchmarks.corpora import SHARED, bench_corpora, demo_corpus, prepare

    corpora = {**bench_corpora(args.shared or SHARED), "demo": demo_corpus()}
    if args.corpus not in corpora:
        parser.error(f"unknown corpus {args.corpus!r}; choose from {', '.join(corpora)}")
    try:
        data = prepare(corpora[args.corpus], args.data, limit=args.limit)
    except FileNotFoundError as err:
        print(f"skipping {args.corpus}: {err}")
        return
    max_length, max_length_from = span_max_length()
    models = args.models / args.corpus
    args.output.mkdir(parents=True, exist_ok=True)
    command = command_line(__spec__.name, argv)
    started = provenance()  # before training: a commit made during a run is not credited with it
    ceiling = gold_ceiling(data)
    budget = 60 * args.minutes
    for name in names:
        system = NESTED_SYSTEMS[name]
        print(f"=== {args.corpus}: {name} ({budget:.0f} s budget)", flush=True)
        # The machine may be shared: the load beside a run says how far its times can be compared.
        load_at_start = os.getloadavg()
        if system.config is None:
            trained = train_crfsuite(data, models)
        else:
            trained = train_budgeted(system, data, models, steps.get(name, 1000), args.evaluations, budget, max_length)
        result = {
            "corpus": args.corpus, "system": name, "seed": 0, "command": command, **started, "torch_threads": threads,
            "splits": srsly.read_json(data / "splits.json"), "flat_ceiling": ceiling,
            "span_max_length": {"value": max_length, "from": max_length_from} if name == "spancat" else None,
            "load_average": {"start": [round(x, 2) for x in load_at_start], "end": [round(x, 2) for x in os.getloadavg()]},
            **trained, **evaluate(system, data, trained["model"]),
        }
        result["model"] = _repo_relative(result["model"])
        result_path(args.output, args.corpus, name).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf8")
        tests = ", ".join(f"{t} all-mention P/R/F {100 * s['p']:.2f}/{100 * s['r']:.2f}/{100 * s['f']:.2f}, {s['chars_per_second']:,} chars/s"
                          for t, s in result["tests"].items())
        print(f"{args.corpus} {name}: {tests}; trained {trained['train_seconds']} s, {trained.get('steps')} steps", flush=True)


def _repo_relative(path: str) -> str:
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path


if __name__ == "__main__":
    main()
