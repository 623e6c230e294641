"""Render displaCy entity HTML for sample docs, one colour per medical label.

    python scripts/visualize.py MODEL INPUT.jsonl OUTPUT.html [N]

INPUT is JSON lines with a "text" field (doccano/prodigy exports, the demo corpus).
"""
import sys
from pathlib import Path

import spacy
import srsly
from spacy import displacy

from spacy_medner.display import COLORS


def main(model: str, input_path: str, output: str, n: int = 20) -> None:
    nlp = spacy.load(model)
    texts = [line["text"] for line, _ in zip(srsly.read_jsonl(input_path), range(n))]
    html = displacy.render(list(nlp.pipe(texts)), style="ent", page=True, options={"colors": COLORS})
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(html, encoding="utf8")
    print(f"✔ wrote {output} ({len(texts)} docs)")


if __name__ == "__main__":
    main(*sys.argv[1:4], *(int(x) for x in sys.argv[4:5]))
