"""The `crf_ner` component: a sequence tagger that sets `doc.ents`, and the
probability of each entity in the span group `doc.spans[spans_key]`.

Entity probabilities: for every predicted entity, the probability under the
model that the tag sequence holds exactly this entity (this span, this label,
not part of a longer one), summed over all legal tag paths by one
forward-backward pass (`TagDecoder.entity_probabilities`), at the
component's calibrated `temperature` (`python -m spacy_medner calibrate`).
They follow spaCy's span-categorizer convention: `doc.spans[spans_key]`
holds the predicted entities in `doc.ents` order and
`doc.spans[spans_key].attrs["scores"]` their probabilities. With
`threshold > 0`, entities scored below it stay in the span group and are
left out of `doc.ents`. With `candidates_key`, spans the Viterbi path did not
choose whose probability is at least `candidate_floor` go to
`doc.spans[candidates_key]`, scored the same way, for a reviewer.

Missing annotation: a gold token with no entity annotation (spaCy's
`ent_iob == 0`, e.g. a doc whose `ents` were never set, or tokens that don't
align with the reference tokenization) is *marginalised*: the loss sums over
every legal tag sequence that agrees with the annotated tokens. It is never
read as "O". Converters set "O" explicitly on annotated records.
"""
import warnings
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy
from spacy.attrs import IS_SPACE
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, set_dropout_rate

from .. import architectures  # noqa: F401  (registers the architectures used below)
from ..display import LabelColors
from ..ml import adversarial
from ..ml.decoder import TagDecoder
from ..ml.lazy_torch import shims_missing_averages
from ..tags import TagScheme

