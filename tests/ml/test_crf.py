"""The constrained Viterbi and the CRF's partial-annotation likelihood,
checked against brute-force enumeration of every tag sequence."""
import itertools

import numpy
import pytest
import torch

from spacy_medner.ml.crf import TagDecoderModule as TagDecoder, log_partition
from spacy_medner.ml.viterbi import viterbi_decode
from spacy_medner.tags import SCHEMES, TagScheme


def is_valid(path, allowed):
    start, transitions, end = allowed
    return bool(start[path[0]] and end[path[-1]] and all(transitions[a, b] for a, b in zip(path[:-1], path[1:])))


def make_decoder(kind, scheme, labels=("A", "B"), seed=0):
    torch.manual_seed(seed)
    tag_scheme = TagScheme.from_name(scheme, labels)
    names = tag_scheme.names
    decoder = TagDecoder(kind)
    decoder.build(len(names))
    allowed = tag_scheme.allowed_moves()
    decoder.set_moves(*allowed)
    if kind == "crf":
        with torch.no_grad():  # larger, asymmetric weights than the default init
            for p in decoder.crf.parameters():
                p.normal_(0, 1.0)
    return decoder, names, allowed


def path_score(decoder, emissions, path):
    start, trans, end = decoder.constrained_moves()
    scores = decoder.scores(emissions.unsqueeze(0))[0]
    total = start[path[0]] + end[path[-1]] + sum(scores[t, k] for t, k in enumerate(path))
    return total + sum(trans[a, b] for a, b in zip(path[:-1], path[1:]))


@pytest.mark.parametrize("kind", ["crf", "softmax"])
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("seed", range(4))
def test_viterbi_equals_brute_force(kind, scheme, seed):
    decoder, names, allowed = make_decoder(kind, scheme, labels=("A",), seed=seed)
    K = len(names)
    lengths = [4, 1, 3, 0]
    emissions = torch.randn(len(lengths), 4, K) * 3
    mask = torch.arange(4).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    with torch.no_grad():
        decoded = decoder.decode(emissions, mask)
        for row, n in enumerate(lengths):
            if n == 0:
                continue
            best = max(
                (p for p in itertools.product(range(K), repeat=n) if is_valid(p, allowed)),
                key=lambda p: float(path_score(decoder, emissions[row, :n], p)),
            )
            got = tuple(decoded[row, :n].tolist())
            assert is_valid(got, allowed)
            assert float(path_score(decoder, emissions[row, :n], got)) == pytest.approx(
                float(path_score(decoder, emissions[row, :n], best)), abs=1e-4
            )
            assert decoded[row, n:].eq(0).all()


def test_viterbi_never_emits_invalid_sequences_under_adversarial_emissions():
    decoder, names, allowed = make_decoder("crf", "BIOES")
    emissions = torch.full((8, 20, len(names)), -50.0)
    # Every step prefers an I- tag, which is never legal after O or at the start.
    emissions[:, :, names.index("I-A")] = 50.0
    mask = torch.ones(8, 20, dtype=torch.bool)
    for row in decoder.decode(emissions, mask).tolist():
        assert is_valid(row, allowed)


@pytest.mark.parametrize("kind", ["crf", "softmax"])
def test_partial_likelihood_equals_brute_force(kind):
    decoder, names, allowed = make_decoder(kind, "BIO", labels=("A",), seed=3)
    K, T = len(names), 4
    emissions = torch.randn(1, T, K)
    gold = torch.ones(1, T, K, dtype=torch.bool)
    gold[0, 0] = False
    gold[0, 0, names.index("B-A")] = True  # token 0 annotated, tokens 1..3 missing
    mask = torch.ones(1, T, dtype=torch.bool)
    with torch.no_grad():
        got = float(decoder.log_likelihood(emissions, mask, gold)[0])
        paths = [p for p in itertools.product(range(K), repeat=T) if is_valid(p, allowed)]
        if kind == "softmax":
            logp = emissions[0].log_softmax(-1)
            expected = float(logp[0, names.index("B-A")])  # the missing tokens marginalise to 1
        else:
            scores = torch.stack([path_score(decoder, emissions[0], p) for p in paths])
            consistent = torch.stack([path_score(decoder, emissions[0], p) for p in paths if p[0] == names.index("B-A")])
            expected = float(consistent.logsumexp(0) - scores.logsumexp(0))
    assert got == pytest.approx(expected, abs=1e-4)


def test_fully_missing_annotation_has_zero_loss():
    decoder, names, _ = make_decoder("crf", "BIOES")
    emissions = torch.randn(2, 5, len(names))
    gold = torch.ones(2, 5, len(names), dtype=torch.bool)
    mask = torch.ones(2, 5, dtype=torch.bool)
    assert decoder.log_likelihood(emissions, mask, gold).abs().max() < 1e-4


