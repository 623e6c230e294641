"""The `crf_ner` component: a sequence tagger that sets `doc.ents`.

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
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, set_dropout_rate

from .. import architectures  # noqa: F401  (registers the architectures used below)
from ..ml import adversarial
from ..ml.decoder import TagDecoder
from ..ml.lazy_torch import shims_missing_averages
from ..tags import TagScheme

# The network of configs/cpu_default.cfg (tests/test_configs.py keeps the two equal).
DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_medner.EntityTagger.v1"
decoder = "crf"
nO = null

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
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@Language.factory(
    "crf_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_MODEL,
        "scheme": "BIOES",
        "fgm_epsilon": 0.0,
        "fgm_embeddings": "auto",
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_crf_ner(
    nlp: Language, name: str, model: Model, scheme: str, fgm_epsilon: float, fgm_embeddings: str, scorer: Optional[Callable]
) -> "CRFEntityRecognizer":
    """scheme: "BIO" or "BIOES". fgm_epsilon > 0 turns on FGM adversarial
    training on the embeddings this component owns (`fgm_embeddings`: "auto",
    "char" or "transformer"); see spacy_medner.ml.adversarial."""
    return CRFEntityRecognizer(
        nlp.vocab, model, name, scheme=scheme, fgm_epsilon=fgm_epsilon, fgm_embeddings=fgm_embeddings, scorer=scorer
    )


class CRFEntityRecognizer(TrainablePipe):
    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "crf_ner",
        *,
        scheme: str = "BIOES",
        fgm_epsilon: float = 0.0,
        fgm_embeddings: str = "auto",
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
        TagScheme.from_name(scheme, [])  # fails early on an unknown scheme
        # All that rebuilds the tag scheme: the scheme's name and the labels.
        self.cfg: Dict = {"labels": [], "scheme": scheme}

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
        self.decoder.set_scheme(self.tag_scheme)
        sample = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.initialize(X=sample)
        if self.fgm_epsilon > 0:
            adversarial.check_fgm_target(self.model, self.fgm_embeddings)
        if nlp is not None:
            _warn_if_averages_miss_torch_weights(nlp)

    # Prediction -------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> List[numpy.ndarray]:
        docs = list(docs)
        emissions = self.model.predict(docs)
        return [self.model.ops.to_numpy(ids) for ids in self.decoder.decode(emissions)]

    def set_annotations(self, docs: Iterable[Doc], tag_ids: List[numpy.ndarray]) -> None:
        scheme = self.tag_scheme
        for doc, ids in zip(docs, tag_ids):
            spans = scheme.decode(ids)
            if len(spans):
                spans = _strip_whitespace(spans, doc.to_array(IS_SPACE).astype(bool))
            doc.set_ents([Span(doc, s, e, label=scheme.labels[l]) for s, e, l in spans], default="outside")

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


def _strip_whitespace(spans: numpy.ndarray, is_space: numpy.ndarray) -> List[tuple]:
    """Trim whitespace tokens off entity edges; drop entities that were only whitespace."""
    out = [tuple(span) for span in spans.tolist()]
    for k in numpy.flatnonzero(is_space[spans[:, 0]] | is_space[spans[:, 1] - 1]).tolist():
        start, end, label = out[k]
        while start < end and is_space[start]:
            start += 1
        while end > start and is_space[end - 1]:
            end -= 1
        out[k] = (start, end, label)
    return [span for span in out if span[0] < span[1]]


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
