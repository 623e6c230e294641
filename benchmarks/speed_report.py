"""BENCHMARKS.md's "Prediction profile and speed levers" section, from
benchmarks/results/speed/profile_*.json (benchmarks.profile_prediction) and
benchmarks/results/speed/levers.json (benchmarks.speed_ab). Standard library
only, like benchmarks.report, which calls `speed_levers_section`.

The targets (issue 33), read off the A/B run, in which the first variant is
the code and model of before the speed work ("today"):
- exact: the default network's chars/s on 2 threads at least twice today's,
  with identical entities;
- approximate: some variant at least half the character CRF's chars/s, for
  at most 0.3 F1 lost against today on the same gold texts.
"""
import json
from pathlib import Path
from typing import List, Optional

from benchmarks.markdown import table

FOLDER = "speed"


def _read(path: Path) -> Optional[dict]:
    return json.loads(path.read_text(encoding="utf8")) if path.exists() else None


def profile_lines(today: Optional[dict], now: Optional[dict]) -> List[str]:
    """One table per thread count: each stage's seconds before ("today") and
    after the speed work ("now"), from benchmarks.profile_prediction."""
    runs = [r for r in (today, now) if r is not None]
    first = runs[0]
    titles = {}
    for run in runs:
        for stage in run["stages"]:
            titles.setdefault(stage["stage"], stage["title"])
    seconds = [{s["stage"]: s["seconds"] for s in run["stages"]} for run in runs]
    names = [name for name, run in (("today", today), ("now", now)) if run is not None]
    rows = [[titles[k]] + [f"{col[k]:.3f}" if k in col else "" for col in seconds] for k in titles]
    totals = [sum(col.values()) for col in seconds]
    rows.append(["sum of stages"] + [f"{t:.3f} ({first['chars'] / t:,.0f} chars/s)" for t in totals])
    rows.append(["`nlp.pipe` on the same texts"] + [f"{r['pipe_seconds']:.3f} ({first['chars'] / r['pipe_seconds']:,.0f} chars/s)" for r in runs])
    return [
        f"**Where the time goes, {first['threads']} thread(s)** ({first['docs']} docs, {first['chars']:,} characters of "
        f"{first['texts']}; batch {first['batch_size']}; seconds, best of {first['repeats']}; "
        + "; ".join(f"{n}: commit {r['commit']}, {r['date']}" for n, r in zip(names, runs))
        + f"). Command: `{first['command']}`",
        "",
        *table(["stage"] + [f"{n} (s)" for n in names], rows),
        "",
    ]


def lever_verdicts(levers: dict, exact_variant: str, crf_variant: str) -> List[str]:
    rows = levers["rows"]
    lines = []
    for threads in sorted({r["threads"] for r in rows}):
        at = {r["variant"]: r for r in rows if r["threads"] == threads}
        base = next(r for r in rows if r["threads"] == threads)
        exact = at.get(exact_variant)
        if exact:
            ratio = exact["chars_per_second"] / base["chars_per_second"]
            verdict = "met" if ratio >= 2 and exact["same_entities"] else "missed"
            lines.append(
                f"- {threads} thread(s): `{exact_variant}` {exact['chars_per_second']:,} chars/s, {ratio:.2f}× `{base['variant']}` "
                f"({'identical' if exact['same_entities'] else 'different'} entities): ≥ 2× {verdict}."
            )
        crf = at.get(crf_variant)
        if crf and "f" in base:
            for r in at.values():
                if r is crf or r["model"].endswith(".cfg") or "f" not in r:
                    continue
                share = r["chars_per_second"] / crf["chars_per_second"]
                change = round(r["f"] - base["f"], 2) + 0.0  # + 0.0: no "-0.00"
                ok = share >= 0.5 and change >= -0.3
                lines.append(
                    f"  - `{r['variant']}`: {share:.0%} of the character CRF's chars/s, F1 {r['f']:.2f} "
                    f"({change:+.2f} against `{base['variant']}`): ≥ 50% at ≤ 0.3 F1 lost {'met' if ok else 'missed'}."
                )
    return lines


def speed_levers_section(metrics: Path, exact_variant: str = "now", crf_variant: str = "crfsuite") -> List[str]:
    folder = metrics / FOLDER
    profiles = {
        threads: (_read(folder / f"profile_{threads}thread_today.json"), _read(folder / f"profile_{threads}thread_now.json"))
        for threads in (1, 2)
    }
    levers = _read(folder / "levers.json")
    if not any(any(pair) for pair in profiles.values()) and levers is None:
        return []
    lines = [
        "## Prediction profile and speed levers",
        "",
        "\"today\" is the prediction code before the speed work (that of 267ae94, on the same tree otherwise: the tag "
        "`speed-baseline`), \"now\" the working tree's; both predict the same trained `configs/cpu_default.cfg` model.",
        "",
    ]
    for today, now in profiles.values():
        if today or now:
            lines += profile_lines(today, now)
    if levers is not None:
        lines += [
            f"**Levers, A/B** ({levers['docs']} docs, {levers['chars']:,} characters of {levers['texts']}; batch "
            f"{levers['batch_size']}; {levers['rounds']} rounds, the variants in turn within each round, each run in a fresh "
            f"process; median chars/s; {levers['date']}, commit {levers['commit']}). \"Identical\": every entity (start, end, "
            f"label) equals the first variant's on every text. F1: exact match against the gold entities of the same texts. "
            f"Command: `{levers['command']}`",
            "",
            *table(
                ["variant", "code", "threads", "chars/s", "× first", "rounds", "F1", "entities", "peak RSS MB"],
                [
                    [r["variant"], r["code"], r["threads"], f"{r['chars_per_second']:,}", f"{r['speedup']:.2f}",
                     " / ".join(f"{x:,}" for x in r["rounds"]), f"{r['f']:.2f}" if "f" in r else "",
                     "identical" if r["same_entities"] else "different", r["peak_rss_mb"]]
                    for r in levers["rows"]
                ],
            ),
            "",
            "Targets:",
            *lever_verdicts(levers, exact_variant, crf_variant),
            "",
        ]
    return lines
