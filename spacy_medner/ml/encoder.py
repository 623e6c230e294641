"""The sequence encoder that sits on any token encoder: an optional
bidirectional GRU/LSTM, then optional attention, each with optional residual
connection and layer norm.

`SequenceEncoderModule` is the torch module; `SequenceEncoder` wraps it for
thinc. Its input width is inferred at `initialize` from the token encoder's
output, so the same config works on a 96-wide tok2vec and a 768-wide
transformer; `lazy_torch` makes that safe to save and reload.
"""
from typing import List, Optional

import torch
from thinc.api import Model, chain, torch2xp, xp2torch
from thinc.types import ArgsKwargs, Floats2d
from torch import nn

from .attention import AdditiveAttention, WindowedSelfAttention
from .rnn import BidirectionalRNN
from .lazy_torch import LazyTorchLayer, build_torch_module, torch_module

RNN_TYPES = (None, "gru", "lstm")
ATTENTION_TYPES = (None, "mha", "additive")


def check_encoder_options(
    rnn: Optional[str], rnn_width: int, rnn_depth: int, attention: Optional[str], heads: int, window: int, dropout: float
) -> None:
    def fail(option: str, message: str):
        raise ValueError(f"[spacy_medner] Invalid SequenceEncoder option '{option}': {message}")

    if rnn not in RNN_TYPES:
        fail("rnn", f"{rnn!r}; use one of 'gru', 'lstm' or null.")
    if attention not in ATTENTION_TYPES:
        fail("attention", f"{attention!r}; use one of 'mha', 'additive' or null.")
    if rnn is not None and (rnn_width < 1 or rnn_width % 2):
        fail("rnn_width", f"{rnn_width}; it is the output width of both directions together, so it must be even and > 0.")
    if rnn is not None and rnn_depth < 1:
        fail("rnn_depth", f"{rnn_depth}; it must be >= 1.")
    if attention == "mha" and heads < 1:
        fail("attention_heads", f"{heads}; it must be >= 1.")
    if rnn is not None and attention == "mha" and heads >= 1 and rnn_width % heads:
        fail("attention_heads", f"{heads} heads do not divide rnn_width {rnn_width}, the attention input width.")
    if window < 0:
        fail("attention_window", f"{window}; use 0 for full attention or a positive window.")
    if not 0.0 <= dropout < 1.0:
        fail("dropout", f"{dropout}; it must be in [0, 1).")


class SequenceEncoderModule(nn.Module):
    def __init__(
        self,
        rnn: Optional[str],
        rnn_width: int,
        rnn_depth: int,
        attention: Optional[str],
        heads: int,
        window: int,
        residual: bool,
        layer_norm: bool,
        dropout: float,
    ):
        super().__init__()
        self.options = dict(
            rnn=rnn, rnn_width=rnn_width, rnn_depth=rnn_depth, attention=attention,
            heads=heads, window=window, residual=residual, layer_norm=layer_norm, dropout=dropout,
        )
        self.sizes: Optional[dict] = None

    def build(self, n_in: int) -> None:
        o = self.options
        self.sizes = {"n_in": n_in}
        width = n_in
        self.dropout = nn.Dropout(o["dropout"])
        self.rnn = None
        if o["rnn"] is not None:
            self.rnn = BidirectionalRNN(o["rnn"], n_in, o["rnn_width"], o["rnn_depth"], o["dropout"])
            width = o["rnn_width"]
        self.rnn_norm = nn.LayerNorm(width) if o["layer_norm"] and self.rnn is not None else None
        # A residual around the RNN needs matching widths; project if they differ.
        self.rnn_skip = None
        if o["residual"] and self.rnn is not None:
            self.rnn_skip = nn.Identity() if n_in == width else nn.Linear(n_in, width, bias=False)
        self.attention = None
        if o["attention"] == "mha":
            if width % o["heads"]:
                raise ValueError(
                    f"[spacy_medner] Invalid SequenceEncoder option 'attention_heads': {o['heads']} heads "
                    f"do not divide the attention input width {width} (rnn_width, or the token "
                    f"encoder's width when rnn is null). Choose heads that divide {width}."
                )
            self.attention = WindowedSelfAttention(width, o["heads"], o["window"])
        elif o["attention"] == "additive":
            self.attention = AdditiveAttention(width, o["window"])
        self.attention_norm = nn.LayerNorm(width) if o["layer_norm"] and self.attention is not None else None
        self.n_out = width

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = torch.arange(X.shape[1], device=X.device).unsqueeze(0) < lengths.to(X.device).unsqueeze(1)
        H = self.dropout(X)
        if self.rnn is not None:
            out = self.rnn(H, lengths)
            if self.rnn_skip is not None:
                out = out + self.rnn_skip(H)
            H = self.rnn_norm(out) if self.rnn_norm is not None else out
        if self.attention is not None:
            out = self.dropout(self.attention(H, mask))
            if self.options["residual"]:
                out = out + H
            H = self.attention_norm(out) if self.attention_norm is not None else out
        return H.masked_fill(~mask.unsqueeze(2), 0.0)


