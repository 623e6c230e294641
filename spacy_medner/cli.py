"""Command line: `python -m spacy_medner convert ...`. Argument parsing and
messages only; the work is in `spacy_medner.corpora`."""
import os
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from .corpora.convert import convert
from .corpora.formats import READERS
from .corpora.records import ConversionError
from .corpora.texts import raw_texts

app = typer.Typer(name="spacy_medner", help="Chinese medical NER for spaCy.", no_args_is_help=True, add_completion=False)

Format = Enum("Format", {name: name for name in READERS}, type=str)


class BadTags(str, Enum):
    repair = "repair"
    reject = "reject"


@app.callback()
def main() -> None:
    """Chinese medical NER for spaCy."""


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


def fail(message: str) -> None:
    """One unwrapped line on stderr, exit 1: easy to read and to grep in CI logs."""
    print(f"✘ {message}", file=sys.stderr)
    raise typer.Exit(1)


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: a failed run never
    leaves a partial output behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def run() -> None:
    app(prog_name=f"{Path(sys.executable).name} -m spacy_medner")
