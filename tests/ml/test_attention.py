"""Windowed attention: its fast path equals the per-window reference."""
import pytest
import torch

from spacy_medner.ml.attention import AdditiveAttention, WindowedSelfAttention


def reference(layer, x, mask):
    """The definition, one row and one window at a time: every token attends
    to the real tokens of its window, on the grid starting at token 0 and on
    the grid shifted left by half a window; the two outputs are averaged."""
    B, T, _ = x.shape
    outputs = []
    for shift in (0, layer.window // 2):
        y = torch.zeros(B, T, layer.out_width(x.shape[-1]))
        for b in range(B):
            for start in range(-shift, T, layer.window):
                idx = [t for t in range(max(start, 0), min(start + layer.window, T)) if mask[b, t]]
                if idx:
                    window = x[b, idx][None]
                    y[b, idx] = layer.attend(window, torch.ones(1, len(idx), dtype=torch.bool))[0]
        outputs.append(y)
    return (outputs[0] + outputs[1]) / 2


# Lengths at, just under and just over multiples of the window and of half of
# it, so windows end inside, at and beyond each row (and run into the next).
@pytest.mark.parametrize("heads,window,T", [(1, 4, 37), (4, 6, 37), (2, 16, 37), (2, 7, 21), (2, 8, 12), (2, 8, 16)])
@pytest.mark.parametrize("kind", ["mha", "additive"])
def test_windowed_attention_equals_reference(kind, heads, window, T):
    torch.manual_seed(0)
    layer = (WindowedSelfAttention(16, heads, window) if kind == "mha" else AdditiveAttention(16, window)).eval()
    lengths = torch.tensor([T, 5, min(20, T), 1, T - 1, window // 2, window])
    x = torch.randn(len(lengths), T, 16)
    mask = torch.arange(T)[None, :] < lengths[:, None]
    with torch.no_grad():
        fast, slow = layer(x, mask), reference(layer, x, mask)
    for b, n in enumerate(lengths):
        torch.testing.assert_close(fast[b, :n], slow[b, :n], rtol=1e-5, atol=1e-5)
    assert torch.isfinite(fast).all()


def test_below_one_window_it_is_full_attention():
    torch.manual_seed(0)
    layer = WindowedSelfAttention(8, 2, 16).eval()
    x, mask = torch.randn(2, 10, 8), torch.ones(2, 10, dtype=torch.bool)
    expected, _ = layer.mha(x, x, x, need_weights=False)
    torch.testing.assert_close(layer(x, mask), expected)


def test_gradients_reach_every_parameter():
    layer = WindowedSelfAttention(8, 2, 4)
    x = torch.randn(2, 11, 8, requires_grad=True)
    layer(x, torch.ones(2, 11, dtype=torch.bool)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())
    assert x.grad.abs().sum() > 0


def test_length_buckets_bound_padding_and_keep_every_index():
    from spacy_medner.ml.encoder import length_buckets

    lengths = [5000, 120, 90, 4000, 3900, 100, 1, 300]
    groups = length_buckets(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:
        longest = max(lengths[i] for i in g)
        assert all(lengths[i] >= 0.75 * longest for i in g)
    assert [0, 3, 4] in groups
