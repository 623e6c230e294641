"""`python -m spacy_medner convert`: a corpus to spaCy's DocBin, with a report."""
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ..corpora.convert import convert
from ..corpora.formats import READERS
from ..corpora.records import ConversionError
from . import app, fail, write_atomic

Format = Enum("Format", {name: name for name in READERS}, type=str)


class BadTags(str, Enum):
    repair = "repair"
    reject = "reject"


@app.command("convert")
def convert_cli(
    format: Format = typer.Argument(..., help="Input format."),
    inputs: List[Path] = typer.Argument(..., help="Input files, folders or zip archives."),
    output: Path = typer.Option(..., "--output", "-o", help="DocBin to write (.spacy)."),
    report_path: Optional[Path] = typer.Option(None, "--report", help="Where to write the JSON conversion report."),
    dev_output: Optional[Path] = typer.Option(None, "--dev-output", help="Also write a dev split here (needs --dev-ratio)."),
    dev_ratio: float = typer.Option(0.0, "--dev-ratio", help="Share of records for the dev split."),
    seed: int = typer.Option(0, "--seed", help="Seed of the deterministic train/dev split."),
    max_length: int = typer.Option(0, "--max-length", help="Split records longer than this many characters at sentence ends (0: never)."),
    span_key: str = typer.Option("sc", "--span-key", help="doc.spans key that keeps every entity, nested ones included."),
    lang: str = typer.Option("zh", "--lang", help="spaCy language of the tokenizer."),
    bad_tags: BadTags = typer.Option(BadTags.repair, "--bad-tags", help="conll and healthner: repair or reject malformed tags."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print the summary only."),
) -> None:
    """Convert a corpus to spaCy's DocBin, with a report of every entity changed."""
    if (dev_output is None) != (dev_ratio == 0):
        fail("--dev-output and --dev-ratio go together.")
    options = {"bad_tags": bad_tags.value} if format.value in ("conll", "healthner") else {}
    try:
        train, dev, report = convert(
            format.value, inputs, lang=lang, max_length=max_length, span_key=span_key,
            dev_ratio=dev_ratio, seed=seed, reader_options=options,
        )
    except ConversionError as err:
        fail(str(err))
    report.print(max_changes=0 if quiet else 20)
    outputs = [(output, train.to_bytes())]
    if dev is not None:
        outputs.append((dev_output, dev.to_bytes()))
    if report_path is not None:
        import srsly

        outputs.append((report_path, srsly.json_dumps(report.to_dict(), indent=2).encode("utf8")))
    for path, data in outputs:
        write_atomic(path, data)
    msg.good(f"Wrote {output}" + (f" and {dev_output}" if dev is not None else ""))
