"""CCKS 2019 task 1 (Yidu-S4K): JSON lines with `originalText` and
`entities[{label_type, start_pos, end_pos}]`; `end_pos` is exclusive. The
training files start with a UTF-8 BOM."""
from typing import Iterable, Iterator

from ..records import Record, checked_entity, field_of, json_lines, non_empty, read_text
from ..report import ConversionReport
from .inputs import input_files


def read_ccks2019(paths: Iterable, report: ConversionReport) -> Iterator[Record]:
    for path, data in input_files(paths):
        text = non_empty(path, read_text(path, data))
        for line, obj in json_lines(path, text):
            where = f"line {line}"
            record_text = field_of(obj, "originalText", path, where, str)
            entities = []
            for k, ent in enumerate(field_of(obj, "entities", path, where, list)):
                at = f"{where}, entity {k}"
                entities.append(
                    checked_entity(
                        path, at, record_text,
                        field_of(ent, "start_pos", path, at, int),
                        field_of(ent, "end_pos", path, at, int),
                        field_of(ent, "label_type", path, at, str),
                    )
                )
            yield Record(f"{path.name}:{line}", record_text, entities)
