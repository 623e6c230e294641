"""Convert input files of one format to DocBins plus a report."""
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import spacy
from spacy.tokens import DocBin

from .build import records_to_docs, split_records
from .formats import READERS
from .records import ConversionError, Record
from .report import ConversionReport


def convert(
    format: str,
    inputs: Sequence[Path],
    *,
    lang: str = "zh",
    max_length: int = 0,
    span_key: str = "sc",
    dev_ratio: float = 0.0,
    seed: int = 0,
    reader_options: Optional[Dict] = None,
) -> Tuple[DocBin, Optional[DocBin], ConversionReport]:
    """Returns (DocBin, dev DocBin or None, report). Raises ConversionError on bad input."""
    report = ConversionReport(format=format, inputs=[str(p) for p in inputs])
    records = read_records(format, inputs, report, reader_options)
    splits: List = [records]
    if dev_ratio > 0:
        train, dev = split_records(records, dev_ratio, seed)
        splits = [train, dev]
        report.extra["split"] = {"dev_ratio": dev_ratio, "seed": seed, "train_records": len(train), "dev_records": len(dev)}
    bins = [to_docbin(split, report, lang=lang, max_length=max_length, span_key=span_key) for split in splits]
    return bins[0], (bins[1] if len(bins) > 1 else None), report


def read_records(format: str, inputs: Sequence[Path], report: ConversionReport, reader_options: Optional[Dict] = None) -> List[Record]:
    """Every record of the inputs; an input without records is an error."""
    if format not in READERS:
        raise ConversionError(format, None, f"unknown format; use one of {', '.join(READERS)}")
    records = list(READERS[format](list(inputs), report, **(reader_options or {})))
    if not records:
        raise ConversionError(", ".join(map(str, inputs)), None, "the input has no records")
    return records


def to_docbin(records: Sequence[Record], report: ConversionReport, *, lang: str = "zh", max_length: int = 0, span_key: str = "sc") -> DocBin:
    """Docs of the records (segmented to max_length), counted in the report."""
    docbin = DocBin(store_user_data=True)
    for doc in records_to_docs(spacy.blank(lang), records, report, max_length=max_length, span_key=span_key):
        docbin.add(doc)
    return docbin
