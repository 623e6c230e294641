"""brat standoff: `<id>.txt` + `<id>.ann` pairs in a folder or a zip.

`T<n>\t<TYPE> <start> <end>[;<start> <end>...]\t<mention>`, end exclusive.
A discontinuous entity becomes one entity per fragment (reported as
"split"). Relation, event, attribute and note lines are not entities and are
counted in the report.
"""
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, Iterator

from ..records import ConversionError, Record, checked_entity, read_text
from ..report import ConversionReport
from .inputs import input_files


def read_brat(paths: Iterable, report: ConversionReport) -> Iterator[Record]:
    texts: Dict[Path, bytes] = {}
    anns: Dict[Path, bytes] = {}
    for path, data in input_files(paths, suffixes=(".txt", ".ann")):
        (texts if path.suffix == ".txt" else anns)[path.with_suffix("")] = data
    if not texts and not anns:
        raise ConversionError(", ".join(map(str, paths)), None, "no .txt/.ann files found")
    for stem in sorted(set(anns) - set(texts)):
        raise ConversionError(stem.with_suffix(".ann"), None, "has no matching .txt file")
    ignored: Counter = Counter()
    for stem in sorted(texts, key=_natural):
        if stem not in anns:
            raise ConversionError(stem.with_suffix(".txt"), None, "has no matching .ann file")
        txt_path, ann_path = stem.with_suffix(".txt"), stem.with_suffix(".ann")
        text = read_text(txt_path, texts[stem])
        entities = []
        for number, line in enumerate(read_text(ann_path, anns[stem]).splitlines(), start=1):
            if not line.strip():
                continue
            if not line.startswith("T"):
                ignored[line[:1]] += 1
                continue
            entities.extend(_text_bound(ann_path, number, line, text, stem.name, report))
        yield Record(stem.name, text, entities)
    if ignored:
        report.extra["brat_ignored_annotation_lines"] = dict(ignored)


def _text_bound(path: Path, number: int, line: str, text: str, record: str, report: ConversionReport):
    where = f"line {number}"
    parts = line.split("\t")
    if len(parts) < 2:
        raise ConversionError(path, where, f"expected 'T<n><TAB><TYPE> <start> <end><TAB><text>', got {line!r}")
    label, _, offsets = parts[1].partition(" ")
    mention = parts[2] if len(parts) > 2 else None
    try:
        fragments = [tuple(int(x) for x in frag.split()) for frag in offsets.split(";")]
    except ValueError:
        raise ConversionError(path, where, f"offsets {offsets!r} are not integers") from None
    if not fragments or any(len(f) != 2 for f in fragments):
        raise ConversionError(path, where, f"offsets {offsets!r} are not '<start> <end>[;<start> <end>...]'")
    if len(fragments) == 1:
        return [checked_entity(path, where, text, *fragments[0], label, mention)]
    entities = [checked_entity(path, where, text, start, end, label) for start, end in fragments]
    joined = " ".join(text[e.start : e.end] for e in entities)
    if mention is not None and mention != joined:
        raise ConversionError(path, where, f"mention {mention!r} disagrees with the fragments {joined!r}")
    report.change("split", record, label, joined, f"{len(fragments)} fragments", fragments=fragments)
    return entities


def _natural(stem: Path):
    return (str(stem.parent), int(stem.name)) if stem.name.isdigit() else (str(stem.parent), float("inf"), stem.name)
