"""Unlabelled input records, streamed: the one reader behind `annotate`,
`serve` and `select`.

Formats, picked by extension (a trailing `.gz` is decompressed on the fly):

- `.jsonl` / `.ndjson` / `.json`: one JSON object per line; the text is in
  `text_field`, the id in `id_field`.
- `.csv` / `.tsv`: a header row naming the columns.
- `.parquet`: columns `text_field` and `id_field` (needs pyarrow).
- `.txt`: one record per line.
- a folder: every `.txt` / `.txt.gz` file below it is one record, its id the
  path relative to the folder.

Without `id_field`, a record's id is its line (row) number, prefixed with
the file's name when more than one file is read, so ids stay unique.
Ids are always strings: JSON lines, Parquet and the resume check then agree.

Nothing is held in memory beyond one line (one Parquet batch). A line that
cannot be read (invalid JSON, invalid UTF-8, not an object) is yielded as an
`InputRecord` with `error` set, so that the caller reports it and goes on;
a record whose text is missing or not a string is yielded as it is and the
caller validates it. Only an input that cannot be read at all raises
`InputError`: a missing file, an unknown extension, a CSV or Parquet file
without the text column, or a JSON-lines file whose *first* record lacks
`text_field` (a wrong `--text-field` would otherwise send every record to the
errors file), and a stream that breaks off (a truncated gzip).
"""
import csv
import gzip
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, List, Optional, Tuple

FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".txt": "text",
}
MISSING = object()  # the text field is absent (as opposed to null)
_SURROGATE = re.compile("[\udc80-\udcff]")


class InputError(ValueError):
    """The input cannot be read at all. `str()` is one line naming the file."""

    def __init__(self, source: Any, message: str, line: Optional[int] = None):
        self.source, self.line = str(source), line
        place = f"{source}, line {line}" if line else str(source)
        super().__init__(f"{place}: {message}")


@dataclass
class InputRecord:
    id: Optional[str]
    text: Any  # a str when the record is good; MISSING, None or another type otherwise
    source: str  # the file, for messages
    line: int  # line (row) number in `source`, 1-based; 1 for a whole-file record
    error: Optional[str] = None  # why the line could not be read at all


@dataclass
class InputFile:
    path: Path
    format: str
    compressed: bool
    name: str  # how messages and default ids name it
    whole: bool = False  # one record for the whole file (a folder's .txt)


