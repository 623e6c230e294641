"""`python -m spacy_medner evaluate`: accuracy and calibration of a pipeline
on gold data, as metrics.json and plots."""
import shutil
from pathlib import Path
from typing import List

import spacy
import srsly
import typer
from spacy.tokens import DocBin
from spacy.training import Example
from wasabi import msg

from . import app, fail


def load_model(model: str, gpu_id: int = -1):
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)  # before loading, so every torch module is placed on the GPU
    try:
        return spacy.load(model)
    except (OSError, IOError) as err:
        fail(f"{model}: cannot load the pipeline ({str(err).splitlines()[0][:200]})")


def load_examples(nlp, data: Path) -> List[Example]:
    if not data.is_file():
        fail(f"{data}: no such file")
    try:
        docs = list(DocBin().from_disk(data).get_docs(nlp.vocab))
    except Exception:  # DocBin raises various errors on foreign bytes
        fail(f"{data}: not a spaCy DocBin (.spacy); convert it with `python -m spacy_medner convert`")
    if not docs:
        fail(f"{data}: the DocBin holds no documents")
    return [Example(nlp.make_doc(doc.text), doc) for doc in docs]


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Trained pipeline: a directory or an installed package."),
    data: Path = typer.Argument(..., help="Gold data (.spacy DocBin)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for metrics.json, reliability.png and threshold.png."),
    threshold: float = typer.Option(None, "--threshold", help="Evaluate with this entity threshold instead of the pipeline's."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the PNG plots (needs matplotlib)."),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to run on; -1 for CPU."),
) -> None:
    """Exact-match P/R/F (spaCy's scorer), entity-level ECE and Brier score,
    the reliability diagram, precision and recall against the threshold, and
    the share of entities to review for 98% precision on the rest."""
    from ..calibration import crf_ner_pipe, entity_metrics, plot

    if threshold is not None and not 0.0 <= threshold <= 1.0:
        fail(f"--threshold must be a probability in [0, 1], got {threshold}")
    nlp = load_model(model, gpu_id)
    try:
        _, pipe = crf_ner_pipe(nlp, source=model)
    except ValueError as err:
        fail(str(err))
    if not pipe.spans_key:
        fail(f"{model}: crf_ner has spans_key = null, so it sets no entity probabilities")
    if threshold is not None:
        pipe.threshold = threshold
    references = [eg.reference for eg in load_examples(nlp, data)]
    docs = list(nlp.pipe(doc.text for doc in references))
    scores = pipe.score([Example(doc, reference) for doc, reference in zip(docs, references)])
    metrics = {
        "ents_p": scores["ents_p"], "ents_r": scores["ents_r"], "ents_f": scores["ents_f"],
        "ents_per_type": scores["ents_per_type"], "threshold": pipe.threshold,
        "temperature": pipe.cfg.get("temperature", 1.0),
        "calibration": entity_metrics(docs, references, pipe.spans_key),
    }
    tmp = output.with_name(f".{output.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    srsly.write_json(tmp / "metrics.json", metrics)
    if plots:
        try:
            plot(metrics["calibration"], tmp, title=Path(str(model)).name)
        except ImportError:
            msg.warn("matplotlib is not installed: no plots (pip install matplotlib)")
    shutil.rmtree(output, ignore_errors=True)
    tmp.rename(output)
    c = metrics["calibration"]
    msg.good(
        f"P {metrics['ents_p']:.4f} R {metrics['ents_r']:.4f} F {metrics['ents_f']:.4f}; "
        f"ECE {c['ece']:.4f}, Brier {c['brier']:.4f}, review {c['review_share_98']:.1%} for 98% precision; wrote {output}"
    )
