"""Write BENCHMARKS.md from the JSON that benchmarks.accuracy, .speed, .scaling and .selection wrote.

    python -m benchmarks.report [--metrics benchmarks/results] [--output BENCHMARKS.md] [--notes benchmarks/notes.md]

Only what is in those files is reported; a corpus or system that was not run
is listed as not measured. The result files are committed and each carries the
date, machine and versions it was measured with, so the report can be rebuilt
on any machine and can combine runs of several sessions (its header lists every
machine and version set involved). A file that does not come from a run (one
marked `recovered_from`, figures copied from an older report) is refused: every
figure in the report must have a run behind it. Needs neither spaCy nor torch.
"""
import argparse
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

from benchmarks.common import ROOT
from benchmarks.markdown import table
from benchmarks.speed_report import speed_levers_section
from benchmarks.campaign_report import annotation_loop_section
from benchmarks.nested import NESTED_SYSTEMS
from benchmarks.systems import SYSTEMS

CORPORA = ["ccks2019", "tcm_manual", "rocling", "msra", "cmeee", "demo"]
TARGETS = {"ccks2019": 82.0, "msra": 90.3}
NESTED_FOLDER = "nested"  # benchmarks.nested's results: a section of their own, not accuracy rows


def pct(x: Optional[float]) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def runnable(command: str) -> str:
    """A recorded command in the form that runs today: results written before the benchmarks
    became a package recorded `python benchmarks/X.py`, which is now `python -m benchmarks.X`."""
    return re.sub(r"^python benchmarks/(\w+)\.py\b", r"python -m benchmarks.\1", command)


def read_result(path: Path) -> Dict:
    """One result file; a file marked `recovered_from` holds figures with no run behind them."""
    data = json.loads(path.read_text(encoding="utf8"))
    if data.get("recovered_from"):
        raise ValueError(f"{path}: recovered_from {data['recovered_from']!r}: copied figures, not a run; "
                         "measure it again or remove the file")
    return data


def seed_zero_rows(seeds: Dict[str, Dict[str, List[Dict]]]) -> Dict[str, Dict[str, Dict]]:
    """results[corpus][system]: the seed-0 run of each system, the rows of the tables."""
    results = {corpus: {system: runs[0] for system, runs in systems.items() if runs[0].get("seed", 0) == 0}
               for corpus, systems in seeds.items()}
    return {corpus: systems for corpus, systems in results.items() if systems}


def load_seeds(metrics: Path) -> Dict[str, Dict[str, List[Dict]]]:
    """runs[corpus][system]: every run of each system, by seed (files without one are seed 0)."""
    runs: Dict[str, Dict[str, List[Dict]]] = {}
    for path in sorted(metrics.glob("*/*.json")):
        if path.parent.name == NESTED_FOLDER:
            continue  # benchmarks.nested's runs: other systems, other scoring, a section of their own
        data = read_result(path)
        if "corpus" in data and "system" in data:
            if data["system"] not in SYSTEMS:
                raise ValueError(f"{path}: unknown system {data['system']!r} (benchmarks/systems.py declares {', '.join(SYSTEMS)})")
            runs.setdefault(data["corpus"], {}).setdefault(data["system"], []).append(data)
    for systems in runs.values():
        for records in systems.values():
            records.sort(key=lambda r: r.get("seed", 0))
    return runs


def headline(record: Dict) -> Dict:
    """The scores a row shows: the macro average over several test sets, else the one test set's."""
    return record["macro"] if "macro" in record else next(iter(record["tests"].values()))


def commands(records: List[Dict]) -> str:
    return "; ".join(f"`{c}`" for c in dict.fromkeys(runnable(r["command"]) for r in records))


def seeds_section(runs: Dict[str, List[Dict]]) -> List[str]:
    """Systems run with more than one seed: test F1 of each, mean and range (a single seed's row hides this spread)."""
    repeated = {system: runs[system] for system in SYSTEMS if len(runs.get(system, [])) > 1}
    if not repeated:
        return []
    rows = []
    for system, records in repeated.items():
        fs = [100 * headline(r)["f"] for r in records]
        by_seed = ", ".join(f"{r.get('seed', 0)}: {f:.2f} ({_kept_model(r)})" for r, f in zip(records, fs))
        rows.append([SYSTEMS[system].title, len(fs), by_seed, f"{sum(fs) / len(fs):.2f}", f"{max(fs) - min(fs):.2f}"])
    other_seeds = [r for records in repeated.values() for r in records if r.get("seed", 0)]
    return ["Test F1 by random seed (`--seed`), with the dev F1 and step of the model that dev selection kept; "
            "the rows above are seed 0:", "",
            *table(["system", "seeds", "test F1 by seed", "mean", "max − min"], rows, align="lrlrr"),
            "", "Command (seeds other than 0): " + commands(other_seeds), ""]


