"""Shared by the benchmark scripts."""
import datetime
import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]


def command_line(module: str, argv: Optional[List[str]]) -> str:
    """The command that reproduces this run, for the report: `python -m MODULE ARGS`
    (pass the script's `__spec__.name`), run from the repository root."""
    args = argv if argv is not None else sys.argv[1:]
    return " ".join(["python", "-m", module, *map(str, args)])


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


def commit() -> Optional[str]:
    """The repository commit the run used (`+changes` if code or configs
    differed from it), or None outside a git checkout. Results and the project
    lock are written by runs, so they do not count as changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results", ":!project.lock")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if changed else "")


def provenance() -> Dict[str, Optional[str]]:
    """Where, when and with which code a result was measured. Stored in every
    result file, because results are committed and a report may combine runs
    from several machines and commits."""
    return {"date": datetime.date.today().isoformat(), "machine": machine(), "versions": versions(), "commit": commit()}
