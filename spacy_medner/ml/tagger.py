"""The entity tagger model: encoder → linear projection to tag scores →
decoder (constrained CRF or constrained softmax).

The model's forward pass returns the emissions (one (n_tokens, n_tags) array
per doc). The decoder (`TagDecoder`, ref "decoder") is a layer of the model
tree, so its weights are trained by `finish_update`, saved and loaded with
everything else; the component calls its `loss` when training and its
`decode` when predicting.

Refs: "encoder" (token encoder and sequence encoder: what `spacy pretrain`
fills), "output" (the projection), "decoder".
"""
from typing import Dict, List, Optional

from thinc.api import Linear, Model, chain, with_array
from thinc.types import Floats2d

from .decoder import TagDecoder


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
    decoder_layer = TagDecoder(decoder, focal_gamma, label_smoothing, label_weights)
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
