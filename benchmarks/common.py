"""Shared by the benchmark scripts."""
import datetime
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]


def command_line(argv: Optional[List[str]]) -> str:
    """The command that reproduces this run, for the report."""
    args = argv if argv is not None else sys.argv[1:]
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    return " ".join(["python", script.as_posix(), *map(str, args)])


PACKAGES = ["spacy", "thinc", "torch", "spacy-transformers", "pytorch-crf", "sklearn-crfsuite", "spacy_medner"]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def provenance() -> Dict[str, str]:
    """Where and when a result was measured. Stored in every result file, because
    results are committed and a report may combine runs from several machines."""
    return {"date": datetime.date.today().isoformat(), "machine": machine(), "versions": versions()}
