"""Command line: `python -m spacy_medner COMMAND`. One module per command,
each parsing arguments and printing messages only; the work lives in the
library modules they call."""
import os
import sys
from pathlib import Path

import typer

app = typer.Typer(name="spacy_medner", help="Chinese medical NER for spaCy.", no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """Chinese medical NER for spaCy."""


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
    # Importing the command modules registers their commands on `app`.
    from . import annotate, calibrate, convert, evaluate, select, self_label, serve, texts  # noqa: F401

    app(prog_name=f"{Path(sys.executable).name} -m spacy_medner")
