"""A simulated annotation campaign, and the self-training measurement (issue 32).

    python -m benchmarks.campaign campaign CORPUS [--seeds 0,1,2] [--start 100] [--rounds 5] [--per-round 100]
        [--strategies uncertainty,random] [--steps 900] [--eval-frequency 300] [--no-full]
        [--output benchmarks/results/campaign] [--models training/campaign] [--data corpus/campaign]
    python -m benchmarks.campaign self-training CORPUS [--seeds 0,1,2] [--steps 900] [--min-prob 0.9]
        [--uncertain-floor F] [--unlabelled PATH] [--output ...] [--models ...] [--data ...]

CORPUS is ccks2019 (read in place from ../shared) or demo (the embedded demo
corpus, for smoke runs with tiny --steps and --limit).

Campaign: dev is carved from the training records as benchmarks.accuracy does
(10%, seed 0, the same for every seed); the rest is the labelling pool. Per
seed, `--start` pool records drawn at random are "labelled" and a model is
trained on them (round 0, shared by the strategies). Then, per strategy, for
`--rounds` rounds: the current model chooses `--per-round` more records from
the unlabelled rest with `spacy_medner.labelling.choose` (the function behind
`select --strategy uncertainty|random`, with the seed), the simulated
annotator corrects every pre-annotation to the gold entities (the records'
own), and a model is trained from scratch on everything labelled so far,
the same config and steps every round. Test F1 (exact entities, official
test set) after each round. With the full training set's F1 per seed
(unless --no-full), the target of the issue is checked: uncertainty
selection within 1 point of full-data F1 with at most 60% of the records, and
above random at every round (seed means). Writes
<output>/<corpus>/campaign.json (every round's records, characters,
entities, F1 and the chosen ids) and campaign.png (the learning curves).
A killed run resumes: every trained round is kept in <output>/<corpus>/runs/.

Self-training: per seed, the supervised model is the campaign's full-data
model (the same run, trained once for both modes), calibrated on dev; it
labels the unlabelled records (`self_training.self_label`, --min-prob) and
the same recipe is trained again on gold + pseudo-labels. Writes
<output>/<corpus>/self_training_<bar>.json (bar: p<min-prob>, and -f<floor>
if --uncertain-floor is given, so runs at several bars sit side by side):
test F1 of both, the gain, and the cost
(training seconds of each, labelling and calibration seconds).

Every model is trained with --config (default configs/cpu_default.cfg) for
--steps steps (warm-up a tenth, linear decay), FGM as the config has it
unless --no-fgm. Cost on 2 cores (CCKS2019): cpu_default with FGM runs about
1 s a step on one thread, configs/cpu_fast.cfg without FGM about 0.6 s. The
campaign trains 1 + 2 × rounds + 1 models per seed (36 for 3 seeds and 5
rounds), self-training one more per seed.
"""
import argparse
import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional, Sequence

from benchmarks.common import ROOT, command_line, provenance
from benchmarks.corpora import SHARED, BenchCorpus, bench_corpora, demo_corpus
from spacy_medner.corpora.build import split_records
from spacy_medner.corpora.convert import read_records, to_docbin
from spacy_medner.corpora.records import Record
from spacy_medner.corpora.report import ConversionReport

UNLABELLED = {"ccks2019": ("ccks2019", "subtask2_unlabeled.txt")}
TARGET_GAP = 1.0  # F1 points below full-data F1
TARGET_SHARE = 0.6  # of the training records
# A campaign strategy: how `labelling.choose` is called (its strategy, and whether expected
# errors are per record, `select`'s default, or per 100 characters, `select --per-100-chars`).
STRATEGIES = {"uncertainty": ("uncertainty", False), "uncertainty-per-100-chars": ("uncertainty", True), "random": ("random", False)}


@dataclass
class Trained:
    model: str  # the pipeline folder, for the next round's selection
    test_f: float
    dev_f: float = 0.0
    train_seconds: float = 0.0
    extra: Dict = field(default_factory=dict)


# A trainer: (run name, the labelled records) → Trained. The benchmark's trains
# configs/cpu_default.cfg with spaCy; the test's a tiny pipeline in process.
Trainer = Callable[[str, List[Record]], Trained]


def reader_options(fmt: str) -> Optional[Dict]:
    return {"bad_tags": "repair"} if fmt in ("conll", "healthner") else None


