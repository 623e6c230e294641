"""`python -m spacy_medner self-label`: pseudo-labels for self-training."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from . import app, fail


@app.command("self-label")
def self_label_cli(
    model: str = typer.Argument(..., help="Pipeline with a crf_ner component, calibrated (`calibrate`): its probabilities decide what is kept."),
    inputs: List[Path] = typer.Argument(..., help="Unlabelled records: any input `annotate` reads (.jsonl, .csv, .tsv, .parquet, .txt, each optionally .gz, or folders of .txt)."),
    output: Path = typer.Option(..., "--output", "-o", help="DocBin to write (.spacy); put it in one folder with the gold DocBin to train on both."),
    min_prob: float = typer.Option(0.9, "--min-prob", help="Keep predicted entities with at least this probability; the tokens of the others are missing."),
    uncertain_floor: Optional[float] = typer.Option(None, "--uncertain-floor", help="Tokens outside entities with P(inside an entity) at least this are missing, not O (default: 1 − min-prob)."),
    max_length: int = typer.Option(0, "--max-length", help="Cut records longer than this many characters at sentence ends, like `convert --max-length` (0: never)."),
    errors: Optional[Path] = typer.Option(None, "--errors", help="Where bad records go (default: OUTPUT_STEM.errors.jsonl beside the output)."),
    text_field: str = typer.Option("text", "--text-field", help="JSON-lines field, CSV/TSV or Parquet column holding the text."),
    id_field: Optional[str] = typer.Option(None, "--id-field", help="Field or column holding the record id (default: the line number)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Records per nlp.pipe batch."),
    max_chars: int = typer.Option(1_000_000, "--max-chars", help="Longer records are reported in the errors file, not labelled (0: no limit)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (default 1, or env SPACY_MEDNER_THREADS)."),
) -> None:
    """Label unlabelled records with the model for self-training: confident entities
    kept, unsure tokens left missing (crf_ner marginalises them), the rest O."""
    from ..io.readers import InputError
    from ..io.writers import OutputError
    from ..self_training import SelfLabelError, self_label

    if batch_size < 1 or max_length < 0:
        fail("--batch-size must be at least 1 and --max-length at least 0.")
    try:
        summary = self_label(
            model, inputs, output, min_prob=min_prob, uncertain_floor=uncertain_floor, errors=errors, text_field=text_field,
            id_field=id_field, max_length=max_length, batch_size=batch_size, max_chars=max_chars, threads=threads,
        )
    except (SelfLabelError, InputError, OutputError) as err:
        fail(str(err))
    msg.info(f"{summary.records_in:,} records in: {summary.records:,} labelled ({summary.docs:,} docs), {summary.errors:,} errors")
    for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
        msg.text(f"  {count:,} × {reason}")
    total = summary.entities_kept + summary.entities_dropped
    msg.text(f"  entities: {summary.entities_kept:,} kept (p ≥ {summary.min_prob:g}), {summary.entities_dropped:,} dropped"
             + (f" ({100 * summary.entities_dropped / total:.1f}%)" if total else ""))
    msg.text(f"  tokens: {summary.tokens_missing:,} of {summary.tokens:,} missing ({100 * summary.missing_share:.1f}%)")
    msg.text(f"    {summary.tokens_missing_in_dropped:,} in dropped entities, the rest outside with P(inside) ≥ {summary.uncertain_floor:g}")
    msg.text(f"  {summary.seconds:.1f} s")
    if summary.errors:
        from ..annotate import default_errors_path

        msg.warn(f"Bad records are listed in {errors or default_errors_path(output)}")
    msg.good(f"Wrote {output}")
