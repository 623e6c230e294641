"""The `span_ner` component: nested and overlapping entities from a span
decoder (`spacy_medner.SpanPointer.v1`, see `spacy_medner.ml.span_pointer`).

Output (spaCy's span-categorizer convention):
- `doc.spans[spans_key]` holds every span of at most `max_length` tokens whose
  probability is at least `threshold`: overlaps and nesting allowed, sorted by
  start, then end, then label; `.attrs["scores"]` their probabilities.
  Whitespace at a span's edge is trimmed (a span that is only whitespace is
  dropped); when trimming makes two equal spans, the higher probability stays.
- With `set_ents` (the default), `doc.ents` gets a non-overlapping subset:
  spans in order of probability, highest first (ties: the longer span, then
  the leftmost), each kept unless it overlaps one already kept. So an inner
  mention that scores higher than its outer one wins `doc.ents`; both stay
  in the span group.

Training data and missing annotation:
- Gold spans are the reference doc's `doc.spans[spans_key]` (the converters'
  group of all mentions), aligned to the predicted tokens with
  `Example.get_aligned_spans_y2x`. Every other candidate (span, label) in the
  band is a negative, except:
- In a reference doc where some tokens carry entity annotation, a token with
  missing annotation (`ent_iob == 0`, or one that does not align) is unknown:
  every candidate span that overlaps such a token is left out of the loss
  for every label (neither positive nor negative), unless it is a gold span,
  which stays a positive. The same principle as crf_ner's marginalised
  tokens; converters set "O" explicitly on annotated records.
- A reference doc with no entity annotation at all (`doc.ents` never set) is
  read from its span group alone: its gold spans are positives and every
  other candidate a negative.
- An Example whose reference has no `spans_key` group is an error naming the
  key (an empty group means "no mentions" and is fine).
- Labels come from the span groups in `initialize` (or its `labels`
  argument); with given labels, gold spans of any other label are ignored,
  as spaCy's spancat does.
- Gold mentions longer than `max_length` cannot be predicted or learnt:
  `initialize` warns with how many of how many; they are never dropped from
  the data silently (they stay in the scorer's gold).
"""
import warnings
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.attrs import IS_SPACE
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.pipeline.spancat import spancat_score
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Config, Model, set_dropout_rate

from .. import architectures  # noqa: F401  (registers the architectures used below)
from ..display import LabelColors
from ..ml.span_pointer import find_spans, span_loss
from .crf_ner import DEFAULT_ENCODER_CONFIG, _strip_whitespace

