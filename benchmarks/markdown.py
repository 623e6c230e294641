"""Markdown tables: written by benchmarks.report and benchmarks.ablation, and
read back by the tests, which check a report's structure and figures rather
than its wording."""
from typing import Dict, List, Sequence


def table(header: Sequence[str], rows: Sequence[Sequence], align: str = "") -> List[str]:
    """A Markdown table. `align` has one letter per column, l or r; by default
    the first column is left-aligned and the others, figures, right-aligned."""
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError(f"a table of {len(header)} columns got alignment {align!r} or a row of another width")
    return [_line(header), "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|", *map(_line, rows)]


def _line(cells: Sequence) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def tables(markdown: str) -> List[List[Dict[str, str]]]:
    """Every table in a Markdown text, in order, each as its rows keyed by the header's cells."""
    found: List[List[Dict[str, str]]] = []
    lines = markdown.splitlines()
    i = 0
    while i + 1 < len(lines):
        if lines[i].startswith("| ") and lines[i + 1].startswith("|---"):
            header = _cells(lines[i])
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("| "):
                rows.append(dict(zip(header, _cells(lines[i]))))
                i += 1
            found.append(rows)
        else:
            i += 1
    return found


def _cells(line: str) -> List[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def section(markdown: str, heading: str) -> str:
    """The text under a heading (`## Title` or `### corpus`), up to the next heading of the same or a higher level."""
    lines = markdown.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if 0 < _depth(lines[i]) <= _depth(heading)), len(lines))
    return "\n".join(lines[start:end])


def _depth(line: str) -> int:
    """2 for `## Title`, 0 for a line that is not a heading."""
    marks = len(line) - len(line.lstrip("#"))
    return marks if line[marks:marks + 1] == " " else 0