def _kept_model(record: Dict) -> str:
    """Why a seed scored what it did is often which evaluation dev selection kept."""
    step = record.get("best_step")
    return f"dev {100 * record['dev_f']:.2f}" + ("" if step is None else f", step {step}")


def accuracy_rows(runs: Dict[str, Dict]) -> List[List]:
    """One row per system run on the corpus, in the declared order."""
    rows = []
    for system in (s for s in SYSTEMS if s in runs):
        r = runs[system]
        s = headline(r)
        rows.append([SYSTEMS[system].title, pct(r["dev_f"]), pct(s["p"]), pct(s["r"]), f"**{pct(s['f'])}**", pct(s["boundary_f"]),
                     f"{r['train_seconds']:.0f}", f"{r['seconds_to_best']:.0f}", r.get("steps", "—"), r.get("date", "—"),
                     r.get("commit") or "—"])
    return rows


def not_measured(runs: Dict[str, Dict]) -> List[str]:
    """The systems a corpus lacks. Opt-in variants are extra rows, not gaps: pretraining
    needs unlabelled in-domain text, which only CCKS2019 ships."""
    return [name for name, system in SYSTEMS.items() if name not in runs and system.variant is None]


def accuracy_section(corpus: str, runs: Dict[str, Dict], seeds: Optional[Dict[str, List[Dict]]] = None) -> List[str]:
    first = next(iter(runs.values()))
    test_names = list(first["tests"])
    present = [s for s in SYSTEMS if s in runs]
    lines = [f"### {corpus}", "", first["splits"]["note"] + ".", ""]
    split_counts = ", ".join(f"{name} {s['records']} records / {s['ents_out']} entities" for name, s in first["splits"]["splits"].items())
    lines += [f"Splits: {split_counts}.", ""]
    inner = {name: s["spans_out"] - s["ents_out"] for name, s in first["splits"]["splits"].items() if s["spans_out"] > s["ents_out"]}
    if inner:
        # Nested corpora: doc.ents holds the outer spans, doc.spans["sc"] every mention.
        left_out = ", ".join(f"{name} {n}" for name, n in inner.items())
        lines += [f"Nested mentions kept in `doc.spans` but neither trained nor scored (flat tagger): {left_out}.", ""]
    scope = "macro over " + "/".join(test_names) if len(test_names) > 1 else test_names[0]
    lines += table(["system", "dev F1", f"{scope} P", "R", "F1", "boundary F1", "train s", "s to best dev", "steps", "date", "commit"],
                   accuracy_rows(runs), align="lrrrrrrrrll")
    for system in present:
        r = runs[system]
        if r.get("stopped_by") == "time cap":
            lines += ["", f"{SYSTEMS[system].title}: stopped by `--time-cap` after {r['train_seconds']:.0f} s, at step "
                          f"{r['steps']}, before spaCy's patience rule stopped it; its best dev score came at step {r['best_step']}."]
    missing = not_measured(runs)
    if missing:
        lines += ["", "Not measured in this run: " + "; ".join(SYSTEMS[s].title for s in missing) + "."]
    if len(test_names) > 1:
        lines += ["", *table(["system", *(f"{t} F1" for t in test_names)],
                             [[s, *(pct(runs[s]["tests"][t]["f"]) for t in test_names)] for s in present])]
    # Per type, exact F1, on the (first) test set.
    first_test = test_names[0]
    labels = sorted({label for r in runs.values() for label in r["tests"][first_test]["per_type"]})
    per_type = [[label, first["tests"][first_test]["per_type"].get(label, {}).get("n_gold", 0),
                 *(pct(runs[s]["tests"][first_test]["per_type"].get(label, {}).get("f")) for s in present)] for label in labels]
    lines += ["", f"Per type, exact F1 on {first_test}:", "", *table(["type", "gold", *present], per_type)]
    lines += ["", "Command: " + commands(sorted((runs[s] for s in present), key=lambda r: runnable(r["command"]))), ""]
    return lines + seeds_section(seeds or {})


