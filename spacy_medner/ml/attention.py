"""Attention layers for the sequence encoder (torch).

`WindowedSelfAttention`: multi-head self-attention inside fixed windows.
Full self-attention costs O(T^2) in time and memory, so a 5,000-character
record would dominate a batch. Attending inside windows of `window` tokens
(half-overlapping, so no token sits at a hard boundary on both passes) keeps
cost linear in length. Below one window's length it is exactly full
attention. The recurrent layer below it already carries long-range context.

`AdditiveAttention`: the single-head additive (Bahdanau-style) self-attention
of the BiGRU-Att paper, windowed the same way.
"""
import torch
from torch import nn


def _windows(x: torch.Tensor, mask: torch.Tensor, window: int, offset: int):
    """Cut (B, T, D) into (B * n, window, D) chunks starting at `offset`."""
    B, T, D = x.shape
    left = offset
    n = (T + left + window - 1) // window
    right = n * window - T - left
    x = nn.functional.pad(x, (0, 0, left, right))
    mask = nn.functional.pad(mask, (left, right), value=False)
    return x.reshape(B * n, window, D), mask.reshape(B * n, window), (B, T, left)


def _unwindow(y: torch.Tensor, shape) -> torch.Tensor:
    B, T, left = shape
    return y.reshape(B, -1, y.shape[-1])[:, left : left + T]


class _Windowed(nn.Module):
    """Runs `attend(x, mask)` in windows; two half-shifted passes, averaged."""

    def __init__(self, window: int):
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        if self.window <= 0 or T <= self.window:
            return self.attend(x, mask)
        outputs = []
        for offset in (0, self.window // 2):
            xw, mw, shape = _windows(x, mask, self.window, offset)
            keep = mw.any(dim=1)  # skip all-padding windows (softmax over nothing)
            yw = xw.new_zeros(xw.shape[0], xw.shape[1], self.out_width(xw.shape[-1]))
            yw[keep] = self.attend(xw[keep], mw[keep])
            outputs.append(_unwindow(yw, shape))
        return (outputs[0] + outputs[1]) / 2

    def out_width(self, width: int) -> int:
        return width

    def attend(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class WindowedSelfAttention(_Windowed):
    """Dropout is applied by the encoder to this layer's output. Dropout on
    the (B, heads, T, T) attention weights cost a fifth of a CPU training
    step for no gain we could measure, so it is not used."""

    def __init__(self, width: int, heads: int, window: int):
        super().__init__(window)
        self.mha = nn.MultiheadAttention(width, heads, batch_first=True)

    def attend(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y, _ = self.mha(x, x, x, key_padding_mask=~mask, need_weights=False)
        return y


class AdditiveAttention(_Windowed):
    """score(i, j) = v · tanh(W_q x_i + W_k x_j); output_i = Σ_j softmax_j · x_j."""

    def __init__(self, width: int, window: int):
        super().__init__(window)
        self.query = nn.Linear(width, width, bias=False)
        self.key = nn.Linear(width, width)
        self.score = nn.Linear(width, 1, bias=False)

    def attend(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.query(x).unsqueeze(2) + self.key(x).unsqueeze(1))
        scores = self.score(hidden).squeeze(-1)  # (B, T, T)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        return scores.softmax(dim=-1) @ x
