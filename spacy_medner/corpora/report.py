"""The conversion report: what went in, what came out, and every entity that
was changed on the way, with its reason."""
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import srsly
from wasabi import msg

# Kinds of change, and what each means.
CHANGES = {
    "trimmed": "leading/trailing whitespace removed from the span",
    "expanded": "span widened to token boundaries (the tokenizer does not split there)",
    "split": "a discontinuous (multi-fragment) entity became one entity per fragment",
    "span_group_only": "overlaps a longer entity: kept in the span group, not in doc.ents",
    "merged": "exact duplicate of another entity (same offsets and label): one kept",
    "dropped": "removed entirely",
    "tag_repaired": "malformed tag normalised",
    "tag_rejected": "malformed tag: record rejected",
}


@dataclass
class ConversionReport:
    format: str
    inputs: List[str]
    records: int = 0
    segments: int = 0
    records_skipped: int = 0
    entities_in: Counter = field(default_factory=Counter)
    ents_out: Counter = field(default_factory=Counter)
    spans_out: Counter = field(default_factory=Counter)
    changes: List[Dict] = field(default_factory=list)
    extra: Dict[str, object] = field(default_factory=dict)

    def change(self, kind: str, record: str, label: Optional[str], text: str, reason: str, **details) -> None:
        assert kind in CHANGES, kind
        self.changes.append({"kind": kind, "record": record, "label": label, "text": text, "reason": reason, **details})

    @property
    def change_counts(self) -> Counter:
        return Counter(c["kind"] for c in self.changes)

    def to_dict(self) -> Dict:
        labels = sorted(set(self.entities_in) | set(self.ents_out) | set(self.spans_out))
        return {
            "format": self.format,
            "inputs": self.inputs,
            "records": self.records,
            "records_skipped": self.records_skipped,
            "segments": self.segments,
            "entities_in": sum(self.entities_in.values()),
            "ents_out": sum(self.ents_out.values()),
            "spans_out": sum(self.spans_out.values()),
            "per_label": {l: {"in": self.entities_in[l], "ents": self.ents_out[l], "spans": self.spans_out[l]} for l in labels},
            "change_counts": dict(self.change_counts),
            "change_kinds": CHANGES,
            "changes": self.changes,
            **self.extra,
        }

    def write(self, path) -> None:
        srsly.write_json(path, self.to_dict())

    def print(self, max_changes: int = 20) -> None:
        d = self.to_dict()
        msg.divider(f"Conversion report ({self.format})")
        msg.info(
            f"{d['records']} records → {d['segments']} docs; entities in {d['entities_in']}, "
            f"doc.ents {d['ents_out']}, span group {d['spans_out']}"
        )
        rows = [(l, v["in"], v["ents"], v["spans"]) for l, v in d["per_label"].items()]
        msg.table(rows, header=("label", "in", "doc.ents", "span group"), aligns=("l", "r", "r", "r"))
        if not self.changes:
            msg.good("No entity was changed, merged or dropped.")
            return
        msg.warn("Changed entities: " + ", ".join(f"{k} {n}" for k, n in sorted(self.change_counts.items())))
        for c in self.changes[:max_changes]:
            print(f"  {c['kind']:<16} {c['record']}  {c['label']}  {c['text']!r}  ({c['reason']})")
        if len(self.changes) > max_changes:
            print(f"  … {len(self.changes) - max_changes} more in the JSON report")
