"""`python -m spacy_medner calibrate`: fit crf_ner's temperature on dev data."""
import shutil
from pathlib import Path

import srsly
import typer
from wasabi import msg

from . import app, fail
from .evaluate import load_examples, load_model


@app.command("calibrate")
def calibrate_cli(
    model: str = typer.Argument(..., help="Trained pipeline: a directory or an installed package."),
    data: Path = typer.Argument(..., help="Dev data (.spacy DocBin) with gold entities."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the calibrated pipeline."),
    per_label: bool = typer.Option(False, "--per-label", help="Also fit and save one temperature per label."),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to run on; -1 for CPU."),
) -> None:
    """Fit the temperature of crf_ner's entity probabilities on dev data; the
    entities themselves do not change."""
    from ..calibration import EntityOutcomes, calibrate, crf_ner_pipe

    nlp = load_model(model, gpu_id)
    try:
        name, pipe = crf_ner_pipe(nlp, source=model)
    except ValueError as err:
        fail(str(err))
    examples = load_examples(nlp, data)
    try:
        report = calibrate(EntityOutcomes(nlp, examples), per_label=per_label)
    except ValueError as err:
        fail(f"{data}: {err}")
    pipe.cfg["temperature"] = report["temperature"]
    pipe.cfg["label_temperatures"] = report.get("label_temperatures", {})
    before, after = report["before"], report["after"]
    msg.info(f"{report['n_entities']} predicted entities on {data}")
    msg.text(f"temperature {report['temperature']:.3f}: ECE {before['ece']:.4f} → {after['ece']:.4f}, "
             f"Brier {before['brier']:.4f} → {after['brier']:.4f}, NLL {before['nll']:.4f} → {after['nll']:.4f}")
    if per_label:
        per = report["after_per_label"]
        msg.text(f"per label: ECE {per['ece']:.4f}, Brier {per['brier']:.4f}, NLL {per['nll']:.4f} "
                 f"({', '.join(f'{k} {v:.2f}' for k, v in report['label_temperatures'].items())})")
    tmp = output.with_name(f".{output.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    nlp.to_disk(tmp)
    srsly.write_json(tmp / "calibration.json", report)
    shutil.rmtree(output, ignore_errors=True)
    tmp.rename(output)
    msg.good(f"Saved the calibrated pipeline to {output}")