def corpus_records(corpus: BenchCorpus, limit: Optional[int] = None):
    """(pool, dev, test) records: dev carved from training as benchmarks.accuracy does."""
    if not corpus.folder.exists():
        raise FileNotFoundError(f"corpus {corpus.name!r} not found at {corpus.folder} (the research corpora live in ../shared)")
    report = ConversionReport(format=corpus.name, inputs=[])
    records: List[Record] = []
    for fmt, paths in corpus.train:
        records += read_records(fmt, [corpus.folder / p for p in paths], report, reader_options(fmt))
    if corpus.test_ratio:
        records, test = split_records(records, corpus.test_ratio, 0)
    else:
        (fmt, paths), = corpus.tests.values()
        test = read_records(fmt, [corpus.folder / p for p in paths], report, reader_options(fmt))
    pool, dev = split_records(records, corpus.dev_ratio, 0)
    return pool[:limit], dev[:limit], test[:limit]


# -- the campaign's bookkeeping ---------------------------------------------------------------------


@dataclass
class Round:
    round: int
    records: int
    chars: int
    entities: int
    test_f: float
    dev_f: float
    train_seconds: float
    select_seconds: float = 0.0
    selected: List[str] = field(default_factory=list)  # ids chosen for this round (round 0: the random start)


def labelled_stats(records: Sequence[Record]) -> Dict[str, int]:
    return {"records": len(records), "chars": sum(len(r.text) for r in records), "entities": sum(len(r.entities) for r in records)}


def start_indices(n_pool: int, start: int, seed: int) -> List[int]:
    return sorted(random.Random(seed).sample(range(n_pool), min(start, n_pool)))


def run_strategy(pool: Sequence[Record], initial: List[int], first: Trained, trainer: Trainer, *, strategy: str, seed: int,
                 rounds: int, per_round: int, run_prefix: str, batch_size: int = 64) -> List[Round]:
    """Rounds 1..rounds of one strategy from the shared round 0 (`first`, trained on `initial`)."""
    import spacy

    from spacy_medner.labelling import choose

    labelled = list(initial)
    taken = set(labelled)
    model = first
    rounds_out: List[Round] = []
    for r in range(1, rounds + 1):
        rest = [i for i in range(len(pool)) if i not in taken]
        if not rest:
            break
        started = time.perf_counter()
        nlp = spacy.load(model.model)
        how, normalise = STRATEGIES[strategy]
        chosen = choose(nlp, ((str(i), pool[i].text) for i in rest), per_round, strategy=how, seed=seed, normalise=normalise,
                        batch_size=batch_size)
        picked = [int(c.predicted.id) for c in chosen]
        select_seconds = time.perf_counter() - started
        del nlp
        assert not taken & set(picked), "a record was chosen twice"
        labelled += picked
        taken.update(picked)
        model = trainer(f"{run_prefix}-{strategy}-r{r}", [pool[i] for i in labelled])
        stats = labelled_stats([pool[i] for i in labelled])
        rounds_out.append(Round(r, stats["records"], stats["chars"], stats["entities"], model.test_f, model.dev_f,
                                model.train_seconds, round(select_seconds, 2), [pool[i].id for i in picked]))
    return rounds_out


def run_campaign(pool: Sequence[Record], trainer: Trainer, *, seed: int, start: int, rounds: int, per_round: int,
                 strategies: Sequence[str], batch_size: int = 64) -> Dict:
    """One seed's campaign: {"round0": Round, "strategies": {name: [Round, ...]}}."""
    initial = start_indices(len(pool), start, seed)
    first = trainer(f"seed{seed}-r0", [pool[i] for i in initial])
    stats = labelled_stats([pool[i] for i in initial])
    round0 = Round(0, stats["records"], stats["chars"], stats["entities"], first.test_f, first.dev_f, first.train_seconds,
                   selected=[pool[i].id for i in initial])
    result = {"seed": seed, "round0": asdict(round0), "strategies": {}}
    for strategy in strategies:
        rounds_out = run_strategy(pool, initial, first, trainer, strategy=strategy, seed=seed, rounds=rounds,
                                  per_round=per_round, run_prefix=f"seed{seed}", batch_size=batch_size)
        result["strategies"][strategy] = [asdict(r) for r in rounds_out]
    return result


# -- the spaCy trainer ---------------------------------------------------------------------------------


