"""Batched Viterbi decoding in torch.

One loop over time steps, vectorised over the batch and the tag set: there is
no Python work per document or per token. Padded steps carry the best tag
through unchanged, so the backtrace needs no per-document lengths.
"""
from typing import Tuple

import torch


def viterbi_decode(
    emissions: torch.Tensor,
    mask: torch.Tensor,
    start: torch.Tensor,
    transitions: torch.Tensor,
    end: torch.Tensor,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Best tag path for each sequence.

    emissions: (B, T, K) scores; mask: (B, T) bool, a prefix of True per row
    (rows may be all False); start/end: (K,); transitions: (K, K) from→to.
    Illegal moves should be -inf in start/transitions/end.
    Returns (tags (B, T) long, with 0 on padding; path scores (B,)).
    """
    B, T, K = emissions.shape
    if T == 0:
        return emissions.new_zeros((B, 0), dtype=torch.long), emissions.new_zeros((B,))
    score = start.unsqueeze(0) + emissions[:, 0]
    identity = torch.arange(K, device=emissions.device).expand(B, K)
    history = []
    for t in range(1, T):
        best_prev, best_idx = (score.unsqueeze(2) + transitions.unsqueeze(0)).max(dim=1)
        step = mask[:, t].unsqueeze(1)
        score = torch.where(step, best_prev + emissions[:, t], score)
        history.append(torch.where(step, best_idx, identity))
    score = score + end.unsqueeze(0)
    path_score, last = score.max(dim=1)
    tags = [last]
    for best_idx in reversed(history):
        last = best_idx.gather(1, last.unsqueeze(1)).squeeze(1)
        tags.append(last)
    tags.reverse()
    path = torch.stack(tags, dim=1)
    return path.masked_fill(~mask, 0), path_score
