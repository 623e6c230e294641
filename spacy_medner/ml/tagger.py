"""The entity tagger model: encoder → linear projection to tag scores →
decoder (constrained CRF or constrained softmax).

The model's forward pass returns the emissions (one (n_tokens, n_tags) array
per doc). The decoder is a separate node ("decoder" ref) that the component
drives: `decoder_loss` for training and `decode` for prediction. It is still
part of the model tree, so its weights are trained by `finish_update`, saved
and loaded with everything else.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from thinc.api import Linear, Model, chain, torch2xp, with_array, xp2torch
from thinc.types import Floats2d, Ints1d

from .. import tags as tag_schemes
from .crf import TagDecoder
from .lazy_torch import LazyTorchLayer, build_torch_module, torch_module


def EntityTagger(
    encoder: Model[List, List[Floats2d]],
    decoder: str = "crf",
    nO: Optional[int] = None,
    focal_gamma: float = 0.0,
    label_smoothing: float = 0.0,
    label_weights: Optional[Dict[str, float]] = None,
) -> Model[List, List[Floats2d]]:
    output = Linear(nO=nO)
    scorer = chain(encoder, with_array(output))
    decoder_layer = TagDecoderLayer(decoder, focal_gamma, label_smoothing, label_weights)
    model = Model(
        "medner_entity_tagger",
        _tagger_forward,
        init=_tagger_init,
        layers=[scorer, decoder_layer],
        dims={"nO": nO},
    )
    model.set_ref("encoder", encoder)
    model.set_ref("output", output)
    model.set_ref("decoder", decoder_layer)
    return model


def _tagger_forward(model: Model, docs, is_train: bool):
    return model.layers[0](docs, is_train)


def _tagger_init(model: Model, X=None, Y=None) -> None:
    n_tags = model.get_ref("decoder").get_dim("nO")
    model.get_ref("output").set_dim("nO", n_tags, force=True)
    model.set_dim("nO", n_tags, force=True)
    model.layers[0].initialize(X=X)
    model.get_ref("decoder").initialize()


def TagDecoderLayer(kind: str, focal_gamma: float = 0.0, label_smoothing: float = 0.0, label_weights: Optional[Dict[str, float]] = None) -> Model:
    if label_weights and kind != "softmax":
        raise ValueError('[spacy_medner] Option \'label_weights\' needs decoder = "softmax".')
    return LazyTorchLayer(
        f"medner_{kind}_decoder",
        TagDecoder(kind, focal_gamma, label_smoothing),
        forward=_decoder_forward,
        init=_decoder_init,
        dims={"nO": None},
        attrs={"tag_names": [], "scheme": None, "label_weights": dict(label_weights or {})},
    )


def set_tag_scheme(decoder: Model, names: Sequence[str], scheme: str) -> None:
    decoder.attrs["tag_names"] = list(names)
    decoder.attrs["scheme"] = scheme
    decoder.set_dim("nO", len(names), force=True)


def _decoder_init(model: Model, X=None, Y=None) -> None:
    names, scheme = model.attrs["tag_names"], model.attrs["scheme"]
    if not names:
        raise ValueError("[spacy_medner] The decoder has no tags: set_tag_scheme() must run before initialize.")
    build_torch_module(model, n_tags=len(names))
    module = torch_module(model)
    module.set_constraints(*tag_schemes.allowed_transitions(names, scheme))
    weights = model.attrs["label_weights"]
    module.set_tag_weights([weights.get(tag_schemes.split_tag(n)[1] or "O", 1.0) for n in names])


def _decoder_forward(model: Model, X, is_train: bool):
    raise NotImplementedError("The decoder is driven by decode() and decoder_loss(), not called in a chain.")


def _pad(model: Model, emissions: List[Floats2d]) -> Tuple[torch.Tensor, torch.Tensor, List[int]]:
    lengths = [len(e) for e in emissions]
    nonempty = [i for i, n in enumerate(lengths) if n]
    padded = model.ops.pad([emissions[i] for i in nonempty])
    device = model.shims[0].device
    X = xp2torch(padded, device=device)
    n = torch.tensor([lengths[i] for i in nonempty], device=device)
    mask = torch.arange(X.shape[1], device=device).unsqueeze(0) < n.unsqueeze(1)
    return X, mask, nonempty


def decode(model: Model, emissions: List[Floats2d]) -> List[Ints1d]:
    """Best legal tag ids per doc, in one batched Viterbi pass."""
    out = [model.ops.alloc1i(len(e)) for e in emissions]
    if not any(len(e) for e in emissions):
        return out
    X, mask, nonempty = _pad(model, emissions)
    module = torch_module(model)
    with torch.no_grad():
        module.eval()
        tags = torch2xp(module.decode(X, mask))
    for row, i in enumerate(nonempty):
        out[i] = tags[row, : len(emissions[i])]
    return out


def decoder_loss(
    model: Model, emissions: List[Floats2d], gold: List[numpy.ndarray]
) -> Tuple[float, List[Floats2d]]:
    """The decoder's training loss (`TagDecoder.sequence_loss`), mean per doc, and its gradient w.r.t. the
    emissions. The gradient w.r.t. the decoder's own weights (CRF
    transitions) is left on them for the next `finish_update`.

    gold: per doc, a (n_tokens, n_tags) bool array of the tags each token may
    take (all True where the annotation is missing).
    """
    d_emissions = [model.ops.alloc2f(*e.shape) for e in emissions]
    if not any(len(e) for e in emissions):
        return 0.0, d_emissions
    X, mask, nonempty = _pad(model, emissions)
    X.requires_grad_(True)
    gold_padded = numpy.zeros(tuple(X.shape), dtype=bool)
    for row, i in enumerate(nonempty):
        gold_padded[row, : len(gold[i])] = model.ops.to_numpy(gold[i])
    gold_t = torch.as_tensor(gold_padded, device=X.device)
    module = torch_module(model)
    module.train()
    loss = module.sequence_loss(X, mask, gold_t).sum() / len(emissions)
    loss.backward()
    grad = torch2xp(X.grad)
    for row, i in enumerate(nonempty):
        d_emissions[i] = model.ops.asarray2f(grad[row, : len(emissions[i])])
    return float(loss.item()), d_emissions
