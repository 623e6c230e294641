"""The tag decoder as a thinc layer: emissions in, tag ids out.

`TagDecoder` wraps `crf.TagDecoderModule` (a constrained CRF or softmax) in
a `LazyTorchShim`, and every call goes through that shim: thinc places the
inputs on the shim's device, runs prediction under `torch.no_grad()` in eval
mode and training in train mode, and applies mixed precision and gradient
scaling. Nothing here switches modes or devices by hand.

Its forward pass is Viterbi decoding (`model.predict(emissions)`). Training
does not go through the forward pass, since the loss of a structured decoder
is not a function of its output: `loss` returns the loss and its gradient
with respect to the emissions, and leaves the gradient of the decoder's own
weights (the CRF transitions) for the next `finish_update`.

It is a `Model` subclass, like spacy-transformers' `TransformerModel`, so
that loss and decoding are methods of the layer the component holds;
copying is overridden to keep the subclass.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats2d, Ints1d

from ..tags import TagScheme
from .crf import TagDecoderModule
from .encoder import length_buckets
from .lazy_torch import build_torch_module, lazy_torch_shim


class TagDecoder(Model):
    def __init__(
        self,
        kind: str = "crf",
        focal_gamma: float = 0.0,
        label_smoothing: float = 0.0,
        label_weights: Optional[Dict[str, float]] = None,
    ):
        if label_weights and kind != "softmax":
            raise ValueError('[spacy_medner] Option \'label_weights\' needs decoder = "softmax".')
        module = TagDecoderModule(kind, focal_gamma, label_smoothing)
        super().__init__(
            f"medner_{kind}_decoder",
            _forward,
            init=_init,
            dims={"nO": None},
            attrs={"label_weights": dict(label_weights or {})},
            shims=[lazy_torch_shim(module)],
        )
        self._settings = (kind, focal_gamma, label_smoothing, label_weights)

    @property
    def module(self) -> TagDecoderModule:
        return self.shims[0].module

    def set_scheme(self, scheme: TagScheme) -> None:
        """Size the decoder for the scheme's tags and fix its legal moves.
        Must run before `initialize`; a saved decoder restores both."""
        self.set_dim("nO", len(scheme.names), force=True)
        build_torch_module(self, n_tags=len(scheme.names))
        self.module.set_moves(*scheme.allowed_moves())
        weights = self.attrs["label_weights"]
        labels = ["O" if i < 0 else scheme.labels[i] for i in scheme.label_ids]
        self.module.set_tag_weights(numpy.array([weights.get(label, 1.0) for label in labels]))

    def decode(self, emissions: List[Floats2d]) -> List[Ints1d]:
        """Best legal tag ids per doc, in one batched Viterbi pass."""
        return self.predict(emissions)

    def entity_probabilities(
        self, emissions: List[Floats2d], spans: Sequence[numpy.ndarray], scheme: TagScheme, temperature: float = 1.0
    ) -> List[numpy.ndarray]:
        """Per doc, the probability of each span (n, 3: start, end, label
        index) being exactly one entity under the model at `temperature`,
        summed over all legal tag paths (`TagDecoderModule.entity_log_probs`),
        batched over docs of similar length and their entities."""
        out = [numpy.zeros(len(s), dtype="float32") for s in spans]
        for group in self._by_length(emissions):
            probs = self._entity_probabilities([emissions[i] for i in group], [spans[i] for i in group], scheme, temperature)
            for i, p in zip(group, probs):
                out[i] = p
        return out

    def _entity_probabilities(self, emissions, spans, scheme: TagScheme, temperature: float) -> List[numpy.ndarray]:
        out = [numpy.zeros(len(s), dtype="float32") for s in spans]
        if not any(len(s) for s in spans):
            return out
        X, mask, rows = self._pad(emissions)
        row_of = {doc: row for row, doc in enumerate(rows)}
        with_spans = [i for i, s in enumerate(spans) if len(s)]
        all_spans = numpy.concatenate([numpy.asarray(spans[i]).reshape(-1, 3) for i in with_spans])
        span_rows = numpy.concatenate([numpy.full(len(spans[i]), row_of[i]) for i in with_spans])
        pattern, real, stop = scheme.entity_patterns(all_spans)
        device = X.device
        entities = (
            torch.as_tensor(span_rows, device=device),
            torch.as_tensor(all_spans[:, 0], device=device),
            torch.as_tensor(pattern, device=device),
            torch.as_tensor(real, device=device),
            torch.as_tensor(stop, device=device),
        )
        inputs = ArgsKwargs(args=(X, mask), kwargs={"mode": "entity_log_probs", "entities": entities, "temperature": float(temperature)})
        log_probs, _ = self.shims[0](inputs, is_train=False)
        probs = numpy.clip(self.ops.to_numpy(torch2xp(log_probs.exp())).astype("float32"), 0.0, 1.0)
        offsets = numpy.cumsum([0] + [len(spans[i]) for i in with_spans])
        for k, i in enumerate(with_spans):
            out[i] = probs[offsets[k] : offsets[k + 1]]
        return out

    def tag_marginals(self, emissions: List[Floats2d], temperature: float = 1.0) -> List[numpy.ndarray]:
        """Per doc, (n_tokens, n_tags) marginal probability of each tag."""
        out = [numpy.zeros((len(e), self.get_dim("nO")), dtype="float32") for e in emissions]
        for group in self._by_length(emissions):
            X, mask, _ = self._pad([emissions[i] for i in group])
            inputs = ArgsKwargs(args=(X, mask), kwargs={"mode": "tag_marginals", "temperature": float(temperature)})
            marginals, _ = self.shims[0](inputs, is_train=False)
            marginals = self.ops.to_numpy(torch2xp(marginals))
            for row, i in enumerate(group):
                out[i] = numpy.asarray(marginals[row, : len(emissions[i])], dtype="float32")
        return out

    def loss(self, emissions: List[Floats2d], gold: Sequence[numpy.ndarray]) -> Tuple[float, List[Floats2d]]:
        """The decoder's training loss (`TagDecoderModule.sequence_loss`), mean
        per doc, and its gradient with respect to the emissions.

        gold: per doc, a (n_tokens, n_tags) bool array of the tags each token
        may take (all True where the annotation is missing).
        """
        d_emissions = [self.ops.alloc2f(*e.shape) for e in emissions]
        if not any(len(e) for e in emissions):
            return 0.0, d_emissions
        X, mask, rows = self._pad(emissions)
        gold_padded = numpy.zeros(tuple(X.shape), dtype=bool)
        for row, i in enumerate(rows):
            gold_padded[row, : len(gold[i])] = self.ops.to_numpy(gold[i])
        gold_t = torch.as_tensor(gold_padded, device=X.device)
        X.requires_grad_(True)
        per_doc, backprop = self.shims[0](ArgsKwargs(args=(X, mask, gold_t), kwargs={"mode": "loss"}), is_train=True)
        scale = torch.full_like(per_doc, 1.0 / len(emissions))
        grads = backprop(ArgsKwargs(args=(per_doc,), kwargs={"grad_tensors": scale}))
        dX = torch2xp(grads.args[0])
        for row, i in enumerate(rows):
            d_emissions[i] = self.ops.asarray2f(dX[row, : len(emissions[i])])
        return float(per_doc.detach().sum()) / len(emissions), d_emissions

    def _by_length(self, emissions: List[Floats2d]) -> List[List[int]]:
        """The non-empty docs, grouped by similar length for prediction: the
        decoder loops over time steps, so a short record padded to a long
        one's length would cost as much as the long one. Per-doc results do
        not depend on the grouping."""
        nonempty = [i for i, e in enumerate(emissions) if len(e)]
        return [[nonempty[j] for j in group] for group in length_buckets([len(emissions[i]) for i in nonempty])]

    def _pad(self, emissions: List[Floats2d]) -> Tuple[torch.Tensor, torch.Tensor, List[int]]:
        """The non-empty docs' emissions as one padded (B, T, K) tensor on the
        shim's device, their mask, and which docs they are."""
        rows = [i for i, e in enumerate(emissions) if len(e)]
        device = self.shims[0].device
        X = xp2torch(self.ops.pad([emissions[i] for i in rows]), device=device)
        lengths = torch.tensor([len(emissions[i]) for i in rows], device=device)
        mask = torch.arange(X.shape[1], device=device).unsqueeze(0) < lengths.unsqueeze(1)
        return X, mask, rows

    def _copy(self, seen: Optional[dict] = None) -> "TagDecoder":
        # thinc's Model._copy would rebuild a plain Model and lose the methods.
        copied = TagDecoder(*self._settings)
        copied._dims = copy.deepcopy(self._dims)
        copied._attrs = copy.deepcopy(self._attrs)
        copied.shims[0] = self.shims[0].copy()
        return copied


def _init(model: TagDecoder, X=None, Y=None) -> None:
    if model.module.sizes is None:
        raise ValueError("[spacy_medner] The decoder has no tags: TagDecoder.set_scheme() must run before initialize.")


def _forward(model: TagDecoder, emissions: List[Floats2d], is_train: bool):
    out = [model.ops.alloc1i(len(e)) for e in emissions]
    for group in model._by_length(emissions):
        X, mask, _ = model._pad([emissions[i] for i in group])
        # Decoding is not differentiable; it always runs as prediction.
        tags, _ = model.shims[0](ArgsKwargs(args=(X, mask), kwargs={"mode": "decode"}), is_train=False)
        tags = torch2xp(tags)
        for row, i in enumerate(group):
            out[i] = tags[row, : len(emissions[i])]

    def backprop(d_tags: List[Ints1d]) -> List[Floats2d]:
        return [model.ops.alloc2f(*e.shape) for e in emissions]

    return out, backprop
