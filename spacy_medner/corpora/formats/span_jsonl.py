"""Annotation-tool exports as JSON lines:

- doccano: `{"text", "label": [[start, end, label], ...]}`
- prodigy: `{"text", "spans": [{"start", "end", "label"}, ...]}`; records
  whose `answer` is not "accept" are skipped and counted.

Both use end-exclusive character offsets.
"""
from typing import Callable, Iterable, Iterator, List, Tuple

from ..records import ConversionError, Record, checked_entity, field_of, json_lines, non_empty, read_text
from ..report import ConversionReport
from .inputs import input_files

SpanGetter = Callable[[dict, object, str], List[Tuple[int, int, str]]]


def _read(paths: Iterable, report: ConversionReport, get_spans: SpanGetter, skip: Callable[[dict], bool] = lambda obj: False) -> Iterator[Record]:
    for path, data in input_files(paths):
        for line, obj in json_lines(path, non_empty(path, read_text(path, data))):
            where = f"line {line}"
            text = field_of(obj, "text", path, where, str)
            if skip(obj):
                report.records_skipped += 1
                continue
            entities = [
                checked_entity(path, f"{where}, entity {k}", text, start, end, label)
                for k, (start, end, label) in enumerate(get_spans(obj, path, where))
            ]
            yield Record(str(obj.get("id", f"{path.name}:{line}")), text, entities)


def _doccano_spans(obj: dict, path, where: str):
    spans = []
    for k, item in enumerate(field_of(obj, "label", path, where, list)):
        if not (isinstance(item, list) and len(item) == 3):
            raise ConversionError(path, f"{where}, entity {k}", f"expected [start, end, label], got {item!r}")
        start, end, label = item
        if not isinstance(start, int) or not isinstance(end, int):
            raise ConversionError(path, f"{where}, entity {k}", f"offsets must be integers, got {item!r}")
        spans.append((start, end, label))
    return spans


def _prodigy_spans(obj: dict, path, where: str):
    spans = []
    for k, span in enumerate(obj.get("spans") or []):
        at = f"{where}, span {k}"
        spans.append((field_of(span, "start", path, at, int), field_of(span, "end", path, at, int), field_of(span, "label", path, at, str)))
    return spans


def read_doccano(paths: Iterable, report: ConversionReport) -> Iterator[Record]:
    return _read(paths, report, _doccano_spans)


def read_prodigy(paths: Iterable, report: ConversionReport) -> Iterator[Record]:
    return _read(paths, report, _prodigy_spans, skip=lambda obj: obj.get("answer", "accept") != "accept")
