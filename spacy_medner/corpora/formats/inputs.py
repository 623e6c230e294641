"""Input files: plain files, folders, and zip archives (read in memory)."""
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Tuple

from ..records import ConversionError


def input_files(paths: Iterable[Path], suffixes: Tuple[str, ...] = ()) -> Iterator[Tuple[Path, bytes]]:
    """(name for messages, bytes) for each file; a zip yields its members as
    `archive.zip/member`, a folder its files (filtered by `suffixes`)."""
    for path in map(Path, paths):
        if not path.exists():
            raise ConversionError(path, None, "no such file or folder")
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
