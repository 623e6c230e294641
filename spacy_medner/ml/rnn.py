"""A bidirectional GRU/LSTM over padded batches, without packing.

Packing (`pack_padded_sequence`) is the usual way to keep padding out of the
backward direction, but on CPU its backward pass costs about twice the padded
one. Instead each sequence is reversed *within its own length* before the
backward-direction RNN and reversed back after, so padding always trails
both directions and never reaches a real position. Outputs at padded
positions are garbage; the caller masks them.

When predicting with two or more torch threads, the two directions run at
the same time, one on a helper thread, each with one intra-op thread: each
step of a GRU is a small matrix product that one thread handles about as
fast as two, so splitting the directions across the cores uses them better
than splitting each step (BENCHMARKS.md, "Prediction profile and speed
levers"). aten's RNN kernels release the GIL, the results
are those of running them one after the other, and training keeps the
sequential path (autograd, dropout streams).
"""
import torch
from torch import nn

from ..threads import beside, overlap_helps, overlapped


def reverse_within_lengths(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.gather(1, index.unsqueeze(2).expand(-1, -1, x.shape[2]))


def _predict(rnn: nn.Module, X: torch.Tensor):
    # Grad mode is per thread: the helper thread must not record a graph.
    with torch.no_grad():
        return rnn(X)


class BidirectionalRNN(nn.Module):
    def __init__(self, kind: str, n_in: int, width: int, depth: int, dropout: float):
        super().__init__()
        rnn_class = {"gru": nn.GRU, "lstm": nn.LSTM}[kind]
        half = width // 2
        self.forward_layers = nn.ModuleList(rnn_class(n_in if i == 0 else width, half, batch_first=True) for i in range(depth))
        self.backward_layers = nn.ModuleList(rnn_class(n_in if i == 0 else width, half, batch_first=True) for i in range(depth))
        self.dropout = nn.Dropout(dropout)

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(X.shape[1], device=X.device).unsqueeze(0)
        lengths = lengths.to(X.device).unsqueeze(1)
        index = torch.where(steps < lengths, lengths - 1 - steps, steps)
        H = X
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i > 0:
                H = self.dropout(H)
            reversed_H = reverse_within_lengths(H, index)
            if overlap_helps(H.device) and not torch.is_grad_enabled():
                with overlapped():
                    pending = beside(_predict, fwd, H)
                    out_backward, _ = bwd(reversed_H)
                    out_forward, _ = pending.result()
            else:
                out_forward, _ = fwd(H)
                out_backward, _ = bwd(reversed_H)
            H = torch.cat([out_forward, reverse_within_lengths(out_backward, index)], dim=2)
        return H
