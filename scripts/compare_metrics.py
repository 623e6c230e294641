"""Fail unless two evaluations (`python -m spacy_medner evaluate`'s
metrics.json, or `spacy evaluate`'s JSON) have identical entity scores and,
where present, the same calibration.

    python scripts/compare_metrics.py metrics/dev/metrics.json metrics/dev-package/metrics.json
"""
import sys

import srsly

KEYS = ("ents_p", "ents_r", "ents_f", "ents_per_type", "temperature")
CALIBRATION = ("n_entities", "ece", "brier", "review_share_98")


def main(before: str, after: str) -> int:
    a, b = srsly.read_json(before), srsly.read_json(after)
    diff = {k: (a.get(k), b.get(k)) for k in KEYS if a.get(k) != b.get(k)}
    ca, cb = a.get("calibration", {}), b.get("calibration", {})
    diff.update({f"calibration.{k}": (ca.get(k), cb.get(k)) for k in CALIBRATION if abs((ca.get(k) or 0) - (cb.get(k) or 0)) > 1e-6})
    if diff:
        print(f"✘ scores differ between {before} and {after}: {diff}", file=sys.stderr)
        return 1
    print(f"✔ identical scores (ents_f {a['ents_f']:.4f}) in {before} and {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