def provenance_lines(records: List[Dict]) -> List[str]:
    """Date, machine and versions of the runs in the report: each distinct value once."""
    lines = []
    for key, title in (("date", "Dates"), ("machine", "Machines"), ("versions", "Versions")):
        values = sorted({r[key] for r in records if r.get(key)})
        if key == "date" and len(values) > 1:
            values = [f"{values[0]} to {values[-1]}"]
        lines += [f"- {title}: {values[0]}"] if len(values) == 1 else [f"- {title}:"] + [f"  - {v}" for v in values]
    return lines


def targets_section(results: Dict[str, Dict[str, Dict]], seeds: Dict[str, Dict[str, List[Dict]]]) -> List[str]:
    lines = ["## Targets", ""]
    for corpus, target in TARGETS.items():
        if "crf_ner" not in results.get(corpus, {}):
            lines.append(f"- {corpus} test F1 ≥ {target}: not measured in this run.")
            continue
        lines.append(f"- {corpus} test F1 ≥ {target}: {_against_target(seeds[corpus]['crf_ner'], target)}.")
        for name, system in SYSTEMS.items():
            if system.variant and name in seeds[corpus]:
                lines.append(f"  - {system.variant} (`{name}`): {_against_target(seeds[corpus][name], target)}.")
    if "crf_ner" in results.get("ccks2019", {}):
        lines += _training_time_target(seeds["ccks2019"]["crf_ner"], minutes=30)
    return lines + [""]
def minutes_to_best(runs: List[Dict]) -> Dict[int, float]:
    """Minutes from the start of training to the kept (best dev) evaluation, by seed."""
    return {r.get("seed", 0): r["seconds_to_best"] / 60 for r in runs}


def _training_time_target(runs: List[Dict], minutes: float) -> List[str]:
    """Every seed is judged, each with its machine: the same 900 steps took 20 to 39 minutes on
    machines of one type, so a time is only meaningful next to where it was measured."""
    taken = minutes_to_best(runs)
    late = [seed for seed, m in taken.items() if m > minutes]
    if not late:
        verdict = "met" if len(runs) == 1 else f"met by all {len(runs)} seeds"
    else:
        verdict = "missed" if len(runs) == 1 else f"missed by seed{'s' * (len(late) > 1)} {', '.join(map(str, late))} of {len(runs)}"
    lines = [f"- CCKS2019 best dev score within {minutes:.0f} minutes: {verdict}."]
    for run, m in zip(runs, taken.values()):
        lines.append(f"  - seed {run.get('seed', 0)}: {m:.1f} minutes to the best dev evaluation, "
                     f"on {run.get('machine') or 'an unrecorded machine'}.")
    return lines


def target_verdict(runs: List[Dict], target: float) -> Dict:
    """Test F1 by seed and their mean; with several seeds the verdict goes by the mean, not by the luckiest seed."""
    fs = {r.get("seed", 0): 100 * r["tests"]["test"]["f"] for r in runs}
    mean = sum(fs.values()) / len(fs)
    return {"f": fs, "mean": mean, "met": mean >= target, "missed_by": max(0.0, target - mean)}


def _against_target(runs: List[Dict], target: float) -> str:
    verdict = target_verdict(runs, target)
    fs, f = verdict["f"], verdict["mean"]
    said = "met" if verdict["met"] else f"missed by {verdict['missed_by']:.2f}"
    seeds = list(fs)
    if len(fs) == 1:
        return f"{f:.2f}" + (f" with seed {seeds[0]}" if seeds[0] else "") + f", {said}"
    if seeds[0]:  # a variant run only on other seeds than the tables' seed 0
        return f"{f:.2f} averaged over seeds {', '.join(map(str, seeds))}, {said}"
    return f"{fs[0]:.2f} with seed 0, {f:.2f} averaged over {len(fs)} seeds, {said}"


def _measured(metrics: Path, name: str, title: str):
    """(the JSON of metrics/<name>, heading lines), or (None, lines saying it was not measured)."""
    path = metrics / name
    heading = [f"## {title}", ""]
    if not path.exists():
        return None, heading + ["Not measured in this run.", ""]
    return read_result(path), heading


# The speed targets compare our systems with spaCy's default accuracy `ner`.
SPEED_BASELINE = "spacy_ner_cnn"


