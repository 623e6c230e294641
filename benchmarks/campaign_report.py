"""BENCHMARKS.md's "The annotation loop" section, from
benchmarks/results/campaign/<corpus>/campaign.json and self_training_<bar>.json
(benchmarks.campaign). Standard library only, like benchmarks.report, which
calls `annotation_loop_section`.

The targets (issue 32), on seed means: uncertainty selection reaches
(full-data F1 − 1) with at most 60% of the pool's records, and is above
random selection at every round. Self-training has no target: its gain over
the supervised model of the same recipe, and what it costs, are reported.
"""
import json
from pathlib import Path
from typing import Dict, List, Optional

from benchmarks.markdown import table

FOLDER = "campaign"
STRATEGY_TITLES = {
    "uncertainty": "`select --strategy uncertainty`, the most expected errors per record, the default",
    "uncertainty-per-100-chars": "`select --per-100-chars`, the most expected errors per 100 characters",
    "random": "`select --strategy random`",
}


def _read(path: Path) -> Optional[dict]:
    return json.loads(path.read_text(encoding="utf8")) if path.exists() else None


def _recipe(settings: Dict) -> str:
    fgm = "FGM on" if settings.get("fgm", True) else "no FGM"
    return (f"`{settings['config']}`, {fgm}, {settings['steps']} steps (warm-up a tenth, linear decay), dev evaluated every "
            f"{settings['eval_frequency']} steps and the best kept, 1 torch thread")


def campaign_lines(c: Dict) -> List[str]:
    s, curves, verdict = c["settings"], c["curves"], c["verdict"]
    strategies = list(curves)
    n_rounds = max(len(rows) for rows in curves.values())
    header = ["round", "records"]
    for strategy in strategies:
        header += [f"{strategy} F1 (mean, min–max)", f"{strategy} chars"]
    chosen = [st for st in strategies if st != "random"] if "random" in strategies else []
    header += [f"{st} − random" for st in chosen]
    rows = []
    for r in range(n_rounds):
        cells = [r, next(curves[st][r]["records"] for st in strategies if r < len(curves[st]))]
        for strategy in strategies:
            row = curves[strategy][r] if r < len(curves[strategy]) else None
            cells += [f"{row['f_mean']:.2f} ({row['f_min']:.2f}–{row['f_max']:.2f})" if row else "—",
                      f"{row['chars_mean']:,.0f}" if row else "—"]
        for st in chosen:
            u, n = curves[st], curves["random"]
            cells.append(f"{u[r]['f_mean'] - n[r]['f_mean']:+.2f}" if r and r < len(u) and r < len(n) else "")
        rows.append(cells)
    full = c.get("full_f_by_seed") or {}
    lines = [
        f"### {c['corpus_name']}: a simulated campaign",
        "",
        f"Pool: the {s['pool_records']:,} training records left after dev is carved as in the accuracy tables ({s['note']}). "
        f"Per seed ({', '.join(map(str, s['seeds']))}), {s['start']} pool records drawn at random are labelled and a model is "
        f"trained (round 0, shared by the strategies); then, for {s['rounds']} rounds, the last model chooses {s['per_round']} "
        f"more records from the unlabelled rest ({'; '.join(f'{st}: {STRATEGY_TITLES.get(st, st)}' for st in s['strategies'])}), "
        "the simulated annotator corrects them to the gold entities, and a model is retrained from "
        "scratch on everything labelled so far. F1: exact entities on the official test set. chars: characters labelled "
        "(mean over seeds), what an annotator reads.",
        "",
        f"Every model: {_recipe(s)}.",
        "",
        f"Command: `{c['command']}`",
        "",
        *table(header, rows, align="r" * len(header)),
        "",
    ]
    if full:
        lines += [f"Full pool ({s['pool_records']:,} records), the same recipe: test F1 "
                  + ", ".join(f"{f:.2f} (seed {k})" for k, f in full.items())
                  + f"; mean {verdict['full_f']:.2f}.", ""]
    for strategy, judged in (c.get("verdicts") or {"uncertainty": verdict}).items():
        lines += [target_line(judged, s, strategy), ""]
    png = Path("benchmarks/results") / FOLDER / c["corpus_name"] / "campaign.png"
    lines += [f"![learning curves: test F1 against labelled records]({png.as_posix()})", ""]
    return lines