def file_format(path: Path) -> Tuple[str, bool]:
    """(format, gzip-compressed) from the extension, or InputError."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in FORMATS:
        known = ", ".join(sorted(FORMATS)) + " (each optionally .gz), or a folder of .txt files"
        raise InputError(path, f"unknown input extension {suffix or '(none)'!r}; expected {known}")
    if compressed and FORMATS[suffix] == "parquet":
        raise InputError(path, "a gzipped Parquet file cannot be streamed; Parquet compresses its own columns, store it uncompressed")
    return FORMATS[suffix], compressed


def input_files(paths: Iterable[Path]) -> List[InputFile]:
    """Expand folders and check every path exists and has a known format."""
    files: List[InputFile] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and re.search(r"\.txt(\.gz)?$", p.name, re.I))
            if not found:
                raise InputError(path, "the folder holds no .txt (or .txt.gz) file")
            for file in found:
                files.append(InputFile(file, "text", file.suffix.lower() == ".gz", file.relative_to(path).as_posix(), whole=True))
        elif path.is_file():
            fmt, compressed = file_format(path)
            files.append(InputFile(path, fmt, compressed, str(path)))
        else:
            raise InputError(path, "no such file or folder")
    return files


class _Position:
    """Bytes consumed from the file on disk (compressed bytes for .gz), for a progress ETA."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw

    def tell(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0


class RecordReader:
    """Stream `InputRecord`s from files and folders of any supported format.

    `check()` opens each file and reads its first record, so that an
    unreadable input fails before any output is written. `bytes_done` and
    `total_bytes` give the share of the input read (for an ETA)."""

    def __init__(self, paths: Iterable[Path], text_field: str = "text", id_field: Optional[str] = None):
        self.files = input_files(paths)
        self.text_field, self.id_field = text_field, id_field
        self.prefix_ids = len(self.files) > 1
        self.total_bytes = sum(f.path.stat().st_size for f in self.files)
        self._done_before = 0  # bytes of the files finished
        self._position: Optional[_Position] = None

    @property
    def bytes_done(self) -> int:
        return self._done_before + (self._position.tell() if self._position else 0)

    def check(self) -> None:
        for file in self.files:
            for record in self._read(file, check=True):  # stops after the first good record
                if record.error is None or file.format == "text":
                    break
        self._position = None

    def __getstate__(self) -> dict:
        # Picklable (a Ray task gets the reader): the open file of a read in progress stays behind.
        return {**self.__dict__, "_position": None}

    def read_file(self, index: int) -> Iterator[InputRecord]:
        """The records of `self.files[index]` alone (a Ray task reads one file)."""
        return self._read(self.files[index])

    def __iter__(self) -> Iterator[InputRecord]:
        self._done_before = 0
        for file in self.files:
            yield from self._read(file)
            self._done_before += file.path.stat().st_size
            self._position = None

    # -- one file ---------------------------------------------------------------------------------
    def _default_id(self, file: InputFile, line: int) -> str:
        if file.whole:
            return file.name
        return f"{file.name}:{line}" if self.prefix_ids else str(line)

    def _read(self, file: InputFile, check: bool = False) -> Iterator[InputRecord]:
        if file.format == "parquet":
            yield from self._read_parquet(file, check)
            return
        try:
            raw = open(file.path, "rb")
        except OSError as err:
            raise InputError(file.path, f"cannot be opened ({err.strerror})") from None
        with raw:
            self._position = _Position(raw)
            stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if file.compressed else raw
            try:
                if file.whole:
                    yield self._whole_file(file, stream)
                elif file.format == "jsonl":
                    yield from self._read_jsonl(file, stream, check)
                elif file.format in ("csv", "tsv"):
                    yield from self._read_csv(file, stream, check)
                else:
                    yield from self._read_lines(file, stream)
            except (EOFError, gzip.BadGzipFile, OSError, csv.Error) as err:
                raise InputError(file.path, f"the stream breaks off: {err}") from None

    def _whole_file(self, file: InputFile, stream: BinaryIO) -> InputRecord:
        text, error = _decode(stream.read())
        return InputRecord(file.name, text, file.name, 1, error)

    def _read_lines(self, file: InputFile, stream: BinaryIO) -> Iterator[InputRecord]:
        for number, raw_line in enumerate(stream, start=1):
            text, error = _decode(_strip_newline(raw_line, number == 1))
            yield InputRecord(self._default_id(file, number), text, file.name, number, error)

    def _read_jsonl(self, file: InputFile, stream: BinaryIO, check: bool) -> Iterator[InputRecord]:
        first = True
        for number, raw_line in enumerate(stream, start=1):
            line_text, error = _decode(_strip_newline(raw_line, number == 1))
            if error is None and not line_text.strip():
                continue  # blank lines separate nothing in JSON lines
            obj = None
            if error is None:
                try:
                    obj = json.loads(line_text)
                except json.JSONDecodeError as err:
                    error = f"invalid JSON: {err.msg} (column {err.colno})"
                else:
                    if not isinstance(obj, dict):
                        error = f"expected a JSON object, got {type(obj).__name__}"
            if error is not None:
                yield InputRecord(self._default_id(file, number), None, file.name, number, error)
                continue
            if first and self.text_field not in obj:
                fields = ", ".join(map(repr, list(obj)[:10])) or "none"
                raise InputError(file.path, f"the first record has no field {self.text_field!r} (its fields: {fields}); pass --text-field", number)
            first = False
            yield self._record(file, number, obj.get(self.text_field, MISSING), obj.get(self.id_field, MISSING) if self.id_field else None)
            if check:
                return

    def _read_csv(self, file: InputFile, stream: BinaryIO, check: bool) -> Iterator[InputRecord]:
        # surrogateescape: a bad byte becomes a lone surrogate that is caught per record,
        # instead of a UnicodeDecodeError that would end the whole file.
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # records can be far longer than csv's 128 kB default
        reader = csv.DictReader(text, delimiter="\t" if file.format == "tsv" else ",")
        header = reader.fieldnames or []
        for name, option in ((self.text_field, "--text-field"), (self.id_field, "--id-field")):
            if name and name not in header:
                raise InputError(file.path, f"the header has no column {name!r} (its columns: {', '.join(map(repr, header[:10])) or 'none'}); pass {option}", 1)
        for row in reader:
            number = reader.line_num  # the physical line the row ends on
            text = row.get(self.text_field)
            if isinstance(text, str) and _SURROGATE.search(text):
                yield InputRecord(self._default_id(file, number), None, file.name, number, "is not valid UTF-8")
                continue
            yield self._record(file, number, MISSING if text is None else text, row.get(self.id_field, MISSING) if self.id_field else None)
            if check:
                return

    def _read_parquet(self, file: InputFile, check: bool) -> Iterator[InputRecord]:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(file.path, "reading Parquet needs pyarrow: pip install pyarrow (or spacy_medner[ray])") from None
        try:
            parquet = pq.ParquetFile(file.path)
        except Exception as err:  # pyarrow raises its own ArrowInvalid for a file that is not Parquet
            raise InputError(file.path, f"is not a readable Parquet file ({err})") from None
        names = parquet.schema_arrow.names
        for name, option in ((self.text_field, "--text-field"), (self.id_field, "--id-field")):
            if name and name not in names:
                raise InputError(file.path, f"has no column {name!r} (its columns: {', '.join(map(repr, names[:10]))}); pass {option}")
        columns = [self.text_field] + ([self.id_field] if self.id_field else [])
        number = 0
        for batch in parquet.iter_batches(batch_size=1024, columns=columns):
            texts = batch.column(0).to_pylist()
            ids = batch.column(1).to_pylist() if self.id_field else [None] * len(texts)
            for text, id_ in zip(texts, ids):
                number += 1
                yield self._record(file, number, text, id_ if self.id_field else None)
                if check:
                    return

    def _record(self, file: InputFile, number: int, text: Any, id_: Any) -> InputRecord:
        if id_ is None:
            return InputRecord(self._default_id(file, number), text, file.name, number)
        if id_ is MISSING or not isinstance(id_, (str, int)) or isinstance(id_, bool) or id_ == "":
            shown = "missing" if id_ is MISSING else repr(id_)
            return InputRecord(None, text, file.name, number, f"id field {self.id_field!r} is {shown}; expected a string or an integer")
        return InputRecord(str(id_), text, file.name, number)


def _strip_newline(raw_line: bytes, first: bool) -> bytes:
    if raw_line.endswith(b"\n"):
        raw_line = raw_line[:-1]
        if raw_line.endswith(b"\r"):
            raw_line = raw_line[:-1]
    if first and raw_line.startswith(b"\xef\xbb\xbf"):
        raw_line = raw_line[3:]  # a UTF-8 byte-order mark is not part of the record
    return raw_line


def _decode(data: bytes) -> Tuple[Optional[str], Optional[str]]:
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as err:
        return None, f"is not valid UTF-8 (byte {err.start}); re-encode the file as UTF-8"