def speed_section(metrics: Path) -> List[str]:
    speed, lines = _measured(metrics, "speed.json", "Speed and memory")
    if speed is None:
        return lines
    lines += [
        f"`nlp.pipe` over {Path(speed['texts']).name} ({speed['docs']} docs, {speed['chars']:,} characters), "
        f"batch {speed['rows'][0]['batch_size']}, best of {speed['repeats']}; each row in a fresh process with torch and BLAS "
        "limited to the thread count. Peak RSS includes loading the model.",
        "",
        f"Command: `{runnable(speed['command'])}`",
        "",
        *table(["model", "threads", "chars/s", "peak RSS MB"],
               [[_model_name(r["model"]), r["threads"], f"{r['chars_per_second']:,}", r["peak_rss_mb"]] for r in speed["rows"]]),
    ]
    by = {(_model_name(r["model"]), r["threads"]): r["chars_per_second"] for r in speed["rows"]}
    for system in (name for name, s in SYSTEMS.items() if s.ours):
        for threads in sorted({r["threads"] for r in speed["rows"]}):
            ours, baseline = by.get((system, threads)), by.get((SPEED_BASELINE, threads))
            if ours and baseline:
                ratio = ours / baseline
                lines.append(
                    f"\n{system} on {threads} thread(s): {ours:,} chars/s, {ratio:.1f}× spaCy `ner` (CNN): "
                    f"≥ 10× {_met(ratio >= 10)}, ≥ 30,000 chars/s {_met(ours >= 30_000)}."
                )
    return lines + [""]


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def _model_name(model: str) -> str:
    """The system a measured model path belongs to (benchmarks.accuracy's layout), else the path."""
    for system in SYSTEMS:
        if f"/{system}/" in model or model.endswith(f"{system}.pkl"):
            return system
    return model


# The machine column of the length benchmarks: "idle" means no extra process was started by the benchmark.
MACHINE = {"idle": "no trainer started", "busy": "beside a trainer"}


def scaling_section(metrics: Path) -> List[str]:
    scaling, lines = _measured(metrics, "scaling.json", "Scaling with document length")
    if scaling is None:
        return lines
    lines += [
        f"{_model_name(scaling['model'])}, {scaling['threads']} threads, batch {scaling['batch_size']}. "
        "Flat characters per second means cost linear in length.",
        "",
        f"Command: `{runnable(scaling['command'])}`",
        "",
        *table(["machine", "length", "docs", "ms/doc", "chars/s"],
               [[MACHINE.get(r.get("machine", "idle")), f"{r['length']:,}", r["docs"], r["ms_per_doc"], f"{r['chars_per_second']:,}"] for r in scaling["rows"]],
               align="lrrrr"),
    ]
    if (ROOT / "benchmarks" / "scaling.png").exists():
        lines += ["", "![prediction time against document length](benchmarks/scaling.png)"]
    return lines + [""]


def selection_section(metrics: Path) -> List[str]:
    """Which checkpoint to keep, judged on dev alone (benchmarks.selection): the F1 of each rule's pick on the half of dev it did not see."""
    found = [read_result(p) for p in sorted(metrics.glob("*/selection.json"))]
    if not found:
        return []
    lines = ["## Model selection on dev", ""]
    for chosen in found:
        rules = list(chosen["runs"][0]["held_out_f"])
        rows = [[run["seed"], ", ".join(f"{step}: {pct(f)}" for step, f in run["dev_f"].items()),
                 *(pct(run["held_out_f"][rule]) + _against_last(run, rule) for rule in rules)] for run in chosen["runs"]]
        rows.append(["mean", "", *(pct(sum(r["held_out_f"][rule] for r in chosen["runs"]) / len(chosen["runs"])) for rule in rules)])
        lines += [
            f"{chosen['corpus']}, {chosen['selection_of']}: {chosen['dev_records']} dev records "
            f"({chosen.get('dev_segments', chosen['dev_records'])} segments; a record's segments stay together) halved at random "
            f"{chosen['halvings']:,} times; each rule picks a checkpoint on one half and is scored on the other. "
            "Mean held-out F1 (and, against `last` on the same halves, how often the pick did better / worse). "
            "The test split is not read.",
            "",
            f"Command: `{runnable(chosen['command'])}`",
            "",
            *table(["seed", "dev F1 by step", *rules], rows, align="rl" + "r" * len(rules)),
            "",
        ]
    return lines


CALIBRATION_ROWS = {"raw": "as trained (T = 1)", "global": "one temperature", "per_label": "one temperature per label"}


