"""Input files: plain files, folders, and zip archives (read in memory)."""
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Tuple

from ..records import ConversionError


def input_files(paths: Iterable[Path], suffixes: Tuple[str, ...] = ()) -> Iterator[Tuple[Path, bytes]]:
    """(name for messages, bytes) for each file; a zip yields its members as
    `archive.zip/member`, a folder its files (filtered by `suffixes`). The
    same `archive.zip/member` path selects one member (or a folder in it)."""
    for path in map(Path, paths):
        if not path.exists():
            yield from _zip_members(path, suffixes)
            continue
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and (not suffixes or p.suffix in suffixes))
            for file in files:
                yield file, file.read_bytes()
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in sorted(archive.namelist()):
                    if member.endswith("/") or (suffixes and Path(member).suffix not in suffixes):
                        continue
                    yield path / member, archive.read(member)
        else:
            yield path, path.read_bytes()


def _zip_members(path: Path, suffixes: Tuple[str, ...]) -> Iterator[Tuple[Path, bytes]]:
    archive_path = next((p for p in path.parents if p.is_file() and zipfile.is_zipfile(p)), None)
    if archive_path is None:
        raise ConversionError(path, None, "no such file or folder")
    prefix = path.relative_to(archive_path).as_posix()
    with zipfile.ZipFile(archive_path) as archive:
        members = [
            m for m in sorted(archive.namelist())
            if (m == prefix or m.startswith(prefix.rstrip("/") + "/")) and not m.endswith("/")
            and (m == prefix or not suffixes or Path(m).suffix in suffixes)
        ]
        if not members:
            raise ConversionError(archive_path, None, f"has no member {prefix!r}")
        for member in members:
            yield archive_path / member, archive.read(member)
