"""The span decoder: a score for every (start, end, label) of at most
`max_length` tokens, on the encoder output. Nested and overlapping mentions
are just more spans; nothing is decoded jointly.

Scoring (`kind`):

- "global_pointer" (GlobalPointer, Su et al. 2022; the default): one linear
  layer gives each token a query and a key per label (`width` wide each),
  both rotated by rotary position encoding (RoPE), and
  score(s, e, l) = q_l(s) · k_l(e) / sqrt(width). RoPE makes the dot product
  a function of the relative offset e - s, so the head knows span length
  without a length embedding. 2 × labels × width outputs per token.
- "biaffine" (Yu et al. 2020): shared start and end projections (`width`,
  GELU) and one bilinear form per label over [h_s; 1] and [h_e; 1]:
  labels × (width + 1)² weights. Its bias terms score start-only and end-only
  evidence; it has no position information beyond what the encoder carries.

Measured on CMeEE (configs/cmeee_span.cfg, 60 training steps, seed 0, 300
docs of the held-out 20%; 2 shared CPU cores): spans_sc_f 36.2 for
global_pointer against 28.3 for biaffine, so global_pointer is the default;
the head alone predicts at about 20 us a character for global_pointer and 8
for biaffine (9 labels, width 64, 1 thread; the encoder costs about 100), so
the choice costs little speed either way. A short run, not the benchmark:
benchmarks/ carries the trained comparison.

Both add a per-label bias, which starts at the prior logit of a rare
positive (`PRIOR_LOGIT`, probability 0.01).

Both are computed on a band, one (B, T, max_length, labels) tensor of
scores [b, s, d, l] for the span s..s+d, in blocks of max_length starts
(`SpanPointerModule.scores`). No (T, T) tensor is built, so time and
memory are O(T × max_length × labels) (× width), linear in document length
for a fixed maximum, where the published heads are quadratic: a 5,000
character record would cost 25M span scores per label instead of 120k
(max_length 24).
The price is that a mention longer than `max_length` cannot be predicted at
all (the component warns how many training mentions that is).

Loss: independent sigmoid binary cross-entropy per (span, label), summed over
the candidates in the loss and divided by the number of tokens in the batch.
Why BCE rather than GlobalPointer's multilabel categorical cross-entropy
(one logsumexp over all positives against all negatives per label and doc):
that loss only ranks positives above 0 and negatives below it, so its
logits are not probabilities, while BCE's sigmoid is one directly, which
`doc.spans[key].attrs["scores"]` reports and a temperature can calibrate.
Each term depends on its own span only, so leaving a span out of the loss
(missing annotation) is a mask, not a change of normaliser. Why per token
and not a mean over candidates: a mean over the band would shrink the
weight of the rare positives with max_length × labels (on CMeEE a 24 × 9
band holds 216 candidates per token against 0.1 mentions), and the loss scale
would change with the options; per token it is comparable to the CRF's
per-token loss on a shared encoder. The imbalance itself is left to the
per-label bias, which starts at the prior; the threshold (0.5) then means
"more likely than not".

Thinc side: `SpanPointer(encoder, ...)` returns the encoder's hidden states
as its output; the head (ref "span_head") is a `LazyTorchLayer` whose input
width and label count are fixed at `initialize` and restored on load. The
component calls `span_loss` when training and `find_spans` when predicting,
as crf_ner calls its decoder's `loss` and `decode`.
"""
import math
from typing import List, Optional, Sequence, Tuple

import numpy
import torch
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats2d
from torch import nn

from .encoder import length_buckets
from .lazy_torch import LazyTorchLayer, build_torch_module, torch_module

KINDS = ("global_pointer", "biaffine")
MODES = ("scores", "loss", "decode")
# Every label's score starts at this logit (probability 0.01): nearly every
# candidate is a negative, so a head that starts at 0.5 would spend its first
# steps on a huge loss from the negatives and, evaluated early, predict every
# span of the band (T x max_length x labels of them).
PRIOR_LOGIT = math.log(0.01 / 0.99)
# Prediction scores a long doc's band this many starts at a time: the working
# set stays in cache (measured on 1 thread: 64,000 characters in one piece
# cost 62 us a character, in pieces of 512 about 19, as 1,000 characters do).
DECODE_CHUNK = 512


def check_span_options(kind: str, max_length: int, width: int) -> None:
    def fail(option: str, message: str):
        raise ValueError(f"[spacy_medner] Invalid SpanPointer option '{option}': {message}")

    if kind not in KINDS:
        fail("kind", f"{kind!r}; use one of {', '.join(repr(k) for k in KINDS)}.")
    if max_length < 1:
        fail("max_length", f"{max_length}; the longest span scored, in tokens, must be >= 1.")
    if width < 2 or (kind == "global_pointer" and width % 2):
        fail("width", f"{width}; it must be >= 2 (and even for global_pointer: rotary encoding rotates pairs).")