def entity_scores_section(metrics: Path) -> List[str]:
    """Entity probabilities: their cost (benchmarks.entity_scores speed) and
    their calibration on a test set (benchmarks.entity_scores calibration)."""
    speeds = [read_result(p) for p in sorted(metrics.glob("entity_scores/speed*.json"))]
    calibrations = [read_result(p) for p in sorted(metrics.glob("entity_scores/calibration_*.json"))]
    if not speeds and not calibrations:
        return []
    lines = ["## Entity probabilities", ""]
    for speed in speeds:
        lines += [
            f"Cost: `nlp.pipe` (batch 64) over {speed['n_texts']} texts ({speed['n_chars']:,} characters), "
            f"{speed['threads']} thread(s), {_model_name(speed['model'])}, the median of {speed['rounds']} rounds that "
            "alternate Viterbi only (`spans_key = null`) and Viterbi plus entity probabilities; the entities were checked identical.",
            "",
            f"Command: `{runnable(speed['command'])}`",
            "",
            *table(["", "chars/s"], [["Viterbi only", f"{speed['chars_per_s']['viterbi_only']:,.0f}"],
                                     ["with entity probabilities", f"{speed['chars_per_s']['with_scores']:,.0f}"]]),
            "",
            f"Time with probabilities: {speed['time_ratio']:.2f}× Viterbi only (target ≤ 1.25×: {_met(speed['time_ratio'] <= 1.25)}).",
            "",
        ]
    for found in calibrations:
        test = found["test"]
        lines += [
            f"Calibration on {found['corpus']}: temperature fitted on dev by log-likelihood "
            f"({found['dev']['n_entities']:,} predicted entities), scored on test ({test['n_entities']:,} predicted, "
            f"{test['n_gold']:,} gold, precision {100 * test['precision']:.2f}). ECE: 10 equal-width bins; an entity is "
            "correct when start, end and label match a gold entity. Review: the share of predicted entities a reviewer "
            "must check, least confident first, for the unchecked rest to reach that precision.",
            "",
            f"Command: `{runnable(found['command'])}`",
            "",
            *table(
                ["test", "ECE", "Brier", "NLL", "review for 98%", "review for 95%"],
                [[title, f"{test[key]['ece']:.4f}", f"{test[key]['brier']:.4f}", f"{test[key]['nll']:.4f}",
                  f"{100 * test[key]['review_share_98']:.1f}%", f"{100 * test[key].get('review_share_95', float('nan')):.1f}%"]
                 for key, title in CALIBRATION_ROWS.items()],
            ),
            "",
            f"Temperature {found['temperature']:.3f}; per label: "
            + ", ".join(f"{label} {t:.2f}" for label, t in found["label_temperatures"].items()) + ".",
            "",
        ]
        if found["corpus"] == "ccks2019":
            ece = test["global"]["ece"]
            lines += [f"Target ECE ≤ 0.03 on CCKS2019 test: {_met(ece <= 0.03)}" + ("" if ece <= 0.03 else f", by {ece - 0.03:.4f}") + ".", ""]
        plots = ROOT / "benchmarks" / "results" / "entity_scores" / "plots" / f"{found['corpus']}-global"
        if (plots / "reliability.png").exists():
            lines += [f"![reliability, {found['corpus']} test, one temperature](benchmarks/results/entity_scores/plots/{found['corpus']}-global/reliability.png)", ""]
    return lines


def serve_section(metrics: Path) -> List[str]:
    """The HTTP service under load (benchmarks.serve_load), beside nlp.pipe on the same texts."""
    load, lines = _measured(metrics, "serve_load.json", "HTTP service under load")
    if load is None:
        return []
    pipe = load["nlp_pipe"]
    lines += [
        f"`python -m spacy_medner serve` on loopback, {_model_name(load['model'])} (untrained: cost does not depend on "
        f"the weights), {load['threads']} torch thread per server, {Path(load['texts']).name}. Errors count any answer "
        "that is not 200 or whose entities differ from `nlp.pipe`'s. Batched: concurrent requests share one model call "
        "(`--batch-wait-ms`); unbatched: `--no-batching`. Best of the rounds; the modes were measured in turn, cell by cell.",
        "",
        f"Command: `{runnable(load['command'])}`",
        "",
        f"`nlp.pipe` (batch 64) on the same texts: {pipe['pipe_batch64_chars_per_second']:,} chars/s; "
        f"one text at a time: {pipe['one_at_a_time_chars_per_second']:,} chars/s.",
        "",
        *table(
            ["request", "mode", "concurrency", "requests/s", "chars/s", "p50 ms", "p99 ms", "errors"],
            [[c["request"], c["mode"], c["concurrency"], c["requests_per_second"], f"{c['chars_per_second']:,}",
              c["p50_ms"], c["p99_ms"], c["errors"]] for c in load["cells"]],
            align="llrrrrrr",
        ),
        "",
    ]
    return lines


