"""Calibrating and measuring crf_ner's entity probabilities.

An entity is *correct* when its start, end and label match a gold entity
exactly. Calibration fits the temperature T that divides every CRF potential
(emissions and transitions) to minimise the negative log-likelihood of
correctness over the dev set's predicted entities. Dividing all potentials
by one factor leaves the Viterbi path, and so `doc.ents`, unchanged; only the
probabilities move. With `per_label`, each label's entities get their own T
(each still a whole-lattice temperature, so every label's Viterbi path is
the same too).

The metrics are entity-level: expected calibration error over 10
equal-width bins, Brier score, precision and recall against a threshold, and
the review share (the least-confident predictions a reviewer must check so
that the unchecked rest is at least 98% precise).
"""
import math
from typing import Callable, Dict, Iterable, List, Sequence

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

REVIEW_PRECISION = 0.98
N_BINS = 10


def crf_ner_pipe(nlp: Language, source: str = "the pipeline"):
    """The pipeline's crf_ner component (the first one), or a one-line error."""
    from .pipeline.crf_ner import CRFEntityRecognizer

    for name, pipe in nlp.pipeline:
        if isinstance(pipe, CRFEntityRecognizer):
            return name, pipe
    raise ValueError(f"{source} has no crf_ner component (pipeline: {', '.join(nlp.pipe_names) or 'empty'})")


def gold_entities(doc: Doc) -> set:
    return {(e.start_char, e.end_char, e.label_) for e in doc.ents}


class EntityOutcomes:
    """The predicted entities of a dataset at a given temperature: fixed
    Viterbi spans and emissions, re-scored cheaply for each temperature."""

    def __init__(self, nlp: Language, examples: Sequence[Example], batch_size: int = 64):
        name, self.pipe = crf_ner_pipe(nlp)
        before = nlp.pipe_names[: nlp.pipe_names.index(name)]
        self.scheme = self.pipe.tag_scheme
        self.emissions, self.spans, self.correct, self.labels = [], [], [], []
        texts = [eg.reference.text for eg in examples]
        with nlp.select_pipes(enable=before):
            docs = list(nlp.pipe(texts, batch_size=batch_size))
        decoder = self.pipe.decoder
        for i in range(0, len(docs), batch_size):
            batch = docs[i : i + batch_size]
            emissions = self.pipe.model.predict(batch)
            for doc, eg, em, ids in zip(batch, examples[i : i + batch_size], emissions, decoder.decode(emissions)):
                spans = self.scheme.decode(self.pipe.model.ops.to_numpy(ids))
                gold = gold_entities(eg.reference)
                self.emissions.append(em)
                self.spans.append(spans)
                self.correct.extend(
                    (doc[s:e].start_char, doc[s:e].end_char, self.scheme.labels[l]) in gold for s, e, l in spans.tolist()
                )
                self.labels.extend(self.scheme.labels[l] for l in spans[:, 2].tolist())
        self.correct = numpy.array(self.correct, dtype=bool)
        self.labels = numpy.array(self.labels, dtype=object)
        self.n_gold = sum(len(eg.reference.ents) for eg in examples)

    def probabilities(self, temperature: float) -> numpy.ndarray:
        probs = []
        for i in range(0, len(self.spans), 64):
            probs.extend(
                self.pipe.decoder.entity_probabilities(self.emissions[i : i + 64], self.spans[i : i + 64], self.scheme, temperature)
            )
        return numpy.concatenate(probs) if probs else numpy.zeros(0)


def nll(probs: numpy.ndarray, correct: numpy.ndarray) -> float:
    p = numpy.clip(probs, 1e-6, 1 - 1e-6)
    return float(-numpy.mean(numpy.where(correct, numpy.log(p), numpy.log(1 - p))))


def fit_temperature(score: Callable[[float], float], low: float = 0.05, high: float = 20.0) -> float:
    """The temperature minimising `score`: a coarse grid over log T, then a
    golden-section search around the best point."""
    grid = numpy.exp(numpy.linspace(math.log(low), math.log(high), 25))
    values = [score(t) for t in grid]
    best = int(numpy.argmin(values))
    a, b = math.log(grid[max(best - 1, 0)]), math.log(grid[min(best + 1, len(grid) - 1)])
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = score(math.exp(c)), score(math.exp(d))
    for _ in range(20):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = score(math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = score(math.exp(d))
    return float(math.exp((a + b) / 2))


def calibrate(outcomes: EntityOutcomes, per_label: bool = False) -> Dict:
    """Fit one temperature (and, with per_label, one per label); returns the
    fitted values with the dev NLL/ECE/Brier before and after."""
    if not outcomes.n_gold:
        raise ValueError("the data has no gold entities, so correctness cannot be measured")
    if not len(outcomes.correct):
        raise ValueError("the model predicts no entity on this data, so there is nothing to calibrate")
    temperature = fit_temperature(lambda t: nll(outcomes.probabilities(t), outcomes.correct))
    raw, fitted = outcomes.probabilities(1.0), outcomes.probabilities(temperature)
    report = {
        "temperature": temperature,
        "n_entities": int(len(outcomes.correct)),
        "before": summary(raw, outcomes.correct),
        "after": summary(fitted, outcomes.correct),
    }
    if per_label:
        temperatures = {}
        for label in sorted(set(outcomes.labels)):
            of_label = outcomes.labels == label
            if of_label.sum() < 20:  # too few to fit; keep the global one
                temperatures[label] = temperature
                continue
            temperatures[label] = fit_temperature(lambda t: nll(outcomes.probabilities(t)[of_label], outcomes.correct[of_label]))
        per_label_probs = numpy.zeros_like(raw)
        for label, t in temperatures.items():
            of_label = outcomes.labels == label
            per_label_probs[of_label] = outcomes.probabilities(t)[of_label]
        report["label_temperatures"] = temperatures
        report["after_per_label"] = summary(per_label_probs, outcomes.correct)
    return report


def summary(probs: numpy.ndarray, correct: numpy.ndarray) -> Dict[str, float]:
    return {"nll": nll(probs, correct), "ece": ece(probs, correct), "brier": brier(probs, correct)}


def reliability_bins(probs: numpy.ndarray, correct: numpy.ndarray, n_bins: int = N_BINS) -> List[Dict]:
    edges = numpy.linspace(0.0, 1.0, n_bins + 1)
    which = numpy.clip(numpy.digitize(probs, edges[1:-1], right=True), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        members = which == b
        n = int(members.sum())
        bins.append({
            "low": float(edges[b]), "high": float(edges[b + 1]), "count": n,
            "confidence": float(probs[members].mean()) if n else None,
            "accuracy": float(correct[members].mean()) if n else None,
        })
    return bins


def ece(probs: numpy.ndarray, correct: numpy.ndarray, n_bins: int = N_BINS) -> float:
    if not len(probs):
        return 0.0
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in reliability_bins(probs, correct, n_bins) if b["count"]) / len(probs))