# The encoder of configs/cpu_default.cfg, under any head: crf_ner's tagger
# here, span_ner's span decoder (tests/test_configs.py keeps the two equal).
DEFAULT_ENCODER_CONFIG = """
[model.encoder]
@architectures = "spacy_medner.SequenceEncoder.v1"
rnn = "gru"
rnn_width = 256
rnn_depth = 1
attention = "mha"
attention_heads = 4
attention_window = 128
residual = true
layer_norm = true
dropout = 0.25

[model.encoder.tok2vec]
@architectures = "spacy_medner.CharEmbed.v1"
width = 64
bigram_width = 32
rows = 10000
bigram_rows = 50000
"""
# The network of configs/cpu_default.cfg.
DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_medner.EntityTagger.v1"
decoder = "crf"
nO = null
""" + DEFAULT_ENCODER_CONFIG
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@Language.factory(
    "crf_ner",
    assigns=["doc.ents", "doc.spans", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_MODEL,
        "scheme": "BIOES",
        "fgm_epsilon": 0.0,
        "fgm_embeddings": "auto",
        "spans_key": "crf_ner",
        "threshold": 0.0,
        "candidates_key": None,
        "candidate_floor": 0.1,
        "candidate_max_length": 32,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_crf_ner(
    nlp: Language,
    name: str,
    model: Model,
    scheme: str,
    fgm_epsilon: float,
    fgm_embeddings: str,
    spans_key: Optional[str],
    threshold: float,
    candidates_key: Optional[str],
    candidate_floor: float,
    candidate_max_length: int,
    scorer: Optional[Callable],
) -> "CRFEntityRecognizer":
    """scheme: "BIO" or "BIOES". fgm_epsilon > 0 turns on FGM adversarial
    training on the embeddings this component owns (`fgm_embeddings`: "auto",
    "char" or "transformer"); see spacy_medner.ml.adversarial.

    spans_key: the span group of the predicted entities and their
    probabilities (null: no probabilities, a little faster). threshold:
    entities scored below it are left out of doc.ents (0 keeps the Viterbi
    output exactly). candidates_key: a span group for near-misses, spans of
    at most candidate_max_length tokens the Viterbi path did not choose,
    scored at least candidate_floor (null: none)."""
    return CRFEntityRecognizer(
        nlp.vocab, model, name, scheme=scheme, fgm_epsilon=fgm_epsilon, fgm_embeddings=fgm_embeddings,
        spans_key=spans_key, threshold=threshold, candidates_key=candidates_key, candidate_floor=candidate_floor,
        candidate_max_length=candidate_max_length, scorer=scorer,
    )


class CRFEntityRecognizer(LabelColors, TrainablePipe):
    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "crf_ner",
        *,
        scheme: str = "BIOES",
        fgm_epsilon: float = 0.0,
        fgm_embeddings: str = "auto",
        spans_key: Optional[str] = "crf_ner",
        threshold: float = 0.0,
        candidates_key: Optional[str] = None,
        candidate_floor: float = 0.1,
        candidate_max_length: int = 32,
        scorer: Optional[Callable] = None,
    ):
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        if fgm_epsilon < 0:
            raise ValueError(f"[spacy_medner] Option 'fgm_epsilon' must be >= 0, got {fgm_epsilon}.")
        if fgm_embeddings not in adversarial.TARGETS:
            raise ValueError(f"[spacy_medner] Option 'fgm_embeddings' must be one of {adversarial.TARGETS}, got {fgm_embeddings!r}.")
        self.fgm_epsilon = fgm_epsilon
        self.fgm_embeddings = fgm_embeddings
        for option, value in (("threshold", threshold), ("candidate_floor", candidate_floor)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"[spacy_medner] Option '{option}' must be a probability in [0, 1], got {value}.")
        if threshold > 0 and not spans_key:
            raise ValueError("[spacy_medner] Option 'threshold' needs entity scores: set 'spans_key'.")
        if candidate_max_length < 1:
            raise ValueError(f"[spacy_medner] Option 'candidate_max_length' must be >= 1, got {candidate_max_length}.")
        self.spans_key = spans_key
        self.threshold = threshold
        self.candidates_key = candidates_key
        self.candidate_floor = candidate_floor
        self.candidate_max_length = candidate_max_length
        TagScheme.from_name(scheme, [])  # fails early on an unknown scheme
        # What rebuilds the tag scheme (its name and the labels), and the
        # temperature that `calibrate` fits (1: the model as trained).
        self.cfg: Dict = {"labels": [], "scheme": scheme, "temperature": 1.0}

    # Labels and tags -------------------------------------------------------

    @property
    def labels(self) -> tuple:
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> tuple:
        return self.labels

    @property
    def tag_scheme(self) -> TagScheme:
        scheme = getattr(self, "_tag_scheme", None)
        if scheme is None or scheme.name != self.cfg["scheme"] or scheme.labels != self.labels:
            scheme = self._tag_scheme = TagScheme.from_name(self.cfg["scheme"], self.labels)
        return scheme

    @property
    def tag_names(self) -> List[str]:
        return self.tag_scheme.names

    @property
    def decoder(self) -> TagDecoder:
        return self.model.get_ref("decoder")

    def add_label(self, label: str) -> int:
        if not isinstance(label, str):
            raise ValueError(f"[spacy_medner] Labels must be strings, got {label!r}.")
        if label in self.cfg["labels"]:
            return 0
        if self.decoder.has_dim("nO"):  # None (declared, unset) before initialize
            raise ValueError(
                f"[spacy_medner] Cannot add label {label!r} to '{self.name}' after it was initialized: "
                "the tag set fixes the model's output size. Give all labels before nlp.initialize()."
            )
        self.cfg["labels"] = sorted(self.cfg["labels"] + [label])
        return 1

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None, labels: Optional[Sequence[str]] = None) -> None:
        validate_get_examples(get_examples, "CRFEntityRecognizer.initialize")
        if labels is not None:
            found = set(labels)
        else:
            found = set(self.labels)
            for eg in get_examples():
                found.update(ent.label_ for ent in eg.reference.ents)
        if not found:
            raise ValueError(
                f"[spacy_medner] '{self.name}' found no entity labels in the training examples and "
                "none were given. Check that the training docs have doc.ents set."
            )
        self.cfg["labels"] = sorted(found)
        self.set_label_colors()
        self.decoder.set_scheme(self.tag_scheme)
        sample = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.initialize(X=sample)
        if self.fgm_epsilon > 0:
            adversarial.check_fgm_target(self.model, self.fgm_embeddings)
        if nlp is not None:
            _warn_if_averages_miss_torch_weights(nlp)

    # Prediction -------------------------------------------------------------

    def predict(self, docs: Iterable[Doc], *, tag_marginals: bool = False) -> List[dict]:
        """Per doc: the Viterbi entities (n, 3: start, end, label index), their
        probabilities, and the near-miss candidates when asked for. With
        `tag_marginals` (for callers that rank or pseudo-label records, such
        as `select`), also each token's tag marginals at the calibrated
        temperature, (n_tokens, n_tags) under "tag_marginals", from the same
        encoder pass."""
        docs = list(docs)
        emissions = self.model.predict(docs)
        scheme, decoder = self.tag_scheme, self.decoder
        temperature = self.cfg.get("temperature", 1.0)
        spans = [scheme.decode(self.model.ops.to_numpy(ids)) for ids in decoder.decode(emissions)]
        predictions = [{"spans": s} for s in spans]
        if self.spans_key:
            for prediction, scores in zip(predictions, decoder.entity_probabilities(emissions, spans, scheme, temperature)):
                prediction["scores"] = scores
        marginals = decoder.tag_marginals(emissions, temperature) if tag_marginals or (self.spans_key and self.candidates_key) else None
        if tag_marginals:
            for prediction, m in zip(predictions, marginals):
                prediction["tag_marginals"] = m
        if not self.spans_key:
            return predictions
        # `calibrate --per-label`: each label's entities scored at its own temperature.
        for label, label_temperature in (self.cfg.get("label_temperatures") or {}).items():
            if label not in scheme.labels or label_temperature == temperature:
                continue
            label_id = scheme.labels.index(label)
            scored = decoder.entity_probabilities(emissions, spans, scheme, label_temperature)
            for prediction, s, p in zip(predictions, spans, scored):
                prediction["scores"] = numpy.where(s[:, 2] == label_id, p, prediction["scores"])
        if self.candidates_key:
            candidates = [
                candidate_spans(m, s, scheme, self.candidate_floor, self.candidate_max_length)
                for m, s in zip(marginals, spans)
            ]
            scored = decoder.entity_probabilities(emissions, candidates, scheme, temperature)
            for prediction, c, p in zip(predictions, candidates, scored):
                keep = p >= self.candidate_floor
                prediction["candidates"], prediction["candidate_scores"] = c[keep], p[keep]
        return predictions

    def set_annotations(self, docs: Iterable[Doc], predictions: List[dict]) -> None:
        labels = self.tag_scheme.labels
        for doc, prediction in zip(docs, predictions):
            is_space = doc.to_array(IS_SPACE).astype(bool)
            spans, scores = _strip_whitespace(prediction["spans"], prediction.get("scores"), is_space)
            entities = [Span(doc, s, e, label=labels[l]) for s, e, l in spans]
            if self.spans_key:
                doc.spans[self.spans_key] = SpanGroup(doc, name=self.spans_key, spans=entities, attrs={"scores": scores})
                entities = [span for span, score in zip(entities, scores) if score >= self.threshold]
            doc.set_ents(entities, default="outside")
            if self.spans_key and self.candidates_key:
                candidates, c_scores = _strip_whitespace(prediction["candidates"], prediction["candidate_scores"], is_space)
                doc.spans[self.candidates_key] = SpanGroup(
                    doc, name=self.candidates_key, spans=[Span(doc, s, e, label=labels[l]) for s, e, l in candidates],
                    attrs={"scores": c_scores},
                )

    # Training ---------------------------------------------------------------

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "CRFEntityRecognizer.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        docs = [eg.predicted for eg in examples]
        emissions, backprop = self.model.begin_update(docs)
        loss, d_emissions = self.get_loss(examples, emissions)
        if not numpy.isfinite(loss):
            raise ValueError(
                f"[spacy_medner] The loss of component '{self.name}' is {loss}: training diverged. "
                "Lower the learning rate or set training.optimizer.grad_clip, and check the training data."
            )
        backprop(d_emissions)
        if self.fgm_epsilon > 0:
            # Second pass on embeddings moved along their gradient; its
            # gradients add to the first pass's, then the tables are restored.
            with adversarial.perturbed_embeddings(self.model, self.fgm_embeddings, self.fgm_epsilon):
                emissions, backprop = self.model.begin_update(docs)
                adversarial_loss, d_emissions = self.get_loss(examples, emissions)
                backprop(d_emissions)
            losses[f"{self.name}_adversarial"] = losses.get(f"{self.name}_adversarial", 0.0) + adversarial_loss
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], emissions) -> tuple:
        validate_examples(examples, "CRFEntityRecognizer.get_loss")
        scheme = self.tag_scheme
        return self.decoder.loss(emissions, [scheme.gold_mask(eg) for eg in examples])


def _strip_whitespace(spans: numpy.ndarray, scores: Optional[numpy.ndarray], is_space: numpy.ndarray):
    """Trim whitespace tokens off entity edges (spaCy cannot align such
    spans) and drop entities that were only whitespace. A trimmed entity keeps
    the probability of the span that was tagged. Returns (spans as tuples,
    scores as floats)."""
    spans = numpy.asarray(spans, dtype=int).reshape(-1, 3)
    out = [tuple(span) for span in spans.tolist()]
    if len(spans):
        for k in numpy.flatnonzero(is_space[spans[:, 0]] | is_space[spans[:, 1] - 1]).tolist():
            start, end, label = out[k]
            while start < end and is_space[start]:
                start += 1
            while end > start and is_space[end - 1]:
                end -= 1
            out[k] = (start, end, label)
    kept = [k for k, span in enumerate(out) if span[0] < span[1]]
    scores = [] if scores is None else [float(scores[k]) for k in kept]
    return [out[k] for k in kept], scores


def candidate_spans(
    marginals: numpy.ndarray, chosen: numpy.ndarray, scheme: TagScheme, floor: float, max_length: int
) -> numpy.ndarray:
    """Spans (n, 3) not in `chosen` that could have probability >= floor: an
    entity's probability is at most that of its first tag being an opening
    tag of its label, and of its last tag being one on which it may end, so
    only starts and ends whose tag marginals reach the floor are paired."""
    taken = {tuple(span) for span in numpy.asarray(chosen).reshape(-1, 3).tolist()}
    found = []
    for label in range(len(scheme.labels)):
        of_label = scheme.label_ids == label
        opens = marginals[:, of_label & scheme.opens].sum(axis=1)
        may_end = marginals[:, of_label & scheme.may_end].sum(axis=1)
        starts, lasts = numpy.flatnonzero(opens >= floor), numpy.flatnonzero(may_end >= floor)
        length = lasts[None, :] - starts[:, None] + 1
        s, e = numpy.nonzero((length >= 1) & (length <= max_length))
        found.extend((int(starts[i]), int(lasts[j]) + 1, label) for i, j in zip(s, e))
    found = sorted(span for span in found if span not in taken)
    return numpy.array(found, dtype=int).reshape(-1, 3)


def _warn_if_averages_miss_torch_weights(nlp: Language) -> None:
    """With `use_averages = true` spaCy evaluates and saves inside
    `nlp.use_params(averages)`. crf_ner's torch layers take the averages; a
    transformer's (spacy-transformers' HFShim) do not, so the saved pipeline
    would pair raw transformer weights with heads averaged against them."""
    training = nlp.config.get("training", {})
    if not training.get("optimizer", {}).get("use_averages"):
        return
    frozen = set(training.get("frozen_components", []))
    missed = sorted(
        {
            f"'{name}' ({type(shim).__name__})"
            for name, pipe in nlp.components
            if name not in frozen and isinstance(getattr(pipe, "model", None), Model)
            for shim in shims_missing_averages(pipe.model)
        }
    )
    if missed:
        warnings.warn(
            "[spacy_medner] training.optimizer.use_averages = true, but the averages cannot reach the torch "
            f"weights of {', '.join(missed)}: evaluation and the saved pipeline would use those weights raw "
            "beside averaged layers trained against them. Set use_averages = false, or freeze those components.",
            UserWarning,
        )