def annotate_section(metrics: Path) -> List[str]:
    """`annotate` at archive scale (benchmarks.annotate_throughput): engines, record length, memory."""
    found = {p.stem: read_result(p) for p in sorted(metrics.glob("annotate/*.json"))}
    if not found:
        return []
    lines = ["## Annotating an archive", "",
             "`python -m spacy_medner annotate` on short demo records, one torch thread per process. Times include loading "
             "the pipeline (and, for Ray, starting the actors; not the cluster). The machine was shared with other jobs "
             "(its load average at the start of each run is given), so read the rows of one table against each other.", ""]
    for name in ("throughput", "throughput_ray"):
        if name in found:
            run = found[name]
            lines += [f"Command: `{runnable(run['command'])}` (load average {run['load_average_at_start'][0]:.1f})", ""]
            if run.get("note"):
                lines += [run["note"], ""]
            lines += [*table(["engine", "records", "records/s", "chars/s", "peak RSS MiB (main)", "peak RSS MiB (each worker)"],
                             [[r["engine"], f"{r['records']:,}", r["records_per_s"], f"{r['chars_per_s']:,}",
                               r.get("peak_rss_main_mib", "–"), ", ".join(map(str, r["peak_rss_workers_mib"])) or "–"]
                              for r in run["throughput"]]), ""]
    if "lengths" in found:
        run = found["lengths"]
        lines += ["One record of each length, predicted whole (split 0) or cut at sentence ends into pieces of at most "
                  "2,000 characters and merged back; busy: while another process trains a torch model. Flat chars/s "
                  "means cost linear in length.", "",
                  f"Command: `{runnable(run['command'])}`", "",
                  *table(["machine", "length", "split", "ms/record", "chars/s"],
                         [[MACHINE.get(r["machine"], r["machine"]), f"{r['length']:,}", f"{r['split_length']:,}", r["ms_per_record"], f"{r['chars_per_s']:,}"]
                          for r in run["lengths"]], align="lrrrr"), ""]
    if "memory" in found:
        run = found["memory"]
        lines += ["Peak memory while the input grows (streaming: it should stay flat).", "",
                  f"Command: `{runnable(run['command'])}`", "",
                  *table(["records", "input MiB", "seconds", "peak RSS MiB"],
                         [[f"{r['records']:,}", r["input_mib"], r["seconds"], r["peak_rss_main_mib"]] for r in run["memory"]]), ""]
    return lines


# The span decoder's target: this many all-mention F1 points above the flat CRF and above spancat.
NESTED_MARGIN = 3.0


def load_nested(metrics: Path) -> Dict[str, Dict[str, Dict]]:
    """nested[corpus][system]: benchmarks.nested's results (<corpus>_<system>.json), systems in the declared order."""
    found: Dict[str, Dict[str, Dict]] = {}
    for path in sorted(metrics.glob(f"{NESTED_FOLDER}/*.json")):
        data = read_result(path)
        if data.get("system") not in NESTED_SYSTEMS:
            raise ValueError(f"{path}: unknown system {data.get('system')!r} (benchmarks/nested.py declares {', '.join(NESTED_SYSTEMS)})")
        found.setdefault(data["corpus"], {})[data["system"]] = data
    return {corpus: {name: runs[name] for name in NESTED_SYSTEMS if name in runs} for corpus, runs in found.items()}


def _nested_row(r: Dict, test: Dict) -> List:
    outer = test.get("outer", {}).get("f")
    load = r.get("load_average", {}).get("start")
    return [NESTED_SYSTEMS[r["system"]].title, pct(test["p"]), pct(test["r"]), f"**{pct(test['f'])}**", pct(outer),
            f"{r['train_seconds']:.0f}", r.get("steps") if r.get("steps") is not None else "—",
            r.get("best_step") if r.get("best_step") is not None else "—", r.get("stopped_by", "—"),
            f"{test['chars_per_second']:,}", "—" if load is None else f"{load[0]:.1f}", r.get("date", "—"), r.get("commit") or "—"]


NESTED_HEADER = ["system", "P", "R", "F1", "outer F1", "train s", "steps", "best step", "stopped by", "predict chars/s",
                 "load", "date", "commit"]