class SpacyTrainer:
    """Trains configs/cpu_default.cfg (benchmarks.accuracy's crf_ner row) on
    given records for --steps steps, keeps the dev-best model, scores test.
    A run whose result file and model exist is read back, not retrained."""

    def __init__(self, data: Path, models: Path, runs: Path, args, max_length: int = 256):
        from benchmarks.systems import SYSTEMS

        self.system = replace(SYSTEMS["crf_ner"], config=args.config, fgm=args.fgm)
        self.data, self.models, self.runs, self.args, self.max_length = data, models, runs, args, max_length

    def train_folder(self, name: str, records: Optional[List[Record]], extra_train: Sequence[Path] = ()) -> Path:
        folder = self.data / "runs" / name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.data / "dev.spacy", folder / "dev.spacy")
        train = folder / "train.spacy"
        if train.is_dir():
            shutil.rmtree(train)
        if extra_train:  # a folder: spaCy's Corpus reads every .spacy file in it
            train.mkdir()
            for k, path in enumerate(extra_train):
                shutil.copyfile(path, train / f"{k}-{path.name}")
        else:
            to_docbin(records, ConversionReport(format="records", inputs=[]), max_length=self.max_length).to_disk(train)
        return folder

    def __call__(self, name: str, records: Optional[List[Record]], extra_train: Sequence[Path] = ()) -> Trained:
        from benchmarks.accuracy import evaluate, train_spacy

        result_path = self.runs / f"{name}.json"
        # What the run trained on and how: a result is reused only for the same run.
        fingerprint = {"steps": self.args.steps, "seed": self.args.seed, "max_length": self.max_length,
                       "config": self.system.config, "fgm": self.system.fgm,
                       "records": sorted(r.id for r in records) if records is not None else None,
                       "extra_train": [str(p) for p in extra_train]}
        if result_path.exists():
            done = json.loads(result_path.read_text("utf8"))
            if done.get("extra", {}).get("fingerprint") == fingerprint and Path(done["model"]).exists():
                print(f"--- {name}: done before, test F1 {100 * done['test_f']:.2f}")
                return Trained(**done)
        print(f"--- {name}: training on {len(records) if records is not None else 'gold + pseudo'} records")
        folder = self.train_folder(name, records, extra_train)
        trained = train_spacy(self.system, folder, self.models / name, self.args)
        scores = evaluate(self.system, self.data, trained["model"])["tests"]
        test = next(iter(scores.values()))
        out = Trained(trained["model"], test["f"], trained["dev_f"], trained["train_seconds"],
                      {"steps": trained["steps"], "best_step": trained["best_step"], "test_p": test["p"], "test_r": test["r"],
                       "fingerprint": fingerprint})
        self.runs.mkdir(parents=True, exist_ok=True)
        result_path.write_text(json.dumps(asdict(out), ensure_ascii=False), encoding="utf8")
        print(f"--- {name}: test F1 {100 * out.test_f:.2f}, {out.train_seconds:.0f} s")
        return out


def training_args(args) -> SimpleNamespace:
    """What benchmarks.accuracy.train_spacy reads from its command line."""
    return SimpleNamespace(seed=args.seed, steps=args.steps, eval_frequency=min(args.eval_frequency, args.steps),
                           checkpoint_every=0, init_tok2vec=None, time_cap=0.0, config=args.config, fgm=args.fgm)


