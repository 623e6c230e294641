"""Shared by the benchmark scripts."""
import sys
from pathlib import Path
from typing import List, Optional

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