# The span decoder on the encoder of configs/cpu_default.cfg (configs/cmeee_span.cfg keeps it).
DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_medner.SpanPointer.v1"
kind = "global_pointer"
max_length = 16
width = 64
nO = null
""" + DEFAULT_ENCODER_CONFIG
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@registry.scorers("spacy_medner.span_ner_scorer.v1")
def make_span_ner_scorer() -> Callable:
    return span_ner_score


def span_ner_score(examples: Iterable[Example], *, spans_key: str = "sc", set_ents: bool = True, **kwargs) -> Dict[str, Any]:
    """spaCy's span scores under the key's own names (`spans_{key}_p/r/f`,
    `spans_{key}_per_type`: every mention, overlaps included, exact match),
    and with `set_ents` the `ents_*` scores of doc.ents too."""
    examples = list(examples)
    scores = spancat_score(examples, spans_key=spans_key, labeled=True)
    if set_ents:
        scores.update(get_ner_prf(examples))
    return scores


@Language.factory(
    "span_ner",
    assigns=["doc.spans", "doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": "sc",
        "threshold": 0.5,
        "set_ents": True,
        "scorer": {"@scorers": "spacy_medner.span_ner_scorer.v1"},
    },
    default_score_weights={"spans_sc_f": 1.0, "spans_sc_p": 0.0, "spans_sc_r": 0.0, "spans_sc_per_type": None},
)
def make_span_ner(
    nlp: Language, name: str, model: Model, spans_key: str, threshold: float, set_ents: bool, scorer: Optional[Callable]
) -> "SpanEntityRecognizer":
    """spans_key: the span group read as gold and written with the
    predictions. threshold: the probability a span needs to be predicted.
    set_ents: also set doc.ents to a non-overlapping subset (highest
    probability first)."""
    return SpanEntityRecognizer(nlp.vocab, model, name, spans_key=spans_key, threshold=threshold, set_ents=set_ents, scorer=scorer)


class SpanEntityRecognizer(LabelColors, TrainablePipe):
    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "span_ner",
        *,
        spans_key: str = "sc",
        threshold: float = 0.5,
        set_ents: bool = True,
        scorer: Optional[Callable] = span_ner_score,
    ):
        if not spans_key:
            raise ValueError("[spacy_medner] Option 'spans_key' of span_ner must name a span group, got an empty value.")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"[spacy_medner] Option 'threshold' must be a probability in (0, 1], got {threshold}.")
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.spans_key = spans_key
        self.threshold = threshold
        self.set_ents = set_ents
        self.cfg: Dict = {"labels": []}

    @property
    def labels(self) -> tuple:
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> tuple:
        return self.labels

    @property
    def max_length(self) -> int:
        return self.model.attrs["max_length"]

    @property
    def head(self) -> Model:
        return self.model.get_ref("span_head")

    def add_label(self, label: str) -> int:
        if not isinstance(label, str):
            raise ValueError(f"[spacy_medner] Labels must be strings, got {label!r}.")
        if label in self.cfg["labels"]:
            return 0
        if self.model.has_dim("nO"):
            raise ValueError(
                f"[spacy_medner] Cannot add label {label!r} to '{self.name}' after it was initialized: "
                "the label set fixes the model's output size. Give all labels before nlp.initialize()."
            )
        self.cfg["labels"] = sorted(self.cfg["labels"] + [label])
        return 1

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None, labels: Optional[Sequence[str]] = None) -> None:
        validate_get_examples(get_examples, "SpanEntityRecognizer.initialize")
        found = set(self.labels)
        n_mentions = n_long = 0
        for eg in get_examples():
            group = self._gold_group(eg)
            found.update(span.label_ for span in group)
            n_mentions += len(group)
            n_long += sum(len(span) > self.max_length for span in group)
        if labels is not None:
            found = set(labels)
        if not found:
            raise ValueError(
                f"[spacy_medner] '{self.name}' found no labels in the training examples' doc.spans[{self.spans_key!r}] "
                "and none were given."
            )
        if n_long:
            warnings.warn(
                f"[spacy_medner] '{self.name}': {n_long} of {n_mentions} training mentions in doc.spans[{self.spans_key!r}] "
                f"are longer than max_length = {self.max_length} tokens and cannot be learnt or predicted "
                "(raise the model's max_length to cover them).",
                UserWarning,
            )
        self.cfg["labels"] = sorted(found)
        self.set_label_colors()
        self.model.set_dim("nO", len(self.labels), force=True)
        self.model.initialize(X=[eg.predicted for eg in islice(get_examples(), 10)])

    # Prediction -------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> List[Tuple[numpy.ndarray, numpy.ndarray]]:
        """Per doc: (n, 3) [start, end, label index] spans at or above the
        threshold and their probabilities."""
        docs = list(docs)
        hidden = self.model.predict(docs)
        return find_spans(self.head, hidden, self.threshold)

    def set_annotations(self, docs: Iterable[Doc], predictions: List[Tuple[numpy.ndarray, numpy.ndarray]]) -> None:
        labels = self.labels
        for doc, (spans, probs) in zip(docs, predictions):
            spans, scores = _strip_whitespace(spans, probs, doc.to_array(IS_SPACE).astype(bool))
            best: Dict[tuple, float] = {}
            for span, score in zip(spans, scores):
                best[span] = max(score, best.get(span, 0.0))
            ordered = sorted(best)
            doc.spans[self.spans_key] = SpanGroup(
                doc, name=self.spans_key, spans=[Span(doc, s, e, label=labels[l]) for s, e, l in ordered],
                attrs={"scores": [best[span] for span in ordered]},
            )
            if self.set_ents:
                doc.set_ents(
                    [Span(doc, s, e, label=labels[l]) for s, e, l in non_overlapping(ordered, [best[s] for s in ordered])],
                    default="outside",
                )

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        if self.scorer is None:
            return {}
        return self.scorer(examples, spans_key=self.spans_key, set_ents=self.set_ents, **kwargs)

    # Training ---------------------------------------------------------------

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "SpanEntityRecognizer.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        hidden, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_hidden = self.get_loss(examples, hidden)
        if not numpy.isfinite(loss):
            raise ValueError(
                f"[spacy_medner] The loss of component '{self.name}' is {loss}: training diverged. "
                "Lower the learning rate or set training.optimizer.grad_clip, and check the training data."
            )
        backprop(d_hidden)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], hidden) -> Tuple[float, list]:
        examples = list(examples)
        validate_examples(examples, "SpanEntityRecognizer.get_loss")
        gold = [self.gold_arrays(eg) for eg in examples]
        return span_loss(self.head, hidden, [t for t, _ in gold], [k for _, k in gold])

    def _gold_group(self, eg: Example) -> SpanGroup:
        if self.spans_key not in eg.reference.spans:
            raise ValueError(
                f"[spacy_medner] '{self.name}' reads its gold mentions from doc.spans[{self.spans_key!r}], "
                f"but a training doc has no such span group (it has {sorted(eg.reference.spans.keys()) or 'none'}): "
                f"convert the corpus with `python -m spacy_medner convert` or set the component's spans_key."
            )
        return eg.reference.spans[self.spans_key]

    def gold_arrays(self, eg: Example) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """(T, max_length, labels) float32 target and bool in-the-loss mask
        of one example, on the predicted doc's tokens (module docstring)."""
        T, M = len(eg.predicted), self.max_length
        index = {label: i for i, label in enumerate(self.labels)}
        target = numpy.zeros((T, M, len(index)), dtype="float32")
        keep = numpy.ones((T, M, len(index)), dtype=bool)
        if eg.reference.has_annotation("ENT_IOB"):
            iob = eg.get_aligned("ENT_IOB")
            missing = numpy.array([value is None or value == 0 for value in iob], dtype=bool)
            if missing.any():
                keep &= ~overlaps(missing, M)[:, :, None]
        for span in eg.get_aligned_spans_y2x(self._gold_group(eg), allow_overlap=True):
            length = span.end - span.start
            if span.label_ in index and 1 <= length <= M:
                target[span.start, length - 1, index[span.label_]] = 1.0
                keep[span.start, length - 1, index[span.label_]] = True
        return target, keep


def overlaps(missing: numpy.ndarray, max_length: int) -> numpy.ndarray:
    """(T, max_length) bool: span (s, s + d] holds a token flagged in `missing`."""
    T = len(missing)
    before = numpy.concatenate([[0], numpy.cumsum(missing)])
    starts = numpy.arange(T)[:, None]
    ends = numpy.minimum(starts + numpy.arange(1, max_length + 1)[None, :], T)
    return (before[ends] - before[starts]) > 0


def non_overlapping(spans: Sequence[tuple], scores: Sequence[float]) -> List[tuple]:
    """doc.ents' policy: highest probability first, ties to the longer span,
    then the leftmost; a span overlapping one already kept is skipped.
    Returns the kept (start, end, label) sorted by start."""
    order = sorted(range(len(spans)), key=lambda k: (-scores[k], -(spans[k][1] - spans[k][0]), spans[k][0], spans[k][2]))
    taken: set = set()
    kept = []
    for k in order:
        start, end, _ = spans[k]
        if taken.isdisjoint(range(start, end)):
            kept.append(spans[k])
            taken.update(range(start, end))
    return sorted(kept)
