"""FGM adversarial training (Miyato et al. 2017), as used by the
RoBERTa-wwm-FGM-MHA-CRF paper.

After the normal forward/backward pass each embedding table E with gradient g
is moved to E + epsilon * g / ||g||; a second forward/backward pass on the
same batch adds its gradients; then E is put back exactly (the original array
or tensor values are restored, not recomputed).

Only embeddings the component *owns* can be perturbed: thinc embedding tables
(`CharEmbed`, spaCy's `MultiHashEmbed`) and the word embeddings of an
*inline* transformer (`spacy-transformers.Tok2VecTransformer.v3`). Through a
listener the embeddings belong to an upstream component, whose forward pass
runs once per batch before ours: the second, perturbed pass cannot be made,
so FGM with a listener is refused with an error.
"""
from contextlib import contextmanager
from typing import Iterator, List, Tuple

from thinc.api import Model

TARGETS = ("auto", "char", "transformer")


def embedding_tables(model: Model, target: str) -> Tuple[List[Tuple[Model, str]], List]:
    """(thinc (node, param) pairs, torch embedding weights) that FGM perturbs.

    thinc's embedding layers (HashEmbed, Embed) keep their table as the
    parameter "E"; a spacy-transformers `TransformerModel` exposes its
    Hugging Face model as `.transformer` once it is loaded.
    """
    if target not in TARGETS:
        raise ValueError(f"[spacy_medner] Option 'fgm_embeddings' must be one of {TARGETS}, got {target!r}.")
    thinc_tables, torch_tables = [], []
    for node in model.walk():
        if target in ("auto", "char") and "E" in node.param_names and node.has_param("E"):
            thinc_tables.append((node, "E"))
        if target in ("auto", "transformer") and _is_transformer(node) and node.attrs.get("has_transformer"):
            torch_tables.append(node.transformer.get_input_embeddings().weight)
    return thinc_tables, torch_tables


def _is_transformer(node: Model) -> bool:
    try:
        from spacy_transformers.layers import TransformerModel
    except ImportError:  # spacy-transformers is a requirement, but keep FGM importable without it
        return False
    return isinstance(node, TransformerModel)


def check_fgm_target(model: Model, target: str) -> None:
    listeners = [n.name for n in model.walk() if _is_listener(n)]
    thinc_tables, torch_tables = embedding_tables(model, target)
    if listeners or not (thinc_tables or torch_tables):
        reason = (
            f"its token encoder is a listener ({listeners[0]}), whose embeddings belong to the upstream component"
            if listeners
            else f"it owns no {target!r} embedding table"
        )
        raise ValueError(
            f"[spacy_medner] FGM (fgm_epsilon > 0) cannot run: {reason}. Use an inline token encoder "
            "(spacy_medner.CharEmbed.v1, or spacy-transformers.Tok2VecTransformer.v3), or set fgm_epsilon = 0."
        )


def _is_listener(node: Model) -> bool:
    """spaCy's Tok2VecListener and spacy-transformers' TransformerListener."""
    from spacy.pipeline.tok2vec import Tok2VecListener

    try:
        from spacy_transformers.layers import TransformerListener
    except ImportError:
        TransformerListener = Tok2VecListener
    return isinstance(node, (Tok2VecListener, TransformerListener))


@contextmanager
def perturbed_embeddings(model: Model, target: str, epsilon: float) -> Iterator[int]:
    """Move each owned embedding table along its current gradient for the
    duration of the block; yields how many tables were moved."""
    import torch

    thinc_tables, torch_tables = embedding_tables(model, target)
    saved_thinc, saved_torch = [], []
    try:
        for node, name in thinc_tables:
            grad = node.get_grad(name) if node.has_grad(name) else None
            if grad is None:
                continue
            norm = float(node.ops.xp.linalg.norm(grad))
            if norm == 0.0 or not norm == norm:
                continue
            original = node.get_param(name)
            saved_thinc.append((node, name, original))
            node.set_param(name, original + (epsilon / norm) * grad)
        for weight in torch_tables:
            if weight.grad is None:
                continue
            norm = float(weight.grad.norm())
            if norm == 0.0 or not norm == norm:
                continue
            saved_torch.append((weight, weight.data.clone()))
            with torch.no_grad():
                weight.add_(weight.grad, alpha=epsilon / norm)
        yield len(saved_thinc) + len(saved_torch)
    finally:
        for node, name, original in saved_thinc:
            node.set_param(name, original)
        for weight, original in saved_torch:
            with torch.no_grad():
                weight.copy_(original)