def nested_target(runs: Dict[str, Dict], test: str = "test") -> str:
    """span_ner's all-mention F1 against the best of the flat CRF and spancat, in points."""
    if "span_ner" not in runs:
        return f"Target (span_ner ≥ {NESTED_MARGIN:.0f} F1 above crf_ner flat and above spancat): not measured in this run."
    ours = 100 * runs["span_ner"]["tests"][test]["f"]
    others = {name: 100 * runs[name]["tests"][test]["f"] for name in ("crf_ner", "spancat") if name in runs}
    if not others:
        return f"Target: span_ner {ours:.2f}; crf_ner flat and spancat not measured in this run."
    margins = ", ".join(f"{ours - f:+.2f} over {name} ({f:.2f})" for name, f in others.items())
    short = max(others.values()) + NESTED_MARGIN - ours
    verdict = "met" if short <= 0 else f"missed by {short:.2f}"
    unmeasured = [name for name in ("crf_ner", "spancat") if name not in others]
    tail = f"; {', '.join(unmeasured)} not measured" if unmeasured else ""
    return (f"Target (span_ner ≥ {NESTED_MARGIN:.0f} F1 above crf_ner flat and above spancat): span_ner {ours:.2f}, "
            f"{margins}: {verdict}{tail}.")


def nested_section(metrics: Path) -> List[str]:
    """CMeEE with every mention scored (benchmarks.nested), and the span decoder's cost on flat CCKS2019."""
    nested = load_nested(metrics)
    if not nested:
        return []
    lines = ["## Nested entities (CMeEE, all mentions)", ""]
    runs = nested.get("cmeee")
    if not runs:
        lines += ["Not measured in this run.", ""]
    else:
        first = next(iter(runs.values()))
        test = next(iter(first["tests"]))
        ceiling = first["flat_ceiling"][test]
        split = first["splits"]["splits"][f"test-{test}"]
        budget = next((r["time_budget"] for r in runs.values() if r.get("time_budget")), None)
        lines += [
            # The corpus note's first clause: the rest describes the flat accuracy rows' scoring, not this section's.
            f"{first['splits']['note'].split(';')[0]}. Test: {split['records']:,} records, {ceiling['n_gold']:,} mentions, of which "
            f"{ceiling['n_outer']:,} are outer mentions (`doc.ents`) and {ceiling['n_gold'] - ceiling['n_outer']:,} lie "
            "inside or across another. Every system is scored against all mentions of `doc.spans[\"sc\"]`, exact start, end and "
            "type; the flat systems predict `doc.ents`, the span systems a span group. outer F1: `doc.ents` against the "
            "gold outer mentions (what the accuracy tables score).",
            "",
            "Budget: " + (f"{budget / 60:.0f} minutes of training wall time for each trained system" if budget else "—")
            + ", seed 0, 1 torch thread, no FGM (crf_ner's `fgm_epsilon = 0`); each config's schedule set to a step "
            "count meant to fit (warm-up a tenth, linear decay), stopped by the clock if it did not; the test split is "
            "scored once with the best dev evaluation's model. The character CRF has fixed hyper-parameters and no "
            "budget. Predict chars/s: `nlp.pipe` over the test texts, 1 thread. load: the machine's 1-minute load "
            "average when the run started (2 cores, shared with other jobs).",
            "",
            *table(NESTED_HEADER, [*(_nested_row(r, r["tests"][test]) for r in runs.values()),
                                   ["perfect flat prediction (ceiling)", pct(1.0), pct(ceiling["r"]), pct(ceiling["f"]), pct(1.0),
                                    *["—"] * (len(NESTED_HEADER) - 5)]],
                   align="lrrrrrrrlrrll"),
            "",
            nested_target(runs, test),
            "",
        ]
        for r in runs.values():
            if r.get("best_step") == 0:
                scores = ", ".join(f"{pct(e['score'])} at step {e['step']}" for e in r["evaluations"])
                lines += [f"{NESTED_SYSTEMS[r['system']].title}: no later dev evaluation beat the untrained model's ({scores}), "
                          "so the model scored on test is the untrained pipeline.", ""]
        spancat = runs.get("spancat", {}).get("span_max_length")
        if spancat:
            lines += [f"spancat's suggester: every n-gram of 1 to {spancat['value']} characters ({spancat['from']}).", ""]
        labels = sorted(ceiling["per_type"])
        per_type = [[label, ceiling["per_type"][label]["n_gold"], pct(ceiling["per_type"][label]["r"]),
                     *(pct(r["tests"][test]["per_type"].get(label, {}).get("f")) for r in runs.values())] for label in labels]
        lines += [f"Per type, exact F1 on {test} against all mentions (flat ceiling: the recall of a perfect flat prediction):", "",
                  *table(["type", "gold", "flat ceiling R", *runs], per_type), ""]
        missing = [s.title for name, s in NESTED_SYSTEMS.items() if name not in runs]
        if missing:
            lines += ["Not measured in this run: " + "; ".join(missing) + ".", ""]
        lines += ["Command: " + commands(list(runs.values())), ""]
    lines += ["### CCKS2019 (flat): what the span decoder costs on flat data", ""]
    flat = {name: r for name, r in nested.get("ccks2019", {}).items() if name in ("span_ner", "crf_ner")}
    if not flat:
        return lines + ["Not measured in this run.", ""]
    test = next(iter(next(iter(flat.values()))["tests"]))
    lines += ["No nesting: the span group holds the same mentions as `doc.ents`. The same budget as above; entity F1, exact.", "",
              *table(NESTED_HEADER, [_nested_row(r, r["tests"][test]) for r in flat.values()], align="lrrrrrrrlrrll"), ""]
    if len(flat) == 2:
        lines += [f"span_ner − crf_ner: {100 * (flat['span_ner']['tests'][test]['f'] - flat['crf_ner']['tests'][test]['f']):+.2f} F1.", ""]
    else:
        lines += ["Not measured in this run: " + "; ".join(NESTED_SYSTEMS[n].title for n in ("span_ner", "crf_ner") if n not in flat) + ".", ""]
    return lines + ["Command: " + commands(list(flat.values())), ""]


