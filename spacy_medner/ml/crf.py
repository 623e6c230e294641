"""The torch side of the tag decoders: a constrained linear-chain CRF and a
constrained softmax ("FC") head, in one module.

Both share one loss for full *and* partial annotation. `gold` is a (B, T, K)
bool mask of the tags each token may take: one tag for an annotated token, all
tags for a token whose annotation is missing. The loss is
-log P(any path consistent with gold), so a missing token is marginalised over
instead of being read as "O". For the CRF that is two runs of the forward
algorithm (`log_partition`), over the full lattice and over the
gold-consistent one, stacked into one batch.

The tag scheme's illegal moves (O→I-X, B-X→I-Y, ...) are fixed masks stored as
buffers. In the CRF they are applied to pytorch-crf's transition parameters
through `torch.nn.utils.parametrize`, so training (the partition function) and
decoding both only ever see legal paths, and the forbidden entries receive no
gradient. pytorch-crf holds the transition parameters; its own decoder returns
Python lists and its likelihood needs a complete gold path, so the forward
algorithm and the batched Viterbi are our own.

The thinc layer around this module is `spacy_medner.ml.decoder.TagDecoder`;
it calls `forward(..., mode=...)` through its shim.
"""
from typing import Optional, Tuple

import numpy
import torch
from torch import nn
from torch.nn.utils import parametrize
from torchcrf import CRF

from .viterbi import viterbi_decode

# Finite stand-in for -inf in the forward algorithm: a real -inf turns the
# gradient of an all-forbidden logsumexp into NaN.
FORBIDDEN = -1.0e4
KINDS = ("crf", "softmax")
MODES = ("loss", "decode", "entity_log_probs", "tag_marginals")


class _Constrain(nn.Module):
    def __init__(self, allowed: torch.Tensor):
        super().__init__()
        # The decoder's own buffer, shared: saved once, under the decoder.
        self.register_buffer("allowed", allowed, persistent=False)

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        return weights.masked_fill(~self.allowed, FORBIDDEN)


def log_partition(
    scores: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, transitions: torch.Tensor, end: torch.Tensor
) -> torch.Tensor:
    """log Σ over all paths of exp(path score), per sequence: the forward
    algorithm, batch-first. scores (B, T, K); mask (B, T), a non-empty prefix
    of True per row; start/end (K,); transitions (K, K) from→to."""
    alpha = start + scores[:, 0]
    for t in range(1, scores.shape[1]):
        step = torch.logsumexp(alpha.unsqueeze(2) + transitions + scores[:, t].unsqueeze(1), dim=1)
        alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
    return torch.logsumexp(alpha + end, dim=1)


