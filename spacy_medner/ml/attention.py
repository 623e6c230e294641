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


def _half_shifted_windows(x: torch.Tensor, mask: torch.Tensor, window: int):
    """Both window grids of (B, T, D): one starting at token 0, one shifted
    left by half a window. Returns, per grid, (windows, window_mask, unwindow):
    (N, window, D) windows, their (N, window) mask, and a function taking
    (N, window, E) back to (B, T, E).

    The grids are two views of one zero-padded buffer, so x is copied once
    instead of once per grid (that copy was a quarter of the layer's CPU
    time). Each row of the buffer is `window // 2` padding, the T tokens, then
    padding up to a multiple of `window`; the shifted grid tiles the buffer
    from its start, the aligned one from the first token of row 0. An aligned
    window at a row's end runs into the next row's leading padding (or the
    spare window at the end), which is masked, so each window still holds the
    tokens of one row only.
    """
    B, T, D = x.shape
    half = window // 2
    row = window * -(-(T + half) // window)
    n = B * row // window
    # Write each element once: the tokens, then zeros in the padding only.
    padded = x.new_empty(B * row + window, D)
    rows = padded[: B * row].view(B, row, D)
    rows[:, :half] = 0
    rows[:, half : half + T] = x
    rows[:, half + T :] = 0
    padded[B * row :] = 0
    padded_mask = mask.new_zeros(B * row + window)
    padded_mask[: B * row].view(B, row)[:, half : half + T] = mask

    def grid(start: int, first_token: int):
        def unwindow(y: torch.Tensor) -> torch.Tensor:
            return y.reshape(B, row, y.shape[-1])[:, first_token : first_token + T]

        windows = padded[start : start + B * row].view(n, window, D)
        return windows, padded_mask[start : start + B * row].view(n, window), unwindow

    return grid(half, 0), grid(0, half)


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
        for xw, mw, unwindow in _half_shifted_windows(x, mask, self.window):
            keep = mw.any(dim=1)  # skip all-padding windows (softmax over nothing)
            yw = xw.new_zeros(xw.shape[0], xw.shape[1], self.out_width(xw.shape[-1]))
            yw[keep] = self.attend(xw[keep], mw[keep])
            outputs.append(unwindow(yw))
        return (outputs[0] + outputs[1]) / 2

    def out_width(self, width: int) -> int:
        return width

    def attend(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class WindowedSelfAttention(_Windowed):
    """Dropout is applied by the encoder to this layer's output. Dropout on
    the (B, heads, T, T) attention weights cost a fifth of a CPU training
    step for no gain we could measure, so it is not used.

    Past one window, the input and output projections are applied once, not
    once per pass: the output projection is affine, so projecting the mean of
    the two passes' contexts equals the mean of their projected outputs. This
    halves the matrix products that dominate prediction time on CPU; the
    parameters are those of `nn.MultiheadAttention`, so saved models load."""

    def __init__(self, width: int, heads: int, window: int):
        super().__init__(window)
        self.mha = nn.MultiheadAttention(width, heads, batch_first=True)

    def attend(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y, _ = self.mha(x, x, x, key_padding_mask=~mask, need_weights=False)
        return y

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.window <= 0 or x.shape[1] <= self.window:
            return self.attend(x, mask)
        qkv = nn.functional.linear(x, self.mha.in_proj_weight, self.mha.in_proj_bias)
        context = None
        for qkv_w, mask_w, unwindow in _half_shifted_windows(qkv, mask, self.window):
            # A window of padding only would softmax over nothing (NaN); let it
            # attend to its padding instead: its outputs are discarded.
            mask_w = mask_w | ~mask_w.any(dim=1, keepdim=True)
            c = unwindow(self._window_context(qkv_w, mask_w))
            context = c if context is None else (context + c) / 2
        return self.mha.out_proj(context)

    def _window_context(self, qkv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        N, W, _ = qkv.shape
        heads = self.mha.num_heads
        q, k, v = (t.reshape(N, W, heads, -1).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
        c = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return c.transpose(1, 2).reshape(N, W, -1)


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