def SequenceEncoder(
    tok2vec: Model[List, List[Floats2d]],
    rnn: Optional[str],
    rnn_width: int,
    rnn_depth: int,
    attention: Optional[str],
    attention_heads: int,
    attention_window: int,
    residual: bool,
    layer_norm: bool,
    dropout: float,
) -> Model[List, List[Floats2d]]:
    check_encoder_options(rnn, rnn_width, rnn_depth, attention, attention_heads, attention_window, dropout)
    module = SequenceEncoderModule(
        rnn, rnn_width, rnn_depth, attention, attention_heads, attention_window, residual, layer_norm, dropout
    )
    layer = LazyTorchLayer(
        "medner_sequence_encoder", module, _forward, init=_init, dims={"nI": None, "nO": None}
    )
    if rnn is not None:
        layer.set_dim("nO", rnn_width)
    if tok2vec.has_dim("nO") and tok2vec.get_dim("nO") is not None:
        layer.set_dim("nI", tok2vec.get_dim("nO"))
        if rnn is None:
            layer.set_dim("nO", tok2vec.get_dim("nO"))
    model = chain(tok2vec, layer)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("sequence_encoder", layer)
    return model


def _init(model: Model, X: Optional[List[Floats2d]] = None, Y=None) -> None:
    if X is not None and len(X):
        model.set_dim("nI", X[0].shape[1], force=True)
    if not model.has_dim("nI") or model.get_dim("nI") is None:
        raise ValueError("[spacy_medner] SequenceEncoder needs sample data or a token encoder with a known nO.")
    build_torch_module(model, n_in=model.get_dim("nI"))
    model.set_dim("nO", torch_module(model).n_out, force=True)


def _forward(model: Model, Xs: List[Floats2d], is_train: bool):
    ops = model.ops
    nO = model.get_dim("nO")
    lengths = [len(x) for x in Xs]
    nonempty = [i for i, n in enumerate(lengths) if n > 0]
    if not nonempty:
        return [ops.alloc2f(0, nO) for _ in Xs], lambda dYs: [ops.alloc2f(0, x.shape[1]) for x in Xs]
    if not is_train:
        Ys = [ops.alloc2f(0, nO) for _ in Xs]
        for group in length_buckets([lengths[i] for i in nonempty]):
            indices = [nonempty[j] for j in group]
            Y_torch = _run_module(model, ops.pad([Xs[i] for i in indices]), [lengths[i] for i in indices], False)[0]
            for i, y in zip(indices, ops.unpad(torch2xp(Y_torch), [lengths[i] for i in indices])):
                Ys[i] = y
        return Ys, lambda dYs: [ops.alloc2f(0, x.shape[1]) for x in Xs]
    # Training batches are segments of similar length, and one call keeps one dropout stream.
    Y_torch, torch_backprop = _run_module(model, ops.pad([Xs[i] for i in nonempty]), [lengths[i] for i in nonempty], True)
    Y_nonempty = ops.unpad(torch2xp(Y_torch), [lengths[i] for i in nonempty])
    Ys = [ops.alloc2f(0, nO) for _ in Xs]
    for i, y in zip(nonempty, Y_nonempty):
        Ys[i] = y

    def backprop(dYs: List[Floats2d]) -> List[Floats2d]:
        dY_torch = xp2torch(ops.pad([dYs[i] for i in nonempty]))
        dX_args = torch_backprop(ArgsKwargs(args=(Y_torch,), kwargs={"grad_tensors": dY_torch}))
        dX_nonempty = ops.unpad(torch2xp(dX_args.args[0]), [lengths[i] for i in nonempty])
        dXs = [ops.alloc2f(0, x.shape[1]) for x in Xs]
        for i, dx in zip(nonempty, dX_nonempty):
            dXs[i] = dx
        return dXs

    return Ys, backprop


def _run_module(model: Model, padded, lengths: List[int], is_train: bool):
    X_torch = xp2torch(padded, requires_grad=is_train)
    lengths_torch = torch.tensor(lengths, dtype=torch.long)
    return model.shims[0](ArgsKwargs(args=(X_torch, lengths_torch), kwargs={}), is_train)


def length_buckets(lengths: List[int], min_fill: float = 0.75) -> List[List[int]]:
    """Indices grouped so that, padded to its longest member, each group is at
    least `min_fill` real tokens per row. Predicting a batch of clinical
    records (100 to 5,000 characters) padded to its longest record spends most
    of the RNN and attention time on padding; per-sequence results do not
    depend on the grouping."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: List[List[int]] = []
    for i in order:
        if groups and lengths[i] >= min_fill * lengths[groups[-1][0]]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups
