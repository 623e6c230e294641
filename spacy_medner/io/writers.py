"""Predicted records out, committed in chunks so that a killed job loses at
most the chunk in flight and can resume.

The output format follows the extension:

- `.jsonl`: one file, one JSON object per line. A chunk is appended with one
  write and fsynced; the committed length is kept by the caller (the job's
  progress file), and `restore()` cuts anything written after it, so a
  resumed file never holds a half-written line or a record twice.
- `.parquet`: a folder of part files (`part-000000.parquet`, ...), each
  written to a hidden temporary name and renamed, so that a reader
  (`pandas.read_parquet(folder)`, `pyarrow.dataset`) never sees a half file.
- `.spacy`: a folder of DocBin part files, the same way; spaCy's `Corpus`
  reads a folder of `.spacy` files as one corpus.

JSON-lines rows come in three shapes (`jsonl_format`):

- `entities` (default): `{"id", "text"?, "entities": [{"start", "end", "label", "text", "score"?}], "mentions"?: [...]}`;
  `mentions` (a span_ner pipeline only) holds every span of its span group,
  nested and overlapping ones too, in the entities' shape.
- `prodigy`: `{"id", "text", "spans": [...same entities...]}`, read back by
  `convert prodigy` as pre-annotations.
- `doccano`: `{"id", "text", "label": [[start, end, label], ...]}`, read back
  by `convert doccano`. (The default shape maps to it with
  `{"id": r["id"], "text": r["text"], "label": [[e["start"], e["end"], e["label"]] for e in r["entities"]]}`.)

The prodigy and doccano shapes hold the entities only (`doc.ents`, no
overlaps): `convert` reads them back as flat pre-annotations.
"""
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from spacy.tokens import Doc, DocBin

JSONL_FORMATS = ("entities", "prodigy", "doccano")
OUTPUT_SUFFIXES = {".jsonl": "jsonl", ".parquet": "parquet", ".spacy": "docbin"}


class OutputError(ValueError):
    """The output cannot be written as asked (one line naming the path)."""


def output_kind(path: Path) -> str:
    kind = OUTPUT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise OutputError(f"{path}: unknown output extension {path.suffix or '(none)'!r}; expected .jsonl, .parquet (a folder of parts) or .spacy (a folder of DocBin parts)")
    return kind


def result_row(id_: str, text: str, entities: List[dict], include_text: bool = True, jsonl_format: str = "entities",
               mentions: Optional[List[dict]] = None) -> dict:
    """One output record in the chosen shape (offsets into the original text);
    `mentions` (None: none) goes into the entities shape only."""
    if jsonl_format == "doccano":
        return {"id": id_, "text": text, "label": [[e["start"], e["end"], e["label"]] for e in entities]}
    if jsonl_format == "prodigy":
        return {"id": id_, "text": text, "spans": entities}
    row: Dict[str, Any] = {"id": id_}
    if include_text:
        row["text"] = text
    row["entities"] = entities
    if mentions is not None:
        row["mentions"] = mentions
    return row


def _fsync_append(path: Path, data: bytes) -> int:
    """Append in one write, fsync, and return the new length."""
    with open(path, "ab") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
        return file.tell()


class JsonlAppender:
    """A JSON-lines file that grows by whole chunks (used for outputs and errors)."""

    def __init__(self, path: Path):
        self.path = path
        self.length = 0

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"")
        self.length = 0

    def append(self, rows: List[dict]) -> None:
        if rows:
            data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf8")
            self.length = _fsync_append(self.path, data)

    def state(self) -> dict:
        return {"bytes": self.length}

    def restore(self, state: Optional[dict]) -> None:
        """Cut the file back to its last committed length (or, without one, to its
        last complete line)."""
        if not self.path.exists():
            self.start()
            return
        size = self.path.stat().st_size
        if state is not None:
            length = int(state["bytes"])
            if size < length:
                raise OutputError(f"{self.path}: holds {size} bytes, fewer than the {length} its progress file says were committed; it was changed since, start again without --resume")
        else:
            with open(self.path, "rb") as file:
                data = file.read()
            length = data.rfind(b"\n") + 1
        with open(self.path, "r+b") as file:
            file.truncate(length)
        self.length = length

    def rows(self) -> Iterator[dict]:
        with open(self.path, "rb") as file:
            for line in file:
                if line.strip():
                    yield json.loads(line)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class JsonlWriter(JsonlAppender):
    def __init__(self, path: Path, jsonl_format: str = "entities"):
        super().__init__(path)
        self.jsonl_format = jsonl_format

    def write(self, rows: List[dict], docs: List[Doc]) -> None:
        self.append(rows)

    def written_ids(self) -> Iterator[str]:
        for row in self.rows():
            yield str(row["id"])


class _PartsWriter:
    """A folder of part files, each committed by an atomic rename."""

    suffix = ""

    def __init__(self, path: Path):
        self.path = path
        self.parts = 0

    def _part(self, k: int) -> Path:
        return self.path / f"part-{k:06d}{self.suffix}"

    def start(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"{self.path}: exists and is not a folder; {self.suffix} output is a folder of part files")
        self.path.mkdir(parents=True, exist_ok=True)
        self.restore({"parts": 0})

    def _commit(self, data_writer) -> None:
        final = self._part(self.parts)
        tmp = self.path / f".{final.name}.tmp"
        data_writer(tmp)
        with open(tmp, "rb") as file:
            os.fsync(file.fileno())
        os.replace(tmp, final)
        self.parts += 1

    def state(self) -> dict:
        return {"parts": self.parts}

    def restore(self, state: Optional[dict]) -> None:
        """Delete the parts after the last committed one (and stray temporaries)."""
        self.path.mkdir(parents=True, exist_ok=True)
        existing = sorted(self.path.glob(f"part-*{self.suffix}"))
        keep = len(existing) if state is None else int(state["parts"])
        for k, part in enumerate(existing):
            if k >= keep:
                part.unlink()
        for tmp in self.path.glob(".part-*.tmp"):
            tmp.unlink()
        self.parts = min(keep, len(existing))

    def remove(self) -> None:
        if self.path.is_dir():
            for part in list(self.path.glob(f"part-*{self.suffix}")) + list(self.path.glob(".part-*.tmp")):
                part.unlink()


class ParquetWriter(_PartsWriter):
    """Columns id (string), text (string, unless left out) and entities
    (a list of {start, end, label, text, score}; score null without scores),
    and mentions (the same type) when the rows have them (a span_ner
    pipeline: every row of a job then has them)."""

    suffix = ".parquet"

    def __init__(self, path: Path, include_text: bool = True):
        super().__init__(path)
        try:
            import pyarrow as pa
        except ImportError:
            raise OutputError(f"{path}: writing Parquet needs pyarrow: pip install pyarrow (or spacy_medner[ray])") from None
        entity = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("label", pa.string()), ("text", pa.string()), ("score", pa.float64())])
        fields = [("id", pa.string())] + ([("text", pa.string())] if include_text else []) + [("entities", pa.list_(entity))]
        self.schema = pa.schema(fields)
        self.with_mentions = self.schema.append(pa.field("mentions", pa.list_(entity)))

    def write(self, rows: List[dict], docs: List[Doc]) -> None:
        if not rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self.with_mentions if "mentions" in rows[0] else self.schema
        columns = {name: [row.get(name) for row in rows] for name in schema.names}
        for name in ("entities", "mentions"):
            if name in columns:
                columns[name] = [[{**e, "score": e.get("score")} for e in ents or []] for ents in columns[name]]
        table = pa.Table.from_pydict(columns, schema=schema)
        self._commit(lambda tmp: pq.write_table(table, tmp))

    def written_ids(self) -> Iterator[str]:
        import pyarrow.parquet as pq

        for part in sorted(self.path.glob("part-*.parquet")):
            yield from pq.read_table(part, columns=["id"]).column("id").to_pylist()


class DocBinWriter(_PartsWriter):
    """Predicted Docs with their entities and span groups; `doc.user_data["id"]` is the record id."""

    suffix = ".spacy"

    def write(self, rows: List[dict], docs: List[Doc]) -> None:
        if not docs:
            return
        docbin = DocBin(store_user_data=True, docs=docs)
        self._commit(lambda tmp: tmp.write_bytes(docbin.to_bytes()))

    def written_ids(self) -> Iterator[str]:
        for part in sorted(self.path.glob("part-*.spacy")):
            yield from _docbin_ids(part)


def _docbin_ids(part: Path) -> Iterator[str]:
    import spacy

    vocab = spacy.blank("xx").vocab
    for doc in DocBin(store_user_data=True).from_bytes(part.read_bytes()).get_docs(vocab):
        yield doc.user_data["id"]


def writer_for(path: Path, jsonl_format: str = "entities", include_text: bool = True):
    kind = output_kind(path)
    if kind == "jsonl":
        if jsonl_format not in JSONL_FORMATS:
            raise OutputError(f"--format {jsonl_format!r}: expected one of {', '.join(JSONL_FORMATS)}")
        return JsonlWriter(path, jsonl_format)
    if kind == "parquet":
        return ParquetWriter(path, include_text)
    return DocBinWriter(path)
