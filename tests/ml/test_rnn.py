import torch

from spacy_medner.ml.rnn import BidirectionalRNN


def test_padding_never_reaches_real_positions():
    """Each row of a padded batch gives exactly what it gives alone."""
    torch.manual_seed(0)
    for kind in ("gru", "lstm"):
        rnn = BidirectionalRNN(kind, 6, 8, depth=2, dropout=0.0).eval()
        lengths = torch.tensor([5, 2, 3])
        X = torch.randn(3, 5, 6)
        batched = rnn(X, lengths)
        for row, n in enumerate(lengths.tolist()):
            alone = rnn(X[row : row + 1, :n], torch.tensor([n]))
            torch.testing.assert_close(batched[row, :n], alone[0], rtol=1e-5, atol=1e-5)


def test_backward_direction_reads_right_to_left():
    torch.manual_seed(0)
    rnn = BidirectionalRNN("gru", 4, 6, depth=1, dropout=0.0).eval()
    X = torch.randn(1, 5, 4)
    out = rnn(X, torch.tensor([5]))
    changed = X.clone()
    changed[0, 4] += 1.0  # only the last token changes
    out2 = rnn(changed, torch.tensor([5]))
    # Forward half: positions before the change are unaffected; backward half: all are.
    assert torch.allclose(out[0, :4, :3], out2[0, :4, :3])
    assert not torch.allclose(out[0, 0, 3:], out2[0, 0, 3:])


def test_concurrent_directions_equal_sequential():
    """With two threads, prediction runs the directions at the same time (one
    on a helper thread); the output is bit-identical to running them one
    after the other, and training keeps the sequential path."""
    from spacy_medner import threads as medner_threads

    torch.manual_seed(0)
    rnn = BidirectionalRNN("gru", 6, 8, depth=2, dropout=0.0).eval()
    X, lengths = torch.randn(3, 7, 6), torch.tensor([7, 4, 2])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.no_grad():
            sequential = rnn(X, lengths)
        torch.set_num_threads(2)
        medner_threads._helper = None
        with torch.no_grad():
            concurrent = rnn(X, lengths)
        assert medner_threads._helper is not None, "the helper thread was not used"
        assert torch.equal(sequential, concurrent)
        # Under autograd the helper thread is not used: the graph must be built on one thread.
        medner_threads._helper = None
        trained = rnn(X.requires_grad_(), lengths)
        assert medner_threads._helper is None and trained.requires_grad
        torch.testing.assert_close(trained.detach(), sequential)
    finally:
        torch.set_num_threads(threads)