def rotary(x: torch.Tensor) -> torch.Tensor:
    """Rotary position encoding of (B, T, L, W) along T: the pairs (i, i +
    W/2) rotate by position × 10000^(-2i/W), so that rotary(q)_s · rotary(k)_e
    depends on s and e only through e - s."""
    T, W = x.shape[1], x.shape[-1]
    half = W // 2
    freqs = torch.pow(10000.0, -torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = torch.arange(T, device=x.device, dtype=torch.float32).unsqueeze(1) * freqs  # (T, half)
    cos = angles.cos().to(x.dtype)[None, :, None, :]
    sin = angles.sin().to(x.dtype)[None, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def band_mask(mask: torch.Tensor, max_length: int) -> torch.Tensor:
    """(B, T, max_length) bool: span (s, s + d] lies inside its doc."""
    lengths = mask.sum(dim=1)
    starts = torch.arange(mask.shape[1], device=mask.device)
    ends = starts.unsqueeze(1) + torch.arange(max_length, device=mask.device)  # last token of the span
    return ends.unsqueeze(0) < lengths[:, None, None]


class SpanPointerModule(nn.Module):
    def __init__(self, kind: str, max_length: int, width: int):
        super().__init__()
        self.options = dict(kind=kind, max_length=max_length, width=width)
        self.sizes: Optional[dict] = None

    def build(self, n_in: int, n_labels: int) -> None:
        self.sizes = {"n_in": n_in, "n_labels": n_labels}
        width = self.options["width"]
        if self.options["kind"] == "global_pointer":
            self.project = nn.Linear(n_in, n_labels * width * 2)
        else:
            self.start = nn.Sequential(nn.Linear(n_in, width), nn.GELU())
            self.end = nn.Sequential(nn.Linear(n_in, width), nn.GELU())
            self.bilinear = nn.Parameter(torch.empty(n_labels, width + 1, width + 1))
            nn.init.xavier_uniform_(self.bilinear)
        self.bias = nn.Parameter(torch.full((n_labels,), PRIOR_LOGIT))

    @property
    def max_length(self) -> int:
        return self.options["max_length"]

    def starts_and_ends(self, X: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, T, L, W') start and (B, T, L or 1, W') end vectors whose dot
        product over the last axis, plus the label's bias, is the span score
        (biaffine's end vectors are shared by all labels)."""
        B, T, _ = X.shape
        L, width = self.sizes["n_labels"], self.options["width"]
        if self.options["kind"] == "global_pointer":
            qk = self.project(X).view(B, T, L, 2, width)
            scale = 1.0 / math.sqrt(width)
            return rotary(qk[:, :, :, 0]) * scale, rotary(qk[:, :, :, 1])
        ones = X.new_ones((B, T, 1))
        start = torch.cat([self.start(X), ones], dim=-1)  # (B, T, W + 1)
        end = torch.cat([self.end(X), ones], dim=-1)
        # Each start vector through every label's bilinear form: (B, T, L, W + 1).
        return torch.einsum("btv,lvu->btlu", start, self.bilinear), end.unsqueeze(2)

    def scores(self, X: torch.Tensor) -> torch.Tensor:
        """(B, T, max_length, L) logits: [b, s, d, l] scores tokens s..s+d
        (inclusive) as label l. Entries past a doc's end are meaningless
        (see `band_mask`).

        Computed in blocks of M = max_length starts: block i's starts can
        only end in blocks i and i + 1, so one (M, W) x (W, 2M) matrix
        product per block and label gives every score the band needs (and as
        many it does not), and a gather keeps the band. Twice the band's
        work, but as dense matrix products, several times faster on CPU than
        a loop over the M offsets; memory stays O(T x M x L)."""
        starts, ends = self.starts_and_ends(X)
        B, T, L, W = starts.shape
        M = self.max_length
        n_blocks = -(-T // M)
        pad = n_blocks * M - T
        starts = nn.functional.pad(starts, (0, 0, 0, 0, 0, pad))
        ends = nn.functional.pad(ends, (0, 0, 0, 0, 0, pad + M))
        q = starts.view(B, n_blocks, M, L, W).permute(0, 1, 3, 2, 4)  # (B, n, L, M, W)
        k_blocks = ends.view(B, n_blocks + 1, M, ends.shape[2], W)
        k = torch.cat([k_blocks[:, :-1], k_blocks[:, 1:]], dim=2).permute(0, 1, 3, 4, 2)  # (B, n, L or 1, W, 2M)
        pairs = torch.matmul(q, k)  # (B, n, L, M starts, 2M ends)
        offsets = torch.arange(M, device=X.device)
        index = (offsets.unsqueeze(1) + offsets.unsqueeze(0)).expand(B, n_blocks, L, M, M)
        band = pairs.gather(-1, index)  # [.., s, d]: start s, end s + d
        band = band.permute(0, 1, 3, 4, 2).reshape(B, n_blocks * M, M, L)[:, :T]
        return band + self.bias

    def forward(
        self,
        X: torch.Tensor,
        mask: torch.Tensor,
        mode: str = "scores",
        target: Optional[torch.Tensor] = None,
        keep: Optional[torch.Tensor] = None,
        threshold: float = 0.5,
    ):
        """mode "scores": the logits. "loss": the summed BCE over the band
        entries that are inside their doc and where `keep` (B, T, M, L) is
        True, against `target` (B, T, M, L) (the caller divides by the
        batch's tokens).
        "decode": (N, 4) [doc row, start, offset, label] and (N,)
        probabilities of the spans scoring >= threshold."""
        if mode not in MODES:
            raise ValueError(f"[spacy_medner] Unknown SpanPointerModule mode {mode!r}; use one of {MODES}.")
        if mode == "decode":
            return self.decode(X, mask, threshold)
        logits = self.scores(X)
        if mode == "scores":
            return logits
        valid = band_mask(mask, self.max_length).unsqueeze(3).expand_as(logits)
        weight = (valid & keep).to(logits.dtype)
        terms = nn.functional.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="none")
        return (terms * weight).sum()

    def decode(self, X: torch.Tensor, mask: torch.Tensor, threshold: float, chunk: int = DECODE_CHUNK):
        """The spans scoring >= threshold, DECODE_CHUNK starts at a time (each
        piece with the max_length - 1 tokens after it, where its spans end).
        Scores depend on positions only through e - s, so a piece scores as
        the whole doc does, up to float rounding."""
        M = self.max_length
        valid = band_mask(mask, M)
        found, probs = [], []
        for first in range(0, X.shape[1], chunk):
            p = torch.sigmoid(self.scores(X[:, first : first + chunk + M - 1])[:, :chunk].float())
            hit = valid[:, first : first + chunk].unsqueeze(3) & (p >= threshold)
            where = hit.nonzero()
            where[:, 1] += first
            found.append(where)
            probs.append(p[hit])
        return torch.cat(found), torch.cat(probs)


def SpanPointer(
    encoder: Model[List, List[Floats2d]],
    kind: str = "global_pointer",
    max_length: int = 16,
    width: int = 64,
    nO: Optional[int] = None,
) -> Model[List, List[Floats2d]]:
    check_span_options(kind, max_length, width)
    head = LazyTorchLayer(
        "medner_span_head", SpanPointerModule(kind, max_length, width), _head_forward, init=_head_init,
        dims={"nI": None, "nO": nO}, attrs={"max_length": max_length},
    )
    model = Model(
        "medner_span_pointer", _forward, init=_init, layers=[encoder, head], dims={"nO": nO},
        attrs={"max_length": max_length},
    )
    model.set_ref("encoder", encoder)
    model.set_ref("span_head", head)
    return model


def _forward(model: Model, docs, is_train: bool):
    return model.layers[0](docs, is_train)


def _init(model: Model, X=None, Y=None) -> None:
    encoder, head = model.layers
    if not model.has_dim("nO") or model.get_dim("nO") is None:
        raise ValueError("[spacy_medner] SpanPointer has no labels: the component sets nO before initialize.")
    encoder.initialize(X=X)
    n_in = encoder.get_dim("nO") if encoder.has_dim("nO") else None
    if not n_in:
        if not X:
            raise ValueError("[spacy_medner] SpanPointer needs sample docs to infer its input width.")
        n_in = encoder.predict(X)[0].shape[1]
    head.set_dim("nO", model.get_dim("nO"), force=True)
    head.set_dim("nI", n_in, force=True)
    head.initialize()


def _head_init(model: Model, X=None, Y=None) -> None:
    build_torch_module(model, n_in=model.get_dim("nI"), n_labels=model.get_dim("nO"))


def _head_forward(model: Model, X, is_train: bool):
    raise NotImplementedError("[spacy_medner] The span head is called through span_loss / find_spans / span_probabilities.")


def _pad(head: Model, hidden: List[Floats2d], rows: List[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    device = head.shims[0].device
    X = xp2torch(head.ops.pad([hidden[i] for i in rows]), device=device)
    lengths = torch.tensor([len(hidden[i]) for i in rows], device=device)
    mask = torch.arange(X.shape[1], device=device).unsqueeze(0) < lengths.unsqueeze(1)
    return X, mask


def _groups(hidden: List[Floats2d]) -> List[List[int]]:
    """Non-empty docs grouped by similar length (padding costs as much as text)."""
    nonempty = [i for i, h in enumerate(hidden) if len(h)]
    return [[nonempty[j] for j in group] for group in length_buckets([len(hidden[i]) for i in nonempty])]


def span_loss(
    head: Model, hidden: List[Floats2d], targets: Sequence[numpy.ndarray], keeps: Sequence[numpy.ndarray]
) -> Tuple[float, List[Floats2d]]:
    """The loss of a batch and its gradient with respect to the hidden states.
    targets / keeps: per doc, (T, max_length, labels) arrays: 1 for a gold
    (span, label), and whether the entry is in the loss. The head's own
    weights get their gradients for the next `finish_update`."""
    d_hidden = [head.ops.alloc2f(*h.shape) for h in hidden]
    rows = [i for i, h in enumerate(hidden) if len(h)]
    if not rows:
        return 0.0, d_hidden
    n_tokens = sum(len(hidden[i]) for i in rows)
    total = 0.0
    # Docs of similar length together: a batch padded to its longest doc
    # would score (and backpropagate) mostly padding.
    for group in _groups(hidden):
        X, mask = _pad(head, hidden, group)
        shape = tuple(X.shape[:2]) + tuple(targets[group[0]].shape[1:])
        target, keep = numpy.zeros(shape, dtype="float32"), numpy.zeros(shape, dtype=bool)
        for row, i in enumerate(group):
            target[row, : len(hidden[i])] = targets[i]
            keep[row, : len(hidden[i])] = keeps[i]
        device = X.device
        X.requires_grad_(True)
        inputs = ArgsKwargs(
            args=(X, mask),
            kwargs={"mode": "loss", "target": torch.as_tensor(target, device=device), "keep": torch.as_tensor(keep, device=device)},
        )
        loss, backprop = head.shims[0](inputs, is_train=True)
        grads = backprop(ArgsKwargs(args=(loss,), kwargs={"grad_tensors": torch.full_like(loss, 1.0 / n_tokens)}))
        dX = torch2xp(grads.args[0])
        for row, i in enumerate(group):
            d_hidden[i] = head.ops.asarray2f(dX[row, : len(hidden[i])])
        total += float(loss.detach())
    return total / n_tokens, d_hidden


def find_spans(head: Model, hidden: List[Floats2d], threshold: float) -> List[Tuple[numpy.ndarray, numpy.ndarray]]:
    """Per doc: the (n, 3) [start, end, label] spans whose probability is >=
    threshold, sorted by start, end, label, and their (n,) probabilities."""
    out = [(numpy.zeros((0, 3), dtype=int), numpy.zeros(0, dtype="float32")) for _ in hidden]
    for group in _groups(hidden):
        X, mask = _pad(head, hidden, group)
        (found, probs), _ = head.shims[0](
            ArgsKwargs(args=(X, mask), kwargs={"mode": "decode", "threshold": float(threshold)}), is_train=False
        )
        found = found.cpu().numpy().astype(int)
        probs = probs.float().cpu().numpy().astype("float32")
        for row, i in enumerate(group):
            here = found[:, 0] == row
            spans = numpy.stack([found[here, 1], found[here, 1] + found[here, 2] + 1, found[here, 3]], axis=1)
            order = numpy.lexsort((spans[:, 2], spans[:, 1], spans[:, 0]))
            out[i] = (spans[order], probs[here][order])
    return out


def span_probabilities(head: Model, hidden: List[Floats2d]) -> List[numpy.ndarray]:
    """Per doc, (T, max_length, labels) probabilities of every band entry
    (entries past the doc's end are 0): for calibration and inspection."""
    M = head.attrs["max_length"]
    out = [numpy.zeros((len(h), M, head.get_dim("nO")), dtype="float32") for h in hidden]
    for group in _groups(hidden):
        X, mask = _pad(head, hidden, group)
        logits, _ = head.shims[0](ArgsKwargs(args=(X, mask), kwargs={"mode": "scores"}), is_train=False)
        probs = torch.sigmoid(logits.float()) * band_mask(mask, M).unsqueeze(3)
        probs = probs.cpu().numpy()
        for row, i in enumerate(group):
            out[i] = probs[row, : len(hidden[i])].astype("float32")
    return out


def span_module(model: Model) -> SpanPointerModule:
    """The torch module of a SpanPointer model (or of its head)."""
    head = model.get_ref("span_head") if model.has_ref("span_head") else model
    return torch_module(head)
