"""Exact-match and boundary-only entity scores, micro and per type.

Exact: a predicted entity counts when its start, end and type equal a gold
entity's (the papers' and spaCy's `ents_f`). Boundary-only (relaxed): start
and end must match, the type may differ; it separates segmentation errors
from typing errors.
"""
from collections import Counter
from typing import Dict, Iterable, List, Set, Tuple

Entity = Tuple[int, int, int, str]  # doc index, start char, end char, label


def entity_set(docs: Iterable) -> Set[Entity]:
    return {(i, e.start_char, e.end_char, e.label_) for i, doc in enumerate(docs) for e in doc.ents}


def prf(n_correct: int, n_predicted: int, n_gold: int) -> Dict[str, float]:
    p = n_correct / n_predicted if n_predicted else 0.0
    r = n_correct / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f}


def score(gold: Set[Entity], predicted: Set[Entity]) -> Dict:
    """{"p", "r", "f", "boundary_f", "n_gold", "n_predicted", "per_type": {label: {"p", "r", "f", "n_gold"}}}"""
    correct = gold & predicted
    result = prf(len(correct), len(predicted), len(gold))
    boundaries = lambda ents: {e[:3] for e in ents}  # noqa: E731
    # Each gold boundary counts once, even if two types were predicted on it.
    result["boundary_f"] = prf(len(boundaries(gold) & boundaries(predicted)), len(boundaries(predicted)), len(boundaries(gold)))["f"]
    result["n_gold"], result["n_predicted"] = len(gold), len(predicted)
    n_gold, n_pred, n_correct = (Counter(e[3] for e in ents) for ents in (gold, predicted, correct))
    result["per_type"] = {
        label: {**prf(n_correct[label], n_pred[label], n_gold[label]), "n_gold": n_gold[label]}
        for label in sorted(set(n_gold) | set(n_pred))
    }
    return result


def macro(scores: List[Dict]) -> Dict[str, float]:
    """The mean over test sets (ROCLING 2023 ranks by the macro F1 over genres)."""
    return {key: sum(s[key] for s in scores) / len(scores) for key in ("p", "r", "f", "boundary_f")}
