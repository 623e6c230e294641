"""Chinese HealthNER (`test.json` of NYCU-NLP/Chinese-HealthNER-Corpus): JSON
lines with `sentence`, `character` (one string per character) and
`character_label` (BIO per character). There are no offsets: spans come from
the tags, repaired or rejected exactly like the `conll` format's."""
from typing import Iterable, Iterator

from ..records import ConversionError, Record, field_of, json_lines, non_empty, read_text
from ..report import ConversionReport
from .conll import tagged_record
from .inputs import input_files


def read_healthner(paths: Iterable, report: ConversionReport, bad_tags: str = "repair") -> Iterator[Record]:
    for path, data in input_files(paths):
        for number, obj in json_lines(path, non_empty(path, read_text(path, data))):
            where = f"line {number}"
            chars = field_of(obj, "character", path, where, list)
            labels = field_of(obj, "character_label", path, where, list)
            sentence = field_of(obj, "sentence", path, where, str)
            if len(chars) != len(labels):
                raise ConversionError(path, where, f"{len(chars)} characters but {len(labels)} character labels")
            if "".join(chars) != sentence:
                raise ConversionError(path, where, "the characters do not join to the sentence")
            record_id = f"{path.name}:{obj.get('id', number)}"
            places = [f"{where}, character {i}" for i in range(len(chars))]
            yield tagged_record(path, record_id, chars, list(zip(labels, places)), report, bad_tags)