def target_line(verdict: Dict, settings: Dict, strategy: str = "uncertainty") -> str:
    share_limit = int(0.6 * settings["pool_records"])
    parts = []
    if "within_60_percent" in verdict:
        reached = verdict["reached_full_minus_1_at_records"]
        where = (f"reached at {reached} records ({100 * verdict['reached_share']:.0f}% of the pool)" if reached
                 else f"not reached within {settings['start'] + settings['rounds'] * settings['per_round']} records")
        parts.append(f"full − 1 = {verdict['full_f'] - 1:.2f} with at most {share_limit} records: {where}, "
                     f"**{'met' if verdict['within_60_percent'] else 'missed'}**")
    if "uncertainty_above_random_every_round" in verdict:
        parts.append(f"above random at every round: {verdict['rounds_above_random']} rounds, "
                     f"**{'met' if verdict['uncertainty_above_random_every_round'] else 'missed'}**")
    if not parts:
        return f"Target, {strategy}: not checked (a strategy or the full-data run is missing)."
    return f"Target, {strategy} (seed means): " + "; ".join(parts) + "."


def self_training_lines(t: Dict) -> List[str]:
    s = t["settings"]
    rows = []
    for run in t["runs"]:
        pseudo = run["pseudo"]
        rows.append([
            run["seed"], f"{100 * run['supervised']['test_f']:.2f}", f"{100 * run['self']['test_f']:.2f}", f"{run['gain']:+.2f}",
            f"{run['temperature']:.2f}", f"{pseudo['records']:,}", f"{pseudo['entities_kept']:,} / {pseudo['entities_dropped']:,}",
            f"{100 * pseudo['missing_share']:.1f}%", f"{run['supervised']['train_seconds']:.0f}", f"{run['self']['train_seconds']:.0f}",
            f"{run['calibrate_seconds'] + run['label_seconds']:.0f}",
        ])
    rows.append(["mean", f"{t['supervised_f_mean']:.2f}", f"{t['self_f_mean']:.2f}", f"{t['gain_mean']:+.2f}", *[""] * 7])
    return [
        f"### {t['corpus_name']}: self-training on unlabelled records, entities kept at p ≥ {s['min_prob']}",
        "",
        f"The supervised model is the campaign's full-pool model (the same run). It is calibrated on dev (one temperature, "
        f"T), labels the {s['unlabelled']} records (`self-label --min-prob {s['min_prob']}`: entities with a calibrated "
        f"probability of at least {s['min_prob']} kept, dropped entities' tokens and tokens with P(inside) ≥ "
        f"{s['uncertain_floor'] if s['uncertain_floor'] is not None else round(1 - s['min_prob'], 6)} left missing, "
        "marginalised by the CRF; the rest O), and the same recipe is trained again on gold + pseudo-labels. "
        f"Every model: {_recipe(s)}.",
        "",
        f"Command: `{t['command']}`",
        "",
        *table(["seed", "supervised F1", "self-trained F1", "gain", "T", "pseudo records", "entities kept / dropped",
                "tokens missing", "train s, supervised", "train s, self", "calibrate + label s"], rows),
        "",
        f"Gain {t['gain_mean']:+.2f} F1 (from {t['gain_min']:+.2f} to {t['gain_max']:+.2f} over {len(t['runs'])} seeds); "
        f"training time ×{t['train_seconds_ratio_mean']:.2f} of the supervised model's (the same number of steps), "
        "plus calibration and labelling.",
        "",
    ]


def annotation_loop_section(metrics: Path) -> List[str]:
    folder = metrics / FOLDER
    corpora = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []
    found = [(_read(folder / c / "campaign.json"), [_read(p) for p in sorted((folder / c).glob("self_training_*.json"))])
             for c in corpora]
    found = [(c, t) for c, t in found if c or t]
    if not found:
        return []
    lines = ["## The annotation loop (benchmarks.campaign)", ""]
    for campaign, self_training in found:
        if campaign:
            lines += campaign_lines(campaign)
        for run in sorted(self_training, key=lambda t: -t["settings"]["min_prob"]):
            lines += self_training_lines(run)
    return lines