def forward_backward(
    scores: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, transitions: torch.Tensor, end: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """alpha (B, T, K): log-sum of path scores up to and including token t
    with tag k; beta (B, T, K): log-sum of the scores of the rest of the path
    after token t given tag k (`end` at each row's last token); log Z (B,).
    So alpha + beta - log Z is the log marginal of tag k at token t. Values
    on padding are meaningless (possibly NaN).

    The scaled forward-backward algorithm (Rabiner 1989): each step is a
    (B, K) × (K, K) matrix product in probability space, renormalised, with
    the log of the scale kept aside; in float64, so that forbidden moves
    (exp(-inf) = 0) and long documents cost no precision. Several times
    faster on CPU than a logsumexp over (B, K, K) per step. No gradients
    flow through it: it serves prediction only (training uses
    `log_partition`).

    On CPU a step costs its number of torch calls, so a step makes four: no
    masking inside the loops. The forward pass runs past each row's end and
    what it computes there is never read (the scales there are zeroed after
    the loop, and log Z takes each row's alpha at its own last token). The
    backward pass runs over each row reversed within its length, so every
    row restarts at step 0 instead of at its own last token.
    """
    B, T, K = scores.shape
    scores, start, transitions, end = (x.to(torch.float64) for x in (scores, start, transitions, end))
    lengths = mask.sum(dim=1)
    rows = torch.arange(B, device=scores.device)
    shift = scores.max(dim=2, keepdim=True).values  # (B, T, 1), keeps exp() in range
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    emit = (scores - shift).exp()
    moves, final = transitions.exp(), end.exp()
    valid = mask.unsqueeze(2)  # (B, T, 1)

    alphas, scales = [], []
    a = start.exp() * emit[:, 0]
    for t in range(T):
        if t:
            a = (a @ moves) * emit[:, t]
        scale = a.sum(dim=1, keepdim=True)
        a = a / scale
        alphas.append(a)
        scales.append(scale)
    log_scales = torch.where(valid, torch.stack(scales, dim=1).log() + shift, 0.0)
    alpha = torch.stack(alphas, dim=1)
    log_alpha = alpha.log() + torch.cumsum(log_scales, dim=1)
    last = (lengths - 1).clamp_min(0)
    log_z = (alpha[rows, last] * final).sum(dim=1).log() + log_scales.sum(dim=(1, 2))

    # Backward, on rows reversed within their lengths: b_0 = end (normalised), and
    # b_u = moves @ (emit_{u-1} * b_{u-1}), u counting tokens back from each row's end.
    steps = torch.arange(T, device=scores.device).unsqueeze(0)
    index = torch.where(steps < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - steps, steps)  # (B, T), its own inverse
    emit_back = emit.gather(1, index.unsqueeze(2).expand(-1, -1, K))
    shift_back = shift.gather(1, index.unsqueeze(2))
    b = (final / final.sum()).expand(B, K)
    betas, beta_scales = [b], [final.sum().expand(B, 1)]
    for u in range(1, T):
        b = (emit_back[:, u - 1] * b) @ moves.T
        scale = b.sum(dim=1, keepdim=True)
        b = b / scale
        betas.append(b)
        beta_scales.append(scale)
    # Step u's scale came from token u - 1 (counted back), so it carries that token's shift.
    shift_of_scale = torch.cat([torch.zeros_like(shift_back[:, :1]), shift_back[:, :-1]], dim=1)
    log_beta_scales = torch.where(valid, torch.stack(beta_scales, dim=1).log() + shift_of_scale, 0.0)
    suffix = torch.cumsum(log_beta_scales, dim=1).gather(1, index.unsqueeze(2))
    beta = torch.stack(betas, dim=1).gather(1, index.unsqueeze(2).expand(-1, -1, K))
    log_beta = beta.log() + suffix
    return log_alpha, log_beta, log_z


class TagDecoderModule(nn.Module):
    """Decoder over emissions (B, T, K). `kind` is "crf" or "softmax".

    Built lazily by `build(n_tags)`: the tag set is only known once the
    component has seen its labels. `sizes` records what it was built with, so
    that a saved decoder can be rebuilt before its weights are loaded.
    """

    def __init__(self, kind: str = "crf", focal_gamma: float = 0.0, label_smoothing: float = 0.0):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"[spacy_medner] Unknown decoder {kind!r} (option 'decoder'). Use 'crf' or 'softmax'.")
        for option, value in (("focal_gamma", focal_gamma), ("label_smoothing", label_smoothing)):
            if value and kind != "softmax":
                raise ValueError(f"[spacy_medner] Option '{option}' needs decoder = \"softmax\": a CRF scores whole sequences.")
        if focal_gamma < 0:
            raise ValueError(f"[spacy_medner] Option 'focal_gamma' must be >= 0, got {focal_gamma}.")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"[spacy_medner] Option 'label_smoothing' must be in [0, 1), got {label_smoothing}.")
        self.kind = kind
        self.focal_gamma = focal_gamma
        self.label_smoothing = label_smoothing
        self.sizes: Optional[dict] = None

    def build(self, n_tags: int) -> None:
        self.sizes = {"n_tags": n_tags}
        ones = torch.ones(n_tags, dtype=torch.bool)
        self.register_buffer("allowed_start", ones.clone())
        self.register_buffer("allowed_transitions", torch.ones(n_tags, n_tags, dtype=torch.bool))
        self.register_buffer("allowed_end", ones.clone())
        # Per-tag loss weights (focal loss's alpha), from per-label weights.
        self.register_buffer("tag_weights", torch.ones(n_tags))
        if self.kind == "crf":
            self.crf = CRF(n_tags, batch_first=True)
            constraints = {
                "start_transitions": self.allowed_start,
                "transitions": self.allowed_transitions,
                "end_transitions": self.allowed_end,
            }
            for name, allowed in constraints.items():
                parametrize.register_parametrization(self.crf, name, _Constrain(allowed))

    def set_moves(self, start: numpy.ndarray, transitions: numpy.ndarray, end: numpy.ndarray) -> None:
        for buf, value in (
            (self.allowed_start, start),
            (self.allowed_transitions, transitions),
            (self.allowed_end, end),
        ):
            buf.copy_(torch.as_tensor(value, dtype=torch.bool))

    def set_tag_weights(self, weights: numpy.ndarray) -> None:
        self.tag_weights.copy_(torch.as_tensor(weights, dtype=torch.float))

    def forward(
        self,
        emissions: torch.Tensor,
        mask: torch.Tensor,
        gold: Optional[torch.Tensor] = None,
        mode: str = "loss",
        entities: Optional[Tuple[torch.Tensor, ...]] = None,
        temperature: float = 1.0,
    ):
        """One entry point for the thinc shim. `mode`: "loss" → per-sequence
        loss (B,) (needs `gold`); "decode" → best legal tag ids (B, T);
        "entity_log_probs" → (E,) log probabilities of `entities` (see
        `entity_log_probs`); "tag_marginals" → (B, T, K) tag probabilities."""
        # Potentials in float32 whatever autocast chose for the encoder.
        emissions = emissions.float()
        if mode == "loss":
            return self.sequence_loss(emissions, mask, gold)
        if mode == "decode":
            return self.decode(emissions, mask)
        if mode == "entity_log_probs":
            return self.entity_log_probs(emissions, mask, *entities, temperature=temperature)
        if mode == "tag_marginals":
            alpha, beta, log_z = forward_backward(*self.lattice(emissions, mask, temperature))
            return (alpha + beta - log_z[:, None, None]).exp().masked_fill(~mask.unsqueeze(2), 0.0)
        raise ValueError(f"[spacy_medner] Unknown decoder mode {mode!r}; use one of {MODES}.")

    def lattice(self, emissions: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0):
        """(scores, mask, start, transitions, end) of the distribution whose
        marginals the scores report, at `temperature`.

        CRF: every potential (emissions and transitions) divided by the
        temperature, which leaves the Viterbi path unchanged. Softmax: each
        token's log-probabilities at that temperature with free moves, so
        that marginals are the per-token probabilities and a span's
        probability is the product of its tokens' (the head treats tokens as
        independent; its decoder's legality constraints are not part of it).
        """
        if self.kind == "crf":
            start, transitions, end = (m / temperature for m in self.constrained_moves())
            return emissions / temperature, mask, start, transitions, end
        K = emissions.shape[-1]
        zeros = emissions.new_zeros(K)
        return (emissions / temperature).log_softmax(dim=-1), mask, zeros, emissions.new_zeros(K, K), zeros

    def entity_log_probs(
        self,
        emissions: torch.Tensor,
        mask: torch.Tensor,
        rows: torch.Tensor,
        starts: torch.Tensor,
        pattern: torch.Tensor,
        pattern_mask: torch.Tensor,
        stop: torch.Tensor,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """log P(the tag sequence has exactly this entity), for E entities at
        once: the sum over all legal paths whose tags on the span are the
        entity's `pattern` (e.g. B I I E) and, after it, a tag in `stop` (one
        that does not continue the entity; all tags when its last tag closes it).

        rows, starts (E,): the sequence and first token; pattern (E, L) tag
        ids with pattern_mask (E, L) marking each entity's length; stop (E, K).
        Computed from one forward-backward pass: alpha at the first tag, the
        path inside the span, and what may follow it.
        """
        scores, mask, start, transitions, end = self.lattice(emissions, mask, temperature)
        alpha, beta, log_z = forward_backward(scores, mask, start, transitions, end)
        lengths = pattern_mask.sum(dim=1)
        positions = (starts.unsqueeze(1) + torch.arange(pattern.shape[1], device=pattern.device)).clamp_max(scores.shape[1] - 1)
        inside = scores[rows.unsqueeze(1), positions, pattern]  # (E, L)
        moves = transitions[pattern[:, :-1], pattern[:, 1:]]  # (E, L - 1)
        path = (inside[:, 1:] + moves).masked_fill(~pattern_mask[:, 1:], 0.0).sum(dim=1)
        head = alpha[rows, starts, pattern[:, 0]]
        last_pos = starts + lengths - 1
        last_tag = pattern.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        after = (last_pos + 1).clamp_max(scores.shape[1] - 1)
        follow = transitions[last_tag] + scores[rows, after] + beta[rows, after]  # (E, K)
        tail = torch.logsumexp(follow.masked_fill(~stop, float("-inf")), dim=1)
        at_end = ~mask[rows, after] | (last_pos + 1 >= scores.shape[1])
        tail = torch.where(at_end, end[last_tag], tail)
        return head + path + tail - log_z[rows]

    def scores(self, emissions: torch.Tensor) -> torch.Tensor:
        if self.kind == "softmax":
            return emissions.log_softmax(dim=-1)
        return emissions

    def constrained_moves(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(start, transitions, end) with illegal moves at -inf, for decoding.
        The softmax head's legal moves all score 0."""
        if self.kind == "crf":
            weights = (self.crf.start_transitions, self.crf.transitions, self.crf.end_transitions)
        else:
            weights = tuple(
                a.new_zeros(a.shape, dtype=torch.float)
                for a in (self.allowed_start, self.allowed_transitions, self.allowed_end)
            )
        allowed = (self.allowed_start, self.allowed_transitions, self.allowed_end)
        return tuple(w.masked_fill(~a, float("-inf")) for w, a in zip(weights, allowed))

    def log_likelihood(self, emissions: torch.Tensor, mask: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        """Per-sequence log P(gold-consistent paths), shape (B,)."""
        scores = self.scores(emissions)
        if self.kind == "softmax":
            # Independent tokens: log of the probability mass on allowed tags.
            token_ll = scores.masked_fill(~gold, float("-inf")).logsumexp(dim=-1)
            return token_ll.masked_fill(~mask, 0.0).sum(dim=1)
        # The full lattice and the gold-consistent one (forbidden tags pushed
        # to FORBIDDEN), stacked: half the per-time-step autograd nodes.
        both = torch.cat([scores, scores.masked_fill(~gold, FORBIDDEN)], dim=0)
        moves = (self.crf.start_transitions, self.crf.transitions, self.crf.end_transitions)
        log_z, log_gold = log_partition(both, torch.cat([mask, mask], dim=0), *moves).chunk(2)
        return log_gold - log_z

    def sequence_loss(self, emissions: torch.Tensor, mask: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        """Per-sequence training loss, shape (B,). For the CRF, the negative
        log-likelihood. For the softmax, per token

            -alpha_y * (1 - p)^gamma * [(1 - eps) * log p + eps * mean_k log p_k]

        with p the probability of the gold-consistent tags (focal loss, Lin et
        al. 2017; label smoothing eps). A token with missing annotation has
        p = 1 and costs nothing; smoothing and alpha apply to annotated tokens.
        """
        if self.kind == "crf":
            return -self.log_likelihood(emissions, mask, gold)
        log_probs = self.scores(emissions)
        log_p = log_probs.masked_fill(~gold, float("-inf")).logsumexp(dim=-1)
        annotated = gold.sum(dim=-1) == 1
        loss = -log_p
        if self.label_smoothing:
            uniform = -log_probs.mean(dim=-1)
            loss = torch.where(annotated, (1 - self.label_smoothing) * loss + self.label_smoothing * uniform, loss)
        if self.focal_gamma:
            loss = (1 - log_p.exp()).clamp_min(0).pow(self.focal_gamma) * loss
        alpha = torch.where(annotated, (gold.float() * self.tag_weights).sum(dim=-1), torch.ones_like(loss))
        return (alpha * loss).masked_fill(~mask, 0.0).sum(dim=1)

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, transitions, end = self.constrained_moves()
        tags, _ = viterbi_decode(self.scores(emissions), mask, start, transitions, end)
        return tags
