"""Windowed attention: its fast path equals the per-window reference."""
import pytest
import torch

from spacy_medner.ml.attention import WindowedSelfAttention, _unwindow, _windows


def reference(layer: WindowedSelfAttention, x, mask):
    """The definition: full MHA inside each window, for the two half-shifted
    window grids, averaged (all-padding windows give zeros)."""
    outputs = []
    for offset in (0, layer.window // 2):
        xw, mw, shape = _windows(x, mask, layer.window, offset)
        yw = torch.zeros_like(xw)
        for i in range(xw.shape[0]):
            if mw[i].any():
                yw[i] = layer.attend(xw[i : i + 1], mw[i : i + 1])[0]
        outputs.append(_unwindow(yw, shape))
    return (outputs[0] + outputs[1]) / 2


@pytest.mark.parametrize("heads,window", [(1, 4), (4, 6), (2, 16)])
def test_windowed_attention_equals_reference(heads, window):
    torch.manual_seed(0)
    layer = WindowedSelfAttention(16, heads, window).eval()
    lengths = torch.tensor([37, 5, 20, 1])
    x = torch.randn(4, 37, 16)
    mask = torch.arange(37)[None, :] < lengths[:, None]
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
