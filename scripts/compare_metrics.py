"""Fail unless two `spacy evaluate` outputs have identical entity scores.

    python scripts/compare_metrics.py metrics/dev.json metrics/dev-package.json
"""
import sys

import srsly

KEYS = ("ents_p", "ents_r", "ents_f", "ents_per_type")


def main(before: str, after: str) -> int:
    a, b = srsly.read_json(before), srsly.read_json(after)
    diff = {k: (a.get(k), b.get(k)) for k in KEYS if a.get(k) != b.get(k)}
    if diff:
        print(f"✘ scores differ between {before} and {after}: {diff}", file=sys.stderr)
        return 1
    print(f"✔ identical scores (ents_f {a['ents_f']:.4f}) in {before} and {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
