"""The common shape every format reader produces."""
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple


class ConversionError(ValueError):
    """Bad input. `str()` is one human-readable line naming file and place."""

    def __init__(self, path: Any, where: Optional[str], message: str):
        self.path, self.where, self.message = str(path), where, message
        place = f"{self.path}, {where}" if where else self.path
        super().__init__(f"{place}: {message}")


@dataclass
class Entity:
    start: int  # character offsets into the record text, end exclusive
    end: int
    label: str


@dataclass
class Record:
    id: str
    text: str
    entities: List[Entity] = field(default_factory=list)


def read_text(path: Path, data: Optional[bytes] = None, encoding: str = "utf-8-sig") -> str:
    """Decode UTF-8 (a BOM is dropped), or fail naming the line of the first bad byte."""
    raw = path.read_bytes() if data is None else data
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ConversionError(
            path, f"line {line}", f"is not valid UTF-8 (byte {err.start}); re-encode the file as UTF-8 (e.g. `iconv -f GBK -t UTF-8`)"
        ) from None


def non_empty(path: Path, text: str) -> str:
    if not text.strip():
        raise ConversionError(path, None, "the input is empty")
    return text


def json_lines(path: Path, text: str) -> Iterator[Tuple[int, Any]]:
    """(line number, object) for each non-blank line of a JSON-lines file."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            raise ConversionError(path, f"line {number}", f"invalid JSON: {err.msg} (column {err.colno})") from None


def json_document(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConversionError(path, f"line {err.lineno}", f"invalid JSON: {err.msg} (column {err.colno})") from None


def field_of(obj: Any, key: str, path: Path, where: str, kind: type = object) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ConversionError(path, where, f"missing key {key!r}")
    value = obj[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConversionError(path, where, f"{key!r} must be an integer offset, got {value!r}")
    if kind is not object and kind is not int and not isinstance(value, kind):
        raise ConversionError(path, where, f"{key!r} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def checked_entity(
    path: Path, where: str, text: str, start: int, end: int, label: str, mention: Optional[str] = None
) -> Entity:
    """Validate character offsets (end exclusive) and an optional mention string."""
    if not isinstance(label, str) or not label:
        raise ConversionError(path, where, f"entity label must be a non-empty string, got {label!r}")
    if start >= end:
        raise ConversionError(path, where, f"entity {label!r} has reversed or empty offsets [{start}, {end})")
    if start < 0 or end > len(text):
        raise ConversionError(path, where, f"entity {label!r} offsets [{start}, {end}) are outside the text (length {len(text)})")
    if mention is not None and text[start:end] != mention:
        raise ConversionError(
            path, where, f"entity {label!r} mention {mention!r} disagrees with the text at [{start}, {end}): {text[start:end]!r}"
        )
    return Entity(start, end, label)