def _against_last(run: Dict, rule: str) -> str:
    against = run.get("against_last", {}).get(rule)
    return "" if against is None else f" ({100 * against['better']:.0f}% / {100 * against['worse']:.0f}%)"


def report(metrics: Path, notes: Path) -> List[str]:
    """The lines of BENCHMARKS.md; ValueError names a result file that cannot be reported."""
    seeds = load_seeds(metrics)
    results = seed_zero_rows(seeds)
    records = [r for systems in seeds.values() for runs in systems.values() for r in runs]
    records += [read_result(metrics / name) for name in ("speed.json", "scaling.json") if (metrics / name).exists()]
    records += [read_result(path) for path in sorted(metrics.glob("*/selection.json"))]
    records += [read_result(path) for path in sorted(metrics.glob("entity_scores/*.json"))]
    records += [read_result(metrics / name) for name in ("serve_load.json",) if (metrics / name).exists()]
    records += [read_result(path) for path in sorted(metrics.glob("annotate/*.json"))]
    records += [read_result(path) for path in sorted(metrics.glob(f"{NESTED_FOLDER}/*.json"))]
    records += [read_result(path) for path in sorted(metrics.glob("campaign/*/*.json"))]
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks.report` from the result files in benchmarks/results/ (committed; "
        "`spacy project run benchmark` writes them); every figure below was measured by the command shown with it. "
        "CPU only, no downloaded pretrained weights.",
        "",
        *provenance_lines(records),
        "",
        "Exact: start, end and type must match. Boundary: start and end must match, any type. P/R/F1 are micro "
        "averages over entities; \"s to best dev\" is the training time at the evaluation that gave the kept model.",
        "",
    ]
    lines += targets_section(results, seeds)
    lines += ["## Accuracy", ""]
    for corpus in CORPORA:
        if corpus in results:
            lines += accuracy_section(corpus, results[corpus], seeds[corpus])
        elif corpus != "demo":
            lines += [f"### {corpus}", "", "Not measured in this run.", ""]
    lines += nested_section(metrics)
    lines += annotation_loop_section(metrics)
    lines += selection_section(metrics)
    lines += speed_section(metrics)
    lines += speed_levers_section(metrics)
    lines += entity_scores_section(metrics)
    lines += serve_section(metrics)
    lines += annotate_section(metrics)
    lines += scaling_section(metrics)
    if notes.exists():
        lines += ["## Notes", "", "Hand-written (`--notes`, default benchmarks/notes.md), not generated:", "", notes.read_text(encoding="utf8")]
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--notes", type=Path, default=ROOT / "benchmarks" / "notes.md", help="hand-written reading of the figures, appended if present")
    args = parser.parse_args(argv)
    try:
        lines = report(args.metrics, args.notes)
    except ValueError as err:
        sys.exit(f"[benchmarks.report] {err}")
    args.output.write_text("\n".join(lines), encoding="utf8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