def write_split(records: Sequence[Record], path: Path, max_length: int) -> None:
    """Written aside and moved into place: a campaign run for another seed
    may be reading the same file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    to_docbin(records, ConversionReport(format="records", inputs=[]), max_length=max_length).to_disk(partial)
    os.replace(partial, path)


# -- summaries -------------------------------------------------------------------------------------------


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def curves(seeds: List[Dict]) -> Dict[str, List[Dict]]:
    """Per strategy, per round: records labelled and test F1 (mean, min, max over seeds)."""
    out: Dict[str, List[Dict]] = {}
    strategies = list(seeds[0]["strategies"]) if seeds else []
    for strategy in strategies:
        n_rounds = min(len(s["strategies"][strategy]) for s in seeds)
        rows = []
        for r in range(n_rounds + 1):
            runs = [s["round0"] if r == 0 else s["strategies"][strategy][r - 1] for s in seeds]
            fs = [100 * run["test_f"] for run in runs]
            rows.append({"round": r, "records": runs[0]["records"], "chars_mean": mean([run["chars"] for run in runs]),
                         "f_mean": mean(fs), "f_min": min(fs), "f_max": max(fs), "seeds": len(fs)})
        out[strategy] = rows
    return out


def verdict(curve: Dict[str, List[Dict]], full_f: Optional[float], n_pool: int, strategy: str = "uncertainty") -> Dict:
    """The issue's target for one selection strategy against random, on seed means
    (the keys say "uncertainty" whichever uncertainty strategy it is)."""
    result: Dict = {}
    unc, rnd = curve.get(strategy), curve.get("random")
    if unc and rnd:
        above = [u["f_mean"] > r["f_mean"] for u, r in zip(unc[1:], rnd[1:])]
        result["uncertainty_above_random_every_round"] = bool(above) and all(above)
        result["rounds_above_random"] = f"{sum(above)} of {len(above)}"
    if unc and full_f is not None:
        reached = next((row for row in unc if row["f_mean"] >= full_f - TARGET_GAP), None)
        result["full_f"] = full_f
        result["reached_full_minus_1_at_records"] = reached["records"] if reached else None
        result["reached_share"] = round(reached["records"] / n_pool, 3) if reached else None
        result["within_60_percent"] = bool(reached) and reached["records"] <= TARGET_SHARE * n_pool
    return result


def markdown_table(curve: Dict[str, List[Dict]], full_f: Optional[float]) -> str:
    strategies = list(curve)
    head = "| round | records | " + " | ".join(f"{s} test F1 (mean, min–max)" for s in strategies) + " |"
    lines = [head, "|" + "---:|" * (2 + len(strategies))]
    for r in range(max(len(rows) for rows in curve.values())):
        cells = []
        for s in strategies:
            row = curve[s][r] if r < len(curve[s]) else None
            cells.append(f"{row['f_mean']:.2f} ({row['f_min']:.2f}–{row['f_max']:.2f})" if row else "—")
        records = next(curve[s][r]["records"] for s in strategies if r < len(curve[s]))
        lines.append(f"| {r} | {records} | " + " | ".join(cells) + " |")
    if full_f is not None:
        lines.append(f"\nFull training set: test F1 {full_f:.2f} (mean over seeds).")
    return "\n".join(lines)


def plot(curve: Dict[str, List[Dict]], full_f: Optional[float], path: Path, title: str) -> None:
    """Test F1 against records labelled (what the target counts) and against
    characters labelled (what an annotator reads: strategies that pick long
    records look better per record than per character)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (key, xlabel) in zip(axes, (("records", "labelled records"), ("chars_mean", "labelled characters (mean of seeds)"))):
        for strategy, rows in curve.items():
            x = [row[key] for row in rows]
            ax.plot(x, [row["f_mean"] for row in rows], marker="o", label=strategy)
            ax.fill_between(x, [row["f_min"] for row in rows], [row["f_max"] for row in rows], alpha=0.2)
        if full_f is not None:
            ax.axhline(full_f, color="grey", linestyle="--", label="full training set")
            ax.axhline(full_f - TARGET_GAP, color="grey", linestyle=":", label="full − 1")
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("test F1 (mean of seeds; band: min–max)")
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- the two modes ----------------------------------------------------------------------------------------


def corpus_of(name: str, shared: Path) -> BenchCorpus:
    corpora = {**bench_corpora(shared), "demo": demo_corpus()}
    if name not in corpora:
        raise SystemExit(f"unknown corpus {name!r}; choose from {', '.join(corpora)}")
    return corpora[name]


def campaign_data(corpus: BenchCorpus, args):
    """The pool (the training records less dev), and the folder holding dev,
    test and the whole pool as DocBins, shared by the two modes: the campaign's
    full-data model is the self-training's supervised model (same run, same
    records, trained once)."""
    pool, dev, test = corpus_records(corpus, args.limit)
    data = args.data / corpus.name
    write_split(dev, data / "dev.spacy", args.max_length)
    write_split(test, data / "test-test.spacy", args.max_length)
    write_split(pool, data / "train.spacy", args.max_length)
    return pool, data


def recipe(args) -> Dict:
    return {"config": args.config, "fgm": args.fgm, "steps": args.steps, "eval_frequency": args.eval_frequency,
            "max_length": args.max_length, "seeds": args.seeds}


