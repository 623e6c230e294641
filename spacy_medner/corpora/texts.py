"""Raw text for pretraining: plain UTF-8 lines, or the texts of any annotated
format (annotations ignored), segmented like training records."""
from pathlib import Path
from typing import Iterator, Sequence

from .formats import READERS
from .formats.inputs import input_files
from .records import non_empty, read_text
from .report import ConversionReport
from .segment import segment

PLAIN = "plain"


def raw_texts(format: str, inputs: Sequence[Path], max_length: int = 0) -> Iterator[str]:
    if format == PLAIN:
        texts = (
            line.strip()
            for path, data in input_files(inputs)
            for line in non_empty(path, read_text(path, data)).splitlines()
        )
    else:
        texts = (record.text for record in READERS[format](list(inputs), ConversionReport(format, [str(p) for p in inputs])))
    for text in texts:
        for start, end in segment(text, [], max_length):
            piece = text[start:end].strip()
            if piece:
                yield piece
