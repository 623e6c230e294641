"""Character-per-line CoNLL: `<char><TAB or SPACE><tag>`, sentences separated
by blank (or whitespace-only) lines, CRLF tolerated. BIO or BIOES tags;
extra middle columns are ignored (the tag is the last column).

Malformed tags, with `bad_tags="repair"` (default), are normalised and
reported; with `"reject"` the first one stops the conversion:
- a lower-case prefix (`i-CHEM`) → upper case;
- `O-<label>` → `O` (the label is a stray remnant: `O` means outside);
- `I-X`/`E-X` that does not continue an `X` entity (after `O`, after
  `I-Y`, at a sentence start) → starts a new entity, as conlleval reads it.
A tag that cannot be read at all is always an error.
"""
from typing import Iterable, Iterator, List, Tuple

from ..records import ConversionError, Entity, Record, non_empty, read_text
from ..report import ConversionReport
from ...tags import TagError, read_tags
from .inputs import input_files


def read_conll(paths: Iterable, report: ConversionReport, bad_tags: str = "repair") -> Iterator[Record]:
    for path, data in input_files(paths):
        text = non_empty(path, read_text(path, data))
        chars: List[str] = []
        tags: List[Tuple[str, int]] = []
        first_line = 1
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.rstrip("\r")
            if not line.strip():
                if chars:
                    yield tagged_record(path, f"{path.name}:{first_line}", chars, tags, report, bad_tags)
                chars, tags = [], []
                continue
            if not chars:
                first_line = number
            char, tag = _parse_line(path, number, line)
            chars.append(char)
            tags.append((tag, f"line {number}"))
        if chars:
            yield tagged_record(path, f"{path.name}:{first_line}", chars, tags, report, bad_tags)


def _parse_line(path, number: int, line: str) -> Tuple[str, str]:
    if "\t" in line:
        columns = line.split("\t")
        char, tag = columns[0], columns[-1].strip()
    elif len(line) >= 3 and line[1] == " ":
        char, tag = line[0], line[2:].strip()  # the character may itself be a space
    else:
        raise ConversionError(path, f"line {number}", f"expected '<character><TAB><tag>', got {line!r}")
    return char, tag


def tagged_record(
    path, record_id: str, chars: List[str], tags: List[Tuple[str, str]], report: ConversionReport, bad_tags: str
) -> Record:
    """A record from one tag per character; `tags` are (tag, place for messages).
    Malformed tags are repaired and reported, or rejected (see the module doc);
    the reading itself is `spacy_medner.tags.read_tags`."""
    if bad_tags not in ("repair", "reject"):
        raise ValueError(f"[spacy_medner] bad_tags must be 'repair' or 'reject', got {bad_tags!r}")
    try:
        spans, repairs = read_tags([tag for tag, _ in tags])
    except TagError as err:
        raise ConversionError(path, tags[err.position][1], str(err)) from None
    for repair in repairs:
        place = tags[repair.position][1]
        if bad_tags == "reject":
            raise ConversionError(path, place, f"malformed tag {repair.tag!r}: {repair.reason} (use bad_tags='repair' to normalise)")
        label = repair.repaired.partition("-")[2] or None
        report.change("tag_repaired", record_id, label, chars[repair.position], f"{repair.tag!r} at {place}: {repair.reason}", where=place)
    offsets = [0]
    for char in chars:
        offsets.append(offsets[-1] + len(char))
    return Record(record_id, "".join(chars), [Entity(offsets[s], offsets[e], label) for s, e, label in spans])
