"""Write BENCHMARKS.md from the JSON that accuracy.py, speed.py and scaling.py wrote.

    python benchmarks/report.py [--metrics benchmarks/results] [--output BENCHMARKS.md]

Only what is in those files is reported; a corpus or system that was not run
is listed as not measured. The result files are committed and each carries the
date, machine and versions it was measured with, so the report can be rebuilt
on any machine and can combine runs of several sessions (its header lists every
machine and version set involved).
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT  # noqa: E402

CORPORA = ["ccks2019", "tcm_manual", "rocling", "msra", "cmeee", "demo"]
SYSTEMS = ["crf_ner", "crf_ner_pretrained", "crf_ner_words", "crf_ner_words_pretrained", "crf_ner_averaged", "crf_ner_words_averaged", "crf_ner_words_pretrained_averaged", "spacy_ner", "spacy_ner_cnn", "spacy_ner_cnn_converged", "crfsuite"]
SYSTEM_NAMES = {
    "crf_ner": "crf_ner, configs/cpu_default.cfg (ours)",
    "crf_ner_pretrained": "crf_ner, the same after `spacy pretrain` on unlabelled text (ours)",
    "crf_ner_words": "crf_ner, the same with jieba word features, CharEmbed.v2 (ours)",
    "crf_ner_words_pretrained": "crf_ner, with word features and `spacy pretrain` (ours)",
    "crf_ner_averaged": "crf_ner, the same with parameter averaging, `use_averages` (ours)",
    "crf_ner_words_averaged": "crf_ner, with word features and averaging (ours)",
    "crf_ner_words_pretrained_averaged": "crf_ner, with word features, `spacy pretrain` and averaging (ours)",
    "spacy_ner": "spaCy `ner`, same encoder and schedule",
    "spacy_ner_cnn": "spaCy `ner`, default accuracy CNN, equal wall time",
    "spacy_ner_cnn_converged": "spaCy `ner`, default accuracy CNN, trained to convergence",
    "crfsuite": "character CRF (sklearn-crfsuite)",
}
TARGETS = {"ccks2019": 82.0, "msra": 90.3}
OPTIONAL_ROWS = {
    "crf_ner_pretrained": "with domain pretraining", "crf_ner_words": "with word features",
    "crf_ner_words_pretrained": "with word features and domain pretraining",
    "crf_ner_averaged": "with parameter averaging",
    "crf_ner_words_averaged": "with word features and parameter averaging",
    "crf_ner_words_pretrained_averaged": "with word features, domain pretraining and parameter averaging",
}
RECOVERED = "†"


def pct(x: Optional[float]) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def seed_zero_rows(seeds: Dict[str, Dict[str, List[Dict]]]) -> Dict[str, Dict[str, Dict]]:
    """results[corpus][system]: the seed-0 run of each system, the rows of the tables."""
    results = {corpus: {system: runs[0] for system, runs in systems.items() if runs[0].get("seed", 0) == 0}
               for corpus, systems in seeds.items()}
    return {corpus: systems for corpus, systems in results.items() if systems}


def load_seeds(metrics: Path) -> Dict[str, Dict[str, List[Dict]]]:
    """runs[corpus][system]: every run of each system, by seed (files without one are seed 0)."""
    runs: Dict[str, Dict[str, List[Dict]]] = {}
    for path in sorted(metrics.glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf8"))
        if "corpus" in data and "system" in data:
            runs.setdefault(data["corpus"], {}).setdefault(data["system"], []).append(data)
    for systems in runs.values():
        for records in systems.values():
            records.sort(key=lambda r: r.get("seed", 0))
    return runs


def seeds_section(runs: Dict[str, List[Dict]]) -> List[str]:
    """Systems run with more than one seed: test F1 of each, mean and range (a single seed's row hides this spread)."""
    repeated = {system: records for system, records in runs.items() if len(records) > 1}
    if not repeated:
        return []
    lines = ["Test F1 by random seed (`--seed`), with the dev F1 and step of the model that dev selection kept; "
             "the rows above are seed 0:", "",
             "| system | seeds | test F1 by seed | mean | max − min |", "|---|---:|---|---:|---:|"]
    for system in SYSTEMS:
        if system in repeated:
            fs = [100 * (r["macro"] if "macro" in r else next(iter(r["tests"].values())))["f"] for r in repeated[system]]
            by_seed = ", ".join(f"{r.get('seed', 0)}: {f:.2f} ({_kept_model(r)})" for r, f in zip(repeated[system], fs))
            lines.append(f"| {SYSTEM_NAMES[system]} | {len(fs)} | {by_seed} | {sum(fs) / len(fs):.2f} | {max(fs) - min(fs):.2f} |")
    commands = dict.fromkeys(r["command"] for system in SYSTEMS for r in repeated.get(system, []) if r.get("seed", 0))
    return lines + ["", "Command (seeds other than 0): " + "; ".join(f"`{c}`" for c in commands), ""]


def _kept_model(record: Dict) -> str:
    """Why a seed scored what it did is often which evaluation dev selection kept."""
    step = record.get("best_step")
    return f"dev {100 * record['dev_f']:.2f}" + ("" if step is None else f", step {step}")


def accuracy_section(corpus: str, runs: Dict[str, Dict], seeds: Optional[Dict[str, List[Dict]]] = None) -> List[str]:
    first = next(iter(runs.values()))
    test_names = list(first["tests"])
    lines = [f"### {corpus}", "", first["splits"]["note"] + ".", ""]
    split_counts = ", ".join(f"{name} {s['records']} records / {s['ents_out']} entities" for name, s in first["splits"]["splits"].items())
    lines += [f"Splits: {split_counts}.", ""]
    inner = {name: s["spans_out"] - s["ents_out"] for name, s in first["splits"]["splits"].items() if s["spans_out"] > s["ents_out"]}
    if inner:
        # Nested corpora: doc.ents holds the outer spans, doc.spans["sc"] every mention.
        left_out = ", ".join(f"{name} {n}" for name, n in inner.items())
        lines += [f"Nested mentions kept in `doc.spans` but neither trained nor scored (flat tagger): {left_out}.", ""]
    headline = "macro over " + "/".join(test_names) if len(test_names) > 1 else test_names[0]
    lines += [
        f"| system | dev F1 | {headline} P | R | F1 | boundary F1 | train s | s to best dev | steps | date | commit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for system in SYSTEMS:
        if system not in runs:
            continue
        r = runs[system]
        s = r["macro"] if len(test_names) > 1 else r["tests"][test_names[0]]
        steps = r.get("steps", "—")
        mark = f" {RECOVERED}" if r.get("recovered_from") else ""
        lines.append(
            f"| {SYSTEM_NAMES[system]}{mark} | {pct(r['dev_f'])} | {pct(s['p'])} | {pct(s['r'])} | **{pct(s['f'])}** | {pct(s['boundary_f'])} "
            f"| {r['train_seconds']:.0f} | {r['seconds_to_best']:.0f} | {steps} | {r.get('date', '—')} | {r.get('commit') or '—'} |"
        )
    lines += _recovered_note(runs.values(), " (per-type P/R and the per-evaluation log are missing)")
    for system in SYSTEMS:
        if runs.get(system, {}).get("stopped_by") == "time cap":
            r = runs[system]
            lines += ["", f"{SYSTEM_NAMES[system]}: stopped by `--time-cap` after {r['train_seconds']:.0f} s, at step "
                          f"{r['steps']}, before spaCy's patience rule stopped it; its best dev score came at step {r['best_step']}."]
    # Extra rows, not gaps: pretraining needs unlabelled in-domain text (only CCKS2019 ships it), and
    # word features are an opt-in variant of the default.
    missing = [SYSTEM_NAMES[s] for s in SYSTEMS if s not in runs and s not in OPTIONAL_ROWS]
    if missing:
        lines += ["", "Not measured in this run: " + "; ".join(missing) + "."]
    if len(test_names) > 1:
        lines += ["", "| system | " + " | ".join(f"{t} F1" for t in test_names) + " |", "|---|" + "---:|" * len(test_names)]
        for system in SYSTEMS:
            if system in runs:
                lines.append(f"| {system} | " + " | ".join(pct(runs[system]["tests"][t]["f"]) for t in test_names) + " |")
    # Per type, exact F1, on the (first) test set.
    labels = sorted({l for r in runs.values() for l in r["tests"][test_names[0]]["per_type"]})
    present = [s for s in SYSTEMS if s in runs]
    lines += ["", f"Per type, exact F1 on {test_names[0]}:", "", "| type | gold | " + " | ".join(present) + " |", "|---|---:|" + "---:|" * len(present)]
    for label in labels:
        gold = first["tests"][test_names[0]]["per_type"].get(label, {}).get("n_gold", 0)
        cells = [pct(runs[s]["tests"][test_names[0]]["per_type"].get(label, {}).get("f")) for s in present]
        lines.append(f"| {label} | {gold} | " + " | ".join(cells) + " |")
    commands = sorted({runs[s]["command"] for s in present})
    lines += ["", "Command: " + "; ".join(f"`{c}`" for c in commands), ""]
    return lines + seeds_section(seeds or {})


def _recovered_note(records, missing: str = "") -> List[str]:
    """A footnote for results rebuilt from an older BENCHMARKS.md, whose raw files were not kept."""
    sources = sorted({r["recovered_from"] for r in records if r.get("recovered_from")})
    if not sources:
        return []
    return ["", f"{RECOVERED} Recovered from the tables of {', '.join(sources)}: the raw result file of that run was not "
                f"kept, so its figures are those tables'{missing}."]


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
        for system, title in OPTIONAL_ROWS.items():
            if system in seeds[corpus]:
                lines.append(f"  - {title} (`{system}`): {_against_target(seeds[corpus][system], target)}.")
    if "crf_ner" in results.get("ccks2019", {}):
        lines += _training_time_target(seeds["ccks2019"]["crf_ner"], minutes=30)
    return lines + [""]


def _training_time_target(runs: List[Dict], minutes: float) -> List[str]:
    """Every seed is judged, each with its machine: the same 900 steps took 20 to 39 minutes on
    machines of one type, so a time is only meaningful next to where it was measured."""
    taken = [r["seconds_to_best"] / 60 for r in runs]
    late = [r.get("seed", 0) for r, m in zip(runs, taken) if m > minutes]
    if not late:
        verdict = "met" if len(runs) == 1 else f"met by all {len(runs)} seeds"
    else:
        verdict = "missed" if len(runs) == 1 else f"missed by seed{'s' * (len(late) > 1)} {', '.join(map(str, late))} of {len(runs)}"
    lines = [f"- CCKS2019 best dev score within {minutes:.0f} minutes: {verdict}."]
    for run, m in zip(runs, taken):
        lines.append(f"  - seed {run.get('seed', 0)}: {m:.1f} minutes to the best dev evaluation, "
                     f"on {run.get('machine') or 'an unrecorded machine'}.")
    return lines


def _against_target(runs: List[Dict], target: float) -> str:
    """Seed 0's test F1; with several seeds the verdict goes by their mean, not by the luckiest seed."""
    fs = [100 * r["tests"]["test"]["f"] for r in runs]
    f = sum(fs) / len(fs)
    verdict = "met" if f >= target else f"missed by {target - f:.2f}"
    seeds = [r.get("seed", 0) for r in runs]
    if len(fs) == 1:
        return f"{f:.2f}" + (f" with seed {seeds[0]}" if seeds[0] else "") + f", {verdict}"
    if seeds[0]:  # a variant run only on other seeds than the tables' seed 0
        return f"{f:.2f} averaged over seeds {', '.join(map(str, seeds))}, {verdict}"
    return f"{fs[0]:.2f} with seed 0, {f:.2f} averaged over {len(fs)} seeds, {verdict}"


def _measured(metrics: Path, name: str, title: str):
    """(the JSON of metrics/<name>, heading lines), or (None, lines saying it was not measured)."""
    path = metrics / name
    heading = [f"## {title}", ""]
    if not path.exists():
        return None, heading + ["Not measured in this run.", ""]
    return json.loads(path.read_text(encoding="utf8")), heading


def speed_section(metrics: Path) -> List[str]:
    speed, lines = _measured(metrics, "speed.json", "Speed and memory")
    if speed is None:
        return lines
    lines += _recovered_note([speed])[1:] + [""] if speed.get("recovered_from") else []
    lines += [
        f"`nlp.pipe` over {Path(speed['texts']).name} ({speed['docs']} docs, {speed['chars']:,} characters), "
        f"batch {speed['rows'][0]['batch_size']}, best of {speed['repeats']}; each row in a fresh process with torch and BLAS "
        "limited to the thread count. Peak RSS includes loading the model.",
        "",
        f"Command: `{speed['command']}`",
        "",
        "| model | threads | chars/s | peak RSS MB |",
        "|---|---:|---:|---:|",
    ]
    for r in speed["rows"]:
        lines.append(f"| {_model_name(r['model'])} | {r['threads']} | {r['chars_per_second']:,} | {r['peak_rss_mb']} |")
    by = {(_model_name(r["model"]), r["threads"]): r["chars_per_second"] for r in speed["rows"]}
    for system in ("crf_ner", "crf_ner_words"):
        for threads in sorted({r["threads"] for r in speed["rows"]}):
            ours, cnn = by.get((system, threads)), by.get(("spacy_ner_cnn", threads))
            if ours and cnn:
                ratio = ours / cnn
                lines.append(
                    f"\n{system} on {threads} thread(s): {ours:,} chars/s, {ratio:.1f}× spaCy `ner` (CNN): "
                    f"≥ 10× {_met(ratio >= 10)}, ≥ 30,000 chars/s {_met(ours >= 30_000)}."
                )
    return lines + [""]


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def _model_name(model: str) -> str:
    for system in SYSTEMS:
        if f"/{system}/" in model or model.endswith(f"{system}.pkl"):
            return system
    return model


def scaling_section(metrics: Path) -> List[str]:
    scaling, lines = _measured(metrics, "scaling.json", "Scaling with document length")
    if scaling is None:
        return lines
    lines += _recovered_note([scaling])[1:] + [""] if scaling.get("recovered_from") else []
    lines += [
        f"{_model_name(scaling['model'])}, {scaling['threads']} threads, batch {scaling['batch_size']}. "
        "Flat characters per second means cost linear in length.",
        "",
        f"Command: `{scaling['command']}`",
        "",
        "| length | docs | ms/doc | chars/s |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['length']:,} | {r['docs']} | {r['ms_per_doc']} | {r['chars_per_second']:,} |" for r in scaling["rows"]]
    if (ROOT / "benchmarks" / "scaling.png").exists():
        lines += ["", "![prediction time against document length](benchmarks/scaling.png)"]
    return lines + [""]


def selection_section(metrics: Path) -> List[str]:
    """Which checkpoint to keep, judged on dev alone (selection.py): the F1 of each rule's pick on the half of dev it did not see."""
    found = [json.loads(p.read_text(encoding="utf8")) for p in sorted(metrics.glob("*/selection.json"))]
    if not found:
        return []
    lines = ["## Model selection on dev", ""]
    for chosen in found:
        rules = list(chosen["runs"][0]["held_out_f"])
        lines += [
            f"{chosen['corpus']}, {chosen['selection_of']}: {chosen['dev_records']} dev records "
            f"({chosen.get('dev_segments', chosen['dev_records'])} segments; a record's segments stay together) halved at random "
            f"{chosen['halvings']:,} times; each rule picks a checkpoint on one half and is scored on the other. "
            "Mean held-out F1 (and, against `last` on the same halves, how often the pick did better / worse). "
            "The test split is not read.",
            "",
            f"Command: `{chosen['command']}`",
            "",
            "| seed | dev F1 by step | " + " | ".join(rules) + " |",
            "|---:|---|" + "---:|" * len(rules),
        ]
        for run in chosen["runs"]:
            by_step = ", ".join(f"{step}: {pct(f)}" for step, f in run["dev_f"].items())
            cells = [pct(run["held_out_f"][rule]) + _against_last(run, rule) for rule in rules]
            lines.append(f"| {run['seed']} | {by_step} | " + " | ".join(cells) + " |")
        means = [pct(sum(r["held_out_f"][rule] for r in chosen["runs"]) / len(chosen["runs"])) for rule in rules]
        lines += [f"| mean | | " + " | ".join(means) + " |", ""]
    return lines


def _against_last(run: Dict, rule: str) -> str:
    against = run.get("against_last", {}).get(rule)
    return "" if against is None else f" ({100 * against['better']:.0f}% / {100 * against['worse']:.0f}%)"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--notes", type=Path, default=ROOT / "benchmarks" / "notes.md", help="hand-written reading of the figures, appended if present")
    args = parser.parse_args(argv)
    seeds = load_seeds(args.metrics)
    results = seed_zero_rows(seeds)
    records = [r for systems in seeds.values() for runs in systems.values() for r in runs]
    records += [json.loads((args.metrics / name).read_text(encoding="utf8")) for name in ("speed.json", "scaling.json")
                if (args.metrics / name).exists()]
    records += [json.loads(path.read_text(encoding="utf8")) for path in sorted(args.metrics.glob("*/selection.json"))]
    lines = [
        "# Benchmarks",
        "",
        "Written by `python benchmarks/report.py` from the result files in benchmarks/results/ (committed; "
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
    lines += selection_section(args.metrics)
    lines += speed_section(args.metrics)
    lines += scaling_section(args.metrics)
    if args.notes.exists():
        lines += ["## Notes", "", "Hand-written (`--notes`, default benchmarks/notes.md), not generated:", "", args.notes.read_text(encoding="utf8")]
    args.output.write_text("\n".join(lines), encoding="utf8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
