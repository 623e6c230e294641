"""`python -m spacy_medner select`: the records worth labelling, as Prodigy or doccano tasks."""
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from . import app, fail


class Strategy(str, Enum):
    uncertainty = "uncertainty"
    random = "random"


class TaskFormat(str, Enum):
    prodigy = "prodigy"
    doccano = "doccano"


@app.command("select")
def select_cli(
    model: str = typer.Argument(..., help="Pipeline with a crf_ner component (a package name or a folder), calibrated for the best ranking."),
    pool: List[Path] = typer.Argument(..., help="Unlabelled records: any input `annotate` reads (.jsonl, .csv, .tsv, .parquet, .txt, each optionally .gz, or folders of .txt)."),
    n: int = typer.Option(..., "--n", help="How many records to choose."),
    output: Path = typer.Option(..., "--output", "-o", help="Tasks to write (.jsonl), best first."),
    strategy: Strategy = typer.Option(Strategy.uncertainty, "--strategy", help="uncertainty: the most expected errors per record; random: a seeded random choice."),
    task_format: TaskFormat = typer.Option(TaskFormat.prodigy, "--format", help="prodigy (ner_manual tasks) or doccano (JSON lines)."),
    seed: int = typer.Option(0, "--seed", help="Breaks ties (uncertainty) or draws the records (random); the same seed gives the same tasks."),
    per_100_chars: bool = typer.Option(False, "--per-100-chars", help="Rank by expected errors per 100 characters instead of per record (favours short records; measured worse on CCKS2019, per record and per character read)."),
    exclude: List[Path] = typer.Option([], "--exclude", help="Earlier rounds' tasks or exports (JSON lines with `text`): their records are not chosen again. Repeatable."),
    errors: Optional[Path] = typer.Option(None, "--errors", help="Where bad pool records go (default: OUTPUT_STEM.errors.jsonl beside the output)."),
    text_field: str = typer.Option("text", "--text-field", help="JSON-lines field, CSV/TSV or Parquet column holding the text."),
    id_field: Optional[str] = typer.Option(None, "--id-field", help="Field or column holding the record id (default: the line number)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Records per nlp.pipe batch."),
    max_chars: int = typer.Option(1_000_000, "--max-chars", help="Longer records are reported in the errors file, not ranked (0: no limit)."),
    split_length: int = typer.Option(2000, "--split-length", help="Predict longer records in pieces cut at sentence ends (0: whole)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (default 1, or env SPACY_MEDNER_THREADS)."),
) -> None:
    """Rank a pool of unlabelled records by the model's expected errors and write
    the top N, pre-annotated with its entities, for Prodigy or doccano."""
    from ..io.readers import InputError
    from ..io.writers import OutputError
    from ..labelling import SelectError, select

    if batch_size < 1:
        fail("--batch-size must be at least 1.")
    try:
        summary = select(
            model, pool, output, n, strategy=strategy.value, task_format=task_format.value, seed=seed, errors=errors,
            text_field=text_field, id_field=id_field, normalise=per_100_chars, batch_size=batch_size,
            split_length=split_length, max_chars=max_chars, threads=threads, exclude=exclude,
        )
    except (SelectError, InputError, OutputError) as err:
        fail(str(err))
    msg.info(f"{summary.records_in:,} records in: {summary.scored:,} ranked, {summary.errors:,} errors"
             + (f", {summary.excluded:,} labelled before (--exclude)" if summary.excluded else "")
             + (f", {summary.duplicates:,} repeated texts kept once" if summary.duplicates else ""))
    for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
        msg.text(f"  {count:,} × {reason}")
    if summary.errors:
        from ..annotate import default_errors_path

        msg.warn(f"Bad records are listed in {errors or default_errors_path(output)}")
    if summary.selected < n:
        msg.warn(f"The pool holds only {summary.selected:,} usable records; all of them were written (--n {n:,}).")
    unit = "random key" if strategy == Strategy.random else ("expected errors per 100 characters" if per_100_chars else "expected errors per record")
    pool_mean = f", pool mean {summary.pool_mean_score:.3f}" if summary.pool_mean_score is not None else ""
    msg.text(f"  {strategy.value}, seed {seed}, {summary.seconds:.1f} s")
    msg.text(f"  scores ({unit}): {summary.score_min:.3f} to {summary.score_max:.3f}{pool_mean}")
    msg.good(f"Wrote {summary.selected:,} {task_format.value} tasks to {output}")
