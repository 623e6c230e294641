"""`python -m spacy_medner annotate`: predict entities for an archive of records."""
import os
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from . import app, fail


class Engine(str, Enum):
    local = "local"
    ray = "ray"


class JsonlFormat(str, Enum):
    entities = "entities"
    prodigy = "prodigy"
    doccano = "doccano"


@app.command("annotate")
def annotate_cli(
    model: str = typer.Argument(..., help="Pipeline to load (a package name or a folder)."),
    inputs: List[Path] = typer.Argument(..., help="Input files (.jsonl, .csv, .tsv, .parquet, .txt, each optionally .gz) or folders of .txt files."),
    output: Path = typer.Option(..., "--output", "-o", help="Output: .jsonl, .parquet (a folder of parts) or .spacy (a folder of DocBin parts)."),
    errors: Optional[Path] = typer.Option(None, "--errors", help="Where bad records go, one JSON line each (default: OUTPUT_STEM.errors.jsonl beside the output)."),
    text_field: str = typer.Option("text", "--text-field", help="JSON-lines field, CSV/TSV or Parquet column holding the text."),
    id_field: Optional[str] = typer.Option(None, "--id-field", help="Field or column holding the record id (default: the line number)."),
    jsonl_format: JsonlFormat = typer.Option(JsonlFormat.entities, "--format", help="JSON-lines shape: entities, or prodigy/doccano to read back with `convert` as pre-annotations."),
    no_text: bool = typer.Option(False, "--no-text", help="Leave the text out of entities/Parquet rows (ids and entities only)."),
    spans_key: Optional[str] = typer.Option(None, "--spans-key", help="doc.spans key holding the entity scores (default: the spans_key of the pipeline's crf_ner or span_ner component)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Records per nlp.pipe batch."),
    n_process: int = typer.Option(1, "--n-process", help="Worker processes (local engine)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads per worker (default 1, or env SPACY_MEDNER_THREADS; use --n-process for more cores)."),
    max_chars: int = typer.Option(1_000_000, "--max-chars", help="Longer records are reported in the errors file, not predicted (0: no limit)."),
    split_length: int = typer.Option(2000, "--split-length", help="Predict longer records in pieces cut at sentence ends, merged back (0: whole)."),
    chunk_size: int = typer.Option(1000, "--chunk-size", help="Records per commit: a killed job loses at most one chunk."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed job: skip the records already committed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again, replacing an existing output."),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local (this machine) or ray (a Ray cluster, Ray Data)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster to join (default: RAY_ADDRESS, else start a local one)."),
    actors: int = typer.Option(2, "--actors", help="Ray engine: pipeline actors (each loads the pipeline once)."),
    log_every: float = typer.Option(30.0, "--log-every", help="Seconds between progress lines when stderr is not a terminal."),
) -> None:
    """Predict entities for every record of the inputs, streaming, in crash-safe chunks."""
    from ..annotate import AnnotateError, AnnotateOptions, Progress, annotate
    from ..io.readers import InputError
    from ..io.writers import OutputError

    if batch_size < 1 or n_process < 1 or chunk_size < 1 or actors < 1:
        fail("--batch-size, --n-process, --chunk-size and --actors must be at least 1.")
    if resume and overwrite:
        fail("--resume and --overwrite exclude each other.")
    if jsonl_format != JsonlFormat.entities and output.suffix.lower() != ".jsonl":
        fail(f"--format {jsonl_format.value} is a JSON-lines shape; the output {output} is not .jsonl.")
    options = AnnotateOptions(
        text_field=text_field, id_field=id_field, batch_size=batch_size, n_process=n_process, threads=threads,
        max_chars=max_chars, split_length=split_length, chunk_size=chunk_size, include_text=not no_text,
        jsonl_format=jsonl_format.value, spans_key=spans_key or None, resume=resume, overwrite=overwrite,
    )
    progress = lambda reader: Progress(reader, log_every=log_every)  # noqa: E731
    try:
        if engine == Engine.ray:
            if resume:
                fail("--resume is for the local engine; a Ray run is rerun whole (use --overwrite).")
            from ..distributed import annotate_ray

            summary = annotate_ray(model, inputs, output, errors, options, address=ray_address or os.environ.get("RAY_ADDRESS"),
                                   actors=actors, progress=progress)
        else:
            summary = annotate(model, inputs, output, errors, options, progress=progress)
    except (InputError, OutputError, AnnotateError) as err:
        fail(str(err))
    print_summary(summary, output, errors)


def print_summary(summary, output: Path, errors: Optional[Path]) -> None:
    from ..annotate import default_errors_path

    rate = summary.written / summary.seconds if summary.seconds else 0.0
    resumed = f", {summary.resumed_at:,} committed before --resume" if summary.resumed_at else ""
    msg.info(f"{summary.records_in:,} records in{resumed}: {summary.written:,} written, {summary.errors:,} errors"
             + (f", {summary.already_written:,} already in the output" if summary.already_written else ""))
    msg.text(f"  {summary.seconds:.1f} s, {rate:,.1f} records/s this run")
    for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
        msg.text(f"  {count:,} × {reason}")
    if summary.errors:
        msg.warn(f"Bad records are listed in {errors or default_errors_path(output)}")
    msg.good(f"Wrote {output}")
