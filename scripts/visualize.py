"""Render displaCy entity HTML of a pipeline's predictions on converted docs.

    python scripts/visualize.py MODEL corpus/dev.spacy visualize/ents.html [--n 30] [--gpu-id -1] [--scores]

The texts come from a DocBin (what `python -m spacy_medner convert` wrote), so
it works for every corpus format. Every label the pipeline predicts gets a
distinct colour (spacy_medner.display.label_colors), registered with displaCy
the way a packaged pipeline registers them, so the page is rendered by the
same `displacy.render(docs, style="ent")` call a user's app makes. With
`--scores`, each entity's label carries its probability from crf_ner's span
group (e.g. `药物 0.93`), in its label's colour.
"""
from pathlib import Path
from typing import List

import spacy
import typer
from spacy import displacy
from spacy.language import Language
from spacy.tokens import DocBin

from spacy_medner.cli import fail, write_atomic
from spacy_medner.display import label_colors, register_displacy_colors, registered_colors
from spacy_medner.io.entities import entity_scores, scoring_group


def entity_labels(nlp: Language) -> List[str]:
    """The labels of every component that sets doc.ents (crf_ner, spaCy's ner, ...)."""
    labels = set()
    for name, pipe in nlp.pipeline:
        if "doc.ents" in nlp.get_pipe_meta(name).assigns:
            labels.update(getattr(pipe, "labels", ()))
    return sorted(labels)


def main(
    model: str = typer.Argument(..., help="Pipeline directory or installed package"),
    docbin: Path = typer.Argument(..., help="Converted corpus (.spacy) whose texts are rendered", exists=True, dir_okay=False),
    output: Path = typer.Argument(..., help="HTML file to write"),
    n: int = typer.Option(30, "--n", min=1, help="Number of docs to render (the first n)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU to predict on; -1 for CPU"),
    scores: bool = typer.Option(False, "--scores", help="Show each entity's probability in its label"),
) -> None:
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)  # before loading, so every torch module lands on the GPU
    try:
        nlp = spacy.load(model)
    except OSError as err:  # E050: neither an installed package nor a pipeline directory
        fail(f"{model}: {err}")
    try:
        docs = DocBin().from_disk(docbin)
    except Exception as err:  # msgpack and zlib raise their own types for a file that is not a DocBin
        fail(f"{docbin}: not a DocBin (.spacy) file, as `python -m spacy_medner convert` writes ({err})")
    texts = [doc.text for doc, _ in zip(docs.get_docs(nlp.vocab), range(n))]
    if not texts:
        fail(f"{docbin}: no docs to render")
    # A pipeline that registered its colours on load keeps them; labels without one get label_colors'.
    labels = entity_labels(nlp)
    registered = registered_colors()
    register_displacy_colors({label: color for label, color in label_colors(labels).items() if label not in registered})
    docs = list(nlp.pipe(texts))
    html = render_with_scores(docs, scoring_group(nlp).key) if scores else displacy.render(docs, style="ent", page=True)
    write_atomic(output, html.encode("utf8"))
    typer.echo(f"✔ wrote {output} ({len(texts)} docs, {len(labels)} labels)")


def render_with_scores(docs, spans_key: str) -> str:
    """displaCy's entity rendering with `LABEL 0.93` as each label; the
    colours are the labels' own."""
    colors = registered_colors()
    pages, shown_colors = [], {}
    for doc in docs:
        scored = entity_scores(doc, spans_key) if spans_key else {}
        ents = []
        for ent in doc.ents:
            score = scored.get((ent.start_char, ent.end_char, ent.label_))
            shown = ent.label_ if score is None else f"{ent.label_} {score:.2f}"
            shown_colors[shown] = colors.get(ent.label_, "#ddd")
            ents.append({"start": ent.start_char, "end": ent.end_char, "label": shown})
        pages.append({"text": doc.text, "ents": ents, "title": None})
    return displacy.render(pages, style="ent", manual=True, page=True, options={"colors": shown_colors})


if __name__ == "__main__":
    typer.run(main)