def campaign_main(args) -> Dict:
    corpus = corpus_of(args.corpus, args.shared)
    pool, data = campaign_data(corpus, args)
    out = args.output / corpus.name
    started, command = provenance(), command_line(__spec__.name if __spec__ else "benchmarks.campaign", args.argv)
    seeds: List[Dict] = []
    full: Dict[int, float] = {}
    for seed in args.seeds:
        args.seed = seed
        trainer = SpacyTrainer(data, args.models / corpus.name, out / "runs", training_args(args), args.max_length)
        print(f"=== {corpus.name} campaign, seed {seed}")
        seeds.append(run_campaign(pool, trainer, seed=seed, start=args.start, rounds=args.rounds, per_round=args.per_round,
                                  strategies=args.strategies))
        if args.full:
            full[seed] = trainer(full_run(seed), list(pool)).test_f
        _write_campaign(out, corpus, args, started, command, pool, seeds, full, quiet=True)  # kept after every seed
    return _write_campaign(out, corpus, args, started, command, pool, seeds, full)


def full_run(seed: int) -> str:
    return f"seed{seed}-full"


def _write_campaign(out: Path, corpus: BenchCorpus, args, started, command, pool, seeds, full, quiet: bool = False) -> Dict:
    curve = curves(seeds)
    full_f = mean([100 * f for f in full.values()]) if full else None
    result = {
        "benchmark": "campaign", "corpus_name": corpus.name, "command": command, **started,
        "settings": {"start": args.start, "rounds": args.rounds, "per_round": args.per_round, "strategies": args.strategies,
                     **recipe(args), "pool_records": len(pool), "note": corpus.note},
        "full_f_by_seed": {str(k): 100 * v for k, v in full.items()}, "curves": curve,
        "verdict": verdict(curve, full_f, len(pool)),
        "verdicts": {s: verdict(curve, full_f, len(pool), s) for s in curve if s != "random"}, "seeds": seeds,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "campaign.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf8")
    if curve:
        plot(curve, full_f, out / "campaign.png", f"{corpus.name}: simulated annotation campaign")
        table = markdown_table(curve, full_f)
        (out / "campaign.md").write_text(table + "\n", encoding="utf8")
        if not quiet:
            print(table)
            print(json.dumps(result["verdict"], ensure_ascii=False))
    return result


