"""CMeEE (CBLUE): one JSON array of `{text, entities[{start_idx, end_idx,
type, entity}]}`; `end_idx` is **inclusive**; entities nest."""
from typing import Iterable, Iterator

from ..records import ConversionError, Record, checked_entity, field_of, json_document, non_empty, read_text
from ..report import ConversionReport
from .inputs import input_files


def read_cmeee(paths: Iterable, report: ConversionReport) -> Iterator[Record]:
    for path, data in input_files(paths):
        records = json_document(path, non_empty(path, read_text(path, data)))
        if not isinstance(records, list):
            raise ConversionError(path, None, f"expected a JSON array of records, got {type(records).__name__}")
        for i, obj in enumerate(records):
            where = f"record {i}"
            text = field_of(obj, "text", path, where, str)
            entities = []
            for k, ent in enumerate(field_of(obj, "entities", path, where, list)):
                at = f"{where}, entity {k}"
                start = field_of(ent, "start_idx", path, at, int)
                end = field_of(ent, "end_idx", path, at, int) + 1
                mention = field_of(ent, "entity", path, at, str)
                entities.append(checked_entity(path, at, text, start, end, field_of(ent, "type", path, at, str), mention))
            yield Record(f"{path.name}:{i}", text, entities)
