"""Corpus readers and conversion to spaCy DocBin.

Data flows: a format reader yields `Record`s (text + character-offset
entities, end exclusive) → `build.records_to_docs` trims, aligns, resolves
overlaps and segments them into `Doc`s → a DocBin. Every change to an entity
is written to a `ConversionReport`.
"""
from .records import ConversionError, Entity, Record
from .report import ConversionReport

__all__ = ["ConversionError", "ConversionReport", "Entity", "Record"]
