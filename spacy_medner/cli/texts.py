"""`python -m spacy_medner texts`: raw text for domain pretraining."""
from enum import Enum
from pathlib import Path
from typing import List

import typer
from wasabi import msg

from ..corpora.formats import READERS
from ..corpora.records import ConversionError
from ..corpora.texts import raw_texts
from . import app, fail, write_atomic

TextFormat = Enum("TextFormat", {name: name for name in ["plain", *READERS]}, type=str)


@app.command("texts")
def texts_cli(
    format: TextFormat = typer.Argument(..., help="'plain' (one text per line) or an annotated format, whose annotations are ignored."),
    inputs: List[Path] = typer.Argument(..., help="Input files, folders or zip archives."),
    output: Path = typer.Option(..., "--output", "-o", help="JSON lines of {\"text\"} for `spacy pretrain` (spacy.JsonlCorpus.v1)."),
    max_length: int = typer.Option(500, "--max-length", help="Split longer texts at sentence ends."),
) -> None:
    """Collect raw text for domain pretraining (`spacy pretrain`)."""
    import srsly

    try:
        lines = [srsly.json_dumps({"text": t}) for t in raw_texts(format.value, inputs, max_length)]
    except ConversionError as err:
        fail(str(err))
    if not lines:
        fail(f"{', '.join(map(str, inputs))}: no text found")
    write_atomic(output, ("\n".join(lines) + "\n").encode("utf8"))
    msg.good(f"Wrote {len(lines)} texts ({sum(len(l) for l in lines):,} bytes) to {output}")
