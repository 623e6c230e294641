"""The papers' ablation rows, each a set of config overrides on one base
config, trained and scored on one corpus; one table as markdown and JSON.

    python -m benchmarks.ablation TRAIN.spacy DEV.spacy --output metrics/ablation
        [--config configs/cpu_default.cfg] [--steps 300] [--init-tok2vec pretrain/model-last.bin]
        [--rows crf,softmax,...] [--fgm-epsilon 0]

Rows (groups): decoder (crf, softmax); encoder (plain, bilstm, bigru, att,
mha, bigru_mha); heads (mha_heads_1/4/8/12, on a 384-wide BiGRU so that 12
divides it); fgm (fgm_off, fgm_on); loss (softmax vs focal); pretraining
(off/on, only with --init-tok2vec). --fgm-epsilon sets FGM for every row but
the fgm group (default: the config's, 1.0 in cpu_default.cfg). Scores are the
best dev scores seen during training (spaCy's model-best).
"""
import argparse
import json
import time
from pathlib import Path

import srsly
from spacy.cli.train import train

from benchmarks.common import ROOT, command_line
from benchmarks.markdown import table

ENC = "components.crf_ner.model.encoder"
NER = "components.crf_ner"

ROWS = {
    "crf": ("decoder", {}),
    "softmax": ("decoder", {f"{NER}.model.decoder": "softmax"}),
    "plain": ("encoder", {f"{ENC}.rnn": None, f"{ENC}.attention": None}),
    "bilstm": ("encoder", {f"{ENC}.rnn": "lstm", f"{ENC}.attention": None}),
    "bigru": ("encoder", {f"{ENC}.rnn": "gru", f"{ENC}.attention": None}),
    "att": ("encoder", {f"{ENC}.rnn": "gru", f"{ENC}.attention": "additive"}),
    "mha": ("encoder", {f"{ENC}.rnn": None, f"{ENC}.attention": "mha", f"{ENC}.attention_heads": 4}),
    "bigru_mha": ("encoder", {f"{ENC}.rnn": "gru", f"{ENC}.attention": "mha"}),
    **{
        f"mha_heads_{h}": ("heads", {f"{ENC}.rnn": "gru", f"{ENC}.rnn_width": 384, f"{ENC}.attention": "mha", f"{ENC}.attention_heads": h})
        for h in (1, 4, 8, 12)
    },
    "fgm_off": ("fgm", {f"{NER}.fgm_epsilon": 0.0}),
    "fgm_on": ("fgm", {f"{NER}.fgm_epsilon": 1.0}),
    "softmax_ce": ("loss", {f"{NER}.model.decoder": "softmax"}),
    "softmax_focal": ("loss", {f"{NER}.model.decoder": "softmax", f"{NER}.model.focal_gamma": 2.0}),
    "pretraining_off": ("pretraining", {}),
    "pretraining_on": ("pretraining", {"paths.init_tok2vec": "INIT_TOK2VEC"}),
}


def run_row(name, overrides, args) -> dict:
    output = args.output / "runs" / name
    start = time.perf_counter()
    train(
        args.config,
        output,
        overrides={
            "paths.train": str(args.train), "paths.dev": str(args.dev),
            "training.max_steps": args.steps, "training.eval_frequency": args.eval_frequency,
            "training.optimizer.learn_rate.total_steps": args.steps,
            "training.optimizer.learn_rate.warmup_steps": max(1, args.steps // 10),
            **overrides,
        },
    )
    seconds = time.perf_counter() - start
    scores = srsly.read_json(output / "model-best" / "meta.json")["performance"]
    return {"row": name, "group": ROWS[name][0], "overrides": overrides, "ents_p": scores["ents_p"], "ents_r": scores["ents_r"],
            "ents_f": scores["ents_f"], "steps": args.steps, "train_seconds": round(seconds, 1)}


def markdown(results, args) -> str:
    rows = [[r["group"], r["row"], *(f"{100 * r[key]:.2f}" for key in ("ents_p", "ents_r", "ents_f")), r["train_seconds"]] for r in results]
    lines = [
        f"# Ablation on {args.train.name} / {args.dev.name}",
        "",
        f"Base config `{args.config}`, {args.steps} steps, best dev score. Command: `{args.command}`",
        "",
        *table(["group", "row", "P", "R", "F1", "train s"], rows, align="llrrrr"),
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path)
    parser.add_argument("dev", type=Path)
    parser.add_argument("--output", type=Path, default=Path("metrics/ablation"))
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "cpu_default.cfg")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-frequency", type=int, default=100)
    parser.add_argument("--init-tok2vec", type=Path)
    parser.add_argument("--rows", help="comma-separated subset of: " + ", ".join(ROWS))
    parser.add_argument("--fgm-epsilon", type=float, help="FGM strength for all rows outside the fgm group")
    args = parser.parse_args(argv)
    args.command = command_line(__spec__.name, argv)
    names = args.rows.split(",") if args.rows else list(ROWS)
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    results = []
    for name in names:
        base = {} if args.fgm_epsilon is None else {f"{NER}.fgm_epsilon": args.fgm_epsilon}
        overrides = {**base, **ROWS[name][1]}
        if overrides.get("paths.init_tok2vec") == "INIT_TOK2VEC":
            if args.init_tok2vec is None:
                print(f"skipping row {name}: no --init-tok2vec (run the pretrain-ccks2019 command first)")
                continue
            overrides["paths.init_tok2vec"] = str(args.init_tok2vec)
        results.append(run_row(name, overrides, args))
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "ablation.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf8")
    (args.output / "ablation.md").write_text(markdown(results, args), encoding="utf8")
    print(markdown(results, args))


if __name__ == "__main__":
    main()