def self_training_main(args) -> Dict:
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    from spacy_medner.calibration import EntityOutcomes, calibrate, crf_ner_pipe
    from spacy_medner.self_training import self_label

    corpus = corpus_of(args.corpus, args.shared)
    pool, data = campaign_data(corpus, args)
    out = args.output / corpus.name
    unlabelled = args.unlabelled
    if unlabelled is None:
        if corpus.name in UNLABELLED:
            unlabelled = args.shared / UNLABELLED[corpus.name][0] / "raw" / UNLABELLED[corpus.name][1]
        elif corpus.name == "demo":  # smoke runs only: the demo has no unlabelled records
            unlabelled = corpus.folder / "train.jsonl"
        else:
            raise SystemExit(f"{corpus.name}: pass --unlabelled (no unlabelled records known for it)")
    started, command = provenance(), command_line(__spec__.name if __spec__ else "benchmarks.campaign", args.argv)
    bar = pseudo_label_bar(args.min_prob, args.uncertain_floor)
    runs = []
    for seed in args.seeds:
        args.seed = seed
        print(f"=== {corpus.name} self-training, seed {seed}")
        trainer = SpacyTrainer(data, args.models / corpus.name, out / "runs", training_args(args), args.max_length)
        supervised = trainer(full_run(seed), list(pool))
        t0 = time.perf_counter()
        nlp = spacy.load(supervised.model)
        examples = [Example(nlp.make_doc(d.text), d) for d in DocBin().from_disk(data / "dev.spacy").get_docs(nlp.vocab)]
        try:
            report = calibrate(EntityOutcomes(nlp, examples))
        except ValueError as err:  # a model too weak to predict an entity on dev (smoke runs): left at T = 1
            print(f"calibration skipped: {err}")
            report = {"temperature": 1.0, "skipped": str(err)}
        _, pipe = crf_ner_pipe(nlp)
        pipe.cfg["temperature"] = report["temperature"]
        calibrated = args.models / corpus.name / f"seed{seed}-calibrated"
        nlp.to_disk(calibrated)
        calibrate_seconds = time.perf_counter() - t0
        pseudo = data / "runs" / f"seed{seed}-pseudo-{bar}" / "pseudo.spacy"
        summary = self_label(str(calibrated), [unlabelled], pseudo, min_prob=args.min_prob, uncertain_floor=args.uncertain_floor,
                             max_length=args.max_length, nlp=nlp)
        self_trained = trainer(f"seed{seed}-self-{bar}", None, extra_train=[data / "train.spacy", pseudo])
        runs.append({
            "seed": seed, "supervised": asdict(supervised), "self": asdict(self_trained),
            "gain": 100 * (self_trained.test_f - supervised.test_f), "temperature": report["temperature"],
            "calibrate_seconds": round(calibrate_seconds, 1), "label_seconds": summary.seconds, "pseudo": summary.to_dict(),
            "train_seconds_ratio": round(self_trained.train_seconds / supervised.train_seconds, 3) if supervised.train_seconds else None,
        })
    gains = [r["gain"] for r in runs]
    result = {
        "benchmark": "self_training", "corpus_name": corpus.name, "command": command, **started,
        "settings": {**recipe(args), "min_prob": args.min_prob, "uncertain_floor": args.uncertain_floor,
                     "unlabelled": _relative(unlabelled), "pool_records": len(pool)},
        "supervised_f_mean": mean([100 * r["supervised"]["test_f"] for r in runs]),
        "self_f_mean": mean([100 * r["self"]["test_f"] for r in runs]),
        "gain_mean": mean(gains), "gain_min": min(gains), "gain_max": max(gains),
        "train_seconds_ratio_mean": mean([r["train_seconds_ratio"] for r in runs if r["train_seconds_ratio"]]),
        "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"self_training_{bar}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf8")
    print(f"supervised {result['supervised_f_mean']:.2f}, self-trained {result['self_f_mean']:.2f}: gain {result['gain_mean']:+.2f} "
          f"({result['gain_min']:+.2f} to {result['gain_max']:+.2f}) over {len(runs)} seeds; "
          f"training time ×{result['train_seconds_ratio_mean']:.2f}, labelling {mean([r['label_seconds'] for r in runs]):.0f} s")
    return result


def pseudo_label_bar(min_prob: float, uncertain_floor: Optional[float]) -> str:
    """A self-training run's name part: its pseudo-labels depend on these two."""
    return f"p{min_prob:g}" + (f"-f{uncertain_floor:g}" if uncertain_floor is not None else "")


def _relative(path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(ROOT.parent).as_posix()
    except ValueError:
        return str(path)


def main(argv: Optional[List[str]] = None) -> None:
    import torch

    torch.set_num_threads(1)  # the machine is shared; benchmarks.accuracy's runs use one thread too
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["campaign", "self-training"])
    parser.add_argument("corpus")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated random seeds")
    parser.add_argument("--steps", type=int, default=900, help="training steps of every model")
    parser.add_argument("--eval-frequency", type=int, default=300)
    parser.add_argument("--config", default="configs/cpu_default.cfg", help="the training config, relative to the repository")
    parser.add_argument("--no-fgm", dest="fgm", action="store_false", help="FGM off: about half the training time per step")
    parser.add_argument("--start", type=int, default=100, help="campaign: records labelled at random before round 1")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--strategies", default="uncertainty,random", help=f"comma-separated, of {', '.join(STRATEGIES)}")
    parser.add_argument("--no-full", dest="full", action="store_false", help="campaign: skip the full-training-set model")
    parser.add_argument("--min-prob", type=float, default=0.9, help="self-training: keep pseudo-entities with at least this probability")
    parser.add_argument("--uncertain-floor", type=float, default=None, help="self-training: default 1 − min-prob")
    parser.add_argument("--unlabelled", type=Path, help="self-training: unlabelled records (default: CCKS2019's subtask2_unlabeled.txt)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--limit", type=int, help="keep only the first records of each split (smoke runs)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "campaign", help="JSON results (committed)")
    parser.add_argument("--models", type=Path, default=ROOT / "training" / "campaign", help="trained models (not committed)")
    parser.add_argument("--data", type=Path, default=ROOT / "corpus" / "campaign")
    parser.add_argument("--shared", type=Path, default=SHARED, help="folder holding <corpus>/raw")
    args = parser.parse_args(argv)
    args.argv = argv
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.strategies = args.strategies.split(",")
    if set(args.strategies) - set(STRATEGIES):
        parser.error(f"--strategies: unknown {sorted(set(args.strategies) - set(STRATEGIES))}; choose from {', '.join(STRATEGIES)}")
    if min(args.steps, args.start, args.per_round) < 1 or args.rounds < 0:
        parser.error("--steps, --start and --per-round must be at least 1, --rounds at least 0")
    if args.mode == "campaign":
        campaign_main(args)
    else:
        self_training_main(args)


if __name__ == "__main__":
    main()