def test_forbidden_transitions_get_no_gradient():
    decoder, names, allowed = make_decoder("crf", "BIO")
    emissions = torch.randn(2, 5, len(names))
    gold = torch.zeros(2, 5, len(names), dtype=torch.bool)
    gold[:, :, 0] = True
    loss = -decoder.log_likelihood(emissions, torch.ones(2, 5, dtype=torch.bool), gold).sum()
    loss.backward()
    grad = decoder.crf.parametrizations.transitions.original.grad
    assert grad[~torch.as_tensor(allowed[1])].abs().max() == 0
    assert grad[torch.as_tensor(allowed[1])].abs().max() > 0


def test_unknown_decoder_names_the_option():
    with pytest.raises(ValueError, match="option 'decoder'"):
        TagDecoder("mlp")


def test_viterbi_handles_long_sequences():
    K = 5
    emissions = torch.randn(1, 5000, K)
    zeros = torch.zeros(K)
    tags_out, _ = viterbi_decode(emissions, torch.ones(1, 5000, dtype=torch.bool), zeros, torch.zeros(K, K), zeros)
    # With free transitions the best path is the per-token argmax.
    assert torch.equal(tags_out[0], emissions[0].argmax(-1))
    assert numpy.asarray(tags_out).shape == (1, 5000)


def softmax_decoder(seed=0, **options):
    torch.manual_seed(seed)
    scheme = TagScheme.from_name("BIO", ("A",))
    decoder = TagDecoder("softmax", **options)
    decoder.build(len(scheme.names))
    decoder.set_moves(*scheme.allowed_moves())
    return decoder, scheme.names


def one_token_case(names, gold_tag="B-A"):
    emissions = torch.tensor([[[0.5, 2.0, -1.0], [0.1, 0.2, 0.3]]])
    gold = torch.zeros(1, 2, len(names), dtype=torch.bool)
    gold[0, 0, names.index(gold_tag)] = True
    gold[0, 1] = True  # missing
    return emissions, torch.ones(1, 2, dtype=torch.bool), gold


def test_softmax_loss_without_options_is_the_negative_log_likelihood():
    decoder, names = softmax_decoder()
    em, mask, gold = one_token_case(names)
    assert torch.allclose(decoder.sequence_loss(em, mask, gold), -decoder.log_likelihood(em, mask, gold))


def test_focal_smoothing_and_alpha_follow_the_formula():
    decoder, names = softmax_decoder(focal_gamma=2.0, label_smoothing=0.1)
    weights = numpy.ones(len(names))
    weights[names.index("B-A")] = 3.0
    decoder.set_tag_weights(weights)
    em, mask, gold = one_token_case(names)
    log_probs = em[0, 0].log_softmax(-1)
    p = log_probs[names.index("B-A")].exp()
    ce = -(0.9 * log_probs[names.index("B-A")] + 0.1 * log_probs.mean())
    expected = 3.0 * (1 - p) ** 2 * ce  # the missing token costs nothing
    assert float(decoder.sequence_loss(em, mask, gold)[0]) == pytest.approx(float(expected), rel=1e-5)


def test_focal_loss_down_weights_easy_tokens():
    plain, names = softmax_decoder()
    focal, _ = softmax_decoder(focal_gamma=2.0)
    em, mask, gold = one_token_case(names)  # B-A is the argmax: an easy token
    assert focal.sequence_loss(em, mask, gold) < 0.5 * plain.sequence_loss(em, mask, gold)


@pytest.mark.parametrize("option", ["focal_gamma", "label_smoothing"])
def test_softmax_only_options_are_refused_for_the_crf(option):
    with pytest.raises(ValueError, match=f"Option '{option}' needs decoder"):
        TagDecoder("crf", **{option: 0.5})


@pytest.mark.parametrize("scheme", SCHEMES)
def test_log_partition_equals_brute_force_over_ragged_batches(scheme):
    decoder, names, allowed = make_decoder("crf", scheme, labels=("A",), seed=5)
    K = len(names)
    lengths = [4, 1, 3]
    emissions = torch.randn(len(lengths), 4, K) * 2
    mask = torch.arange(4).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    moves = (decoder.crf.start_transitions, decoder.crf.transitions, decoder.crf.end_transitions)
    with torch.no_grad():
        got = log_partition(emissions, mask, *moves)
        for row, n in enumerate(lengths):
            paths = [p for p in itertools.product(range(K), repeat=n) if is_valid(p, allowed)]
            expected = torch.stack([path_score(decoder, emissions[row, :n], p) for p in paths]).logsumexp(0)
            assert float(got[row]) == pytest.approx(float(expected), abs=1e-4)