def brier(probs: numpy.ndarray, correct: numpy.ndarray) -> float:
    return float(numpy.mean((probs - correct) ** 2)) if len(probs) else 0.0


def review_share(probs: numpy.ndarray, correct: numpy.ndarray, precision: float = REVIEW_PRECISION) -> float:
    """The smallest share of predicted entities that a reviewer, checking the
    least confident first, must check so that the unchecked rest is at least
    `precision` precise (0 when all of them already are)."""
    n = len(probs)
    if not n:
        return 0.0
    order = numpy.argsort(probs, kind="stable")
    correct_sorted = correct[order]
    # Precision of the unchecked rest after checking k entities, k = 0..n-1.
    rest_correct = numpy.cumsum(correct_sorted[::-1])[::-1]
    rest_size = numpy.arange(n, 0, -1)
    ok = numpy.flatnonzero(rest_correct / rest_size >= precision)
    return float(ok[0] / n) if len(ok) else 1.0


def threshold_curve(probs: numpy.ndarray, correct: numpy.ndarray, n_gold: int, steps: int = 20) -> List[Dict]:
    out = []
    for t in numpy.linspace(0.0, 1.0, steps + 1):
        kept = probs >= t
        n_kept, n_right = int(kept.sum()), int((kept & correct).sum())
        out.append({
            "threshold": round(float(t), 4),
            "precision": n_right / n_kept if n_kept else 1.0,
            "recall": n_right / n_gold if n_gold else 0.0,
            "kept": n_kept,
        })
    return out


def entity_metrics(docs: Iterable[Doc], references: Iterable[Doc], spans_key: str) -> Dict:
    """Calibration metrics of the predicted docs' scored entities
    (`doc.spans[spans_key]`) against the references' gold entities."""
    probs, correct, labels, n_gold, gold_per_label = [], [], [], 0, {}
    for doc, reference in zip(docs, references):
        gold = gold_entities(reference)
        n_gold += len(gold)
        for _, _, label in gold:
            gold_per_label[label] = gold_per_label.get(label, 0) + 1
        group = doc.spans[spans_key] if spans_key in doc.spans else []
        scores = group.attrs.get("scores", []) if len(group) else []
        for span, score in zip(group, scores):
            probs.append(score)
            correct.append((span.start_char, span.end_char, span.label_) in gold)
            labels.append(span.label_)
    probs, correct, labels = numpy.array(probs, dtype=float), numpy.array(correct, dtype=bool), numpy.array(labels, dtype=object)
    metrics = {
        "n_entities": int(len(probs)),
        "n_gold": n_gold,
        "ece": ece(probs, correct),
        "brier": brier(probs, correct),
        "review_share_98": review_share(probs, correct),
        "reliability": reliability_bins(probs, correct),
        "threshold_curve": threshold_curve(probs, correct, n_gold),
        "per_label": {},
    }
    for label in sorted(set(labels) | set(gold_per_label)):
        of_label = labels == label
        metrics["per_label"][label] = {
            "n_entities": int(of_label.sum()),
            "ece": ece(probs[of_label], correct[of_label]),
            "brier": brier(probs[of_label], correct[of_label]),
        }
    return metrics


def plot(metrics: Dict, folder, title: str = "") -> List[str]:
    """reliability.png and threshold.png; needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    bins = [b for b in metrics["reliability"] if b["count"]]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    ax.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["accuracy"] for b in bins], width=0.09, alpha=0.6, label="accuracy")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="bins (confidence, accuracy)")
    ax.set_xlabel("entity probability")
    ax.set_ylabel("share of entities correct")
    ax.set_title(f"{title} ECE {metrics['ece']:.3f}, Brier {metrics['brier']:.3f}".strip())
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "reliability.png", dpi=110)
    written.append("reliability.png")
    plt.close(fig)
    curve = metrics["threshold_curve"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([c["threshold"] for c in curve], [c["precision"] for c in curve], label="precision")
    ax.plot([c["threshold"] for c in curve], [c["recall"] for c in curve], label="recall")
    ax.set_xlabel("threshold (entities scored below it are dropped)")
    ax.set_ylim(0, 1.02)
    ax.legend()
    ax.set_title(f"review {metrics['review_share_98']:.1%} for 98% precision on the rest")
    fig.tight_layout()
    fig.savefig(folder / "threshold.png", dpi=110)
    written.append("threshold.png")
    plt.close(fig)
    return written
