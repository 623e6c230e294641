"""Entity probabilities and tag marginals, exact against brute-force
enumeration of every tag path on small random decoders."""
import itertools

import numpy
import pytest
import torch
from thinc.api import fix_random_seed

from spacy_medner.ml.decoder import TagDecoder
from spacy_medner.tags import SCHEMES, TagScheme

LENGTHS = [1, 3, 4, 2]  # a one-token doc, and entities at both edges of every doc


def decoder_and_emissions(kind, name, seed):
    fix_random_seed(seed)
    scheme = TagScheme.from_name(name, ("A", "B"))
    decoder = TagDecoder(kind)
    decoder.set_scheme(scheme)
    decoder.initialize()
    if kind == "crf":
        with torch.no_grad():
            for p in decoder.module.crf.parameters():
                p.normal_(0, 1.0)
    rng = numpy.random.default_rng(seed)
    emissions = [decoder.ops.asarray2f(rng.normal(size=(n, len(scheme.names))).astype("float32") * 1.5) for n in LENGTHS]
    return decoder, scheme, emissions


def path_distribution(decoder, scheme, emissions, kind, temperature):
    """{path: probability} over every path of the decoder's distribution."""
    K = len(scheme.names)
    if kind == "crf":
        start, trans, end = (m.detach().numpy() / temperature for m in decoder.module.constrained_moves())
        scores = numpy.asarray(emissions) / temperature
        weights = {}
        for path in itertools.product(range(K), repeat=len(scores)):
            total = start[path[0]] + end[path[-1]] + sum(scores[t, k] for t, k in enumerate(path))
            total += sum(trans[a, b] for a, b in zip(path[:-1], path[1:]))
            if numpy.isfinite(total):
                weights[path] = numpy.exp(total)
    else:  # independent tokens
        probs = torch.tensor(numpy.asarray(emissions) / temperature).softmax(-1).numpy()
        weights = {path: numpy.prod([probs[t, k] for t, k in enumerate(path)]) for path in itertools.product(range(K), repeat=len(probs))}
    z = sum(weights.values())
    return {path: w / z for path, w in weights.items()}


def holds_entity(scheme, path, span):
    """The path's tags on the span are the entity's and, unless its last tag
    closes it (E, S), the next tag does not carry it on."""
    (s, e, label), n = span, len(path)
    pattern = [scheme.index[t] for t in scheme.encode_spans([(0, e - s, scheme.labels[label])], e - s)]
    if list(path[s:e]) != pattern:
        return False
    closed = e == n or not scheme.may_go_on[path[e - 1]]
    return closed or not (scheme.continues[path[e]] and scheme.label_ids[path[e]] == label)


@pytest.mark.parametrize("kind", ["crf", "softmax"])
@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_entity_probabilities_equal_brute_force(kind, name, temperature):
    decoder, scheme, emissions = decoder_and_emissions(kind, name, seed=len(name) + int(temperature * 10))
    spans = [
        numpy.array([(s, e, l) for s in range(n) for e in range(s + 1, n + 1) for l in range(len(scheme.labels))])
        for n in LENGTHS
    ]
    got = decoder.entity_probabilities(emissions, spans, scheme, temperature)
    for doc, (em, doc_spans) in enumerate(zip(emissions, spans)):
        distribution = path_distribution(decoder, scheme, em, kind, temperature)
        for span, p in zip(doc_spans.tolist(), got[doc]):
            expected = sum(q for path, q in distribution.items() if holds_entity(scheme, path, span))
            assert p == pytest.approx(expected, abs=2e-5), (doc, span)
    if kind == "crf":  # with legal paths only, "holds the entity" is "decodes to a set containing it"
        distribution = path_distribution(decoder, scheme, emissions[2], kind, temperature)
        for span, p in zip(spans[2].tolist(), got[2]):
            contains = sum(q for path, q in distribution.items() if tuple(span) in map(tuple, scheme.decode(numpy.array(path)).tolist()))
            assert p == pytest.approx(contains, abs=2e-5)


@pytest.mark.parametrize("kind", ["crf", "softmax"])
@pytest.mark.parametrize("name", SCHEMES)
def test_tag_marginals_equal_brute_force(kind, name):
    decoder, scheme, emissions = decoder_and_emissions(kind, name, seed=7)
    marginals = decoder.tag_marginals(emissions, temperature=1.5)
    for em, got in zip(emissions, marginals):
        distribution = path_distribution(decoder, scheme, em, kind, 1.5)
        expected = numpy.zeros_like(got)
        for path, q in distribution.items():
            expected[numpy.arange(len(path)), list(path)] += q
        numpy.testing.assert_allclose(got, expected, atol=2e-5)


def test_temperature_leaves_the_viterbi_path_and_sharpens_or_flattens_scores():
    decoder, scheme, emissions = decoder_and_emissions("crf", "BIOES", seed=3)
    spans = [scheme.decode(ids) for ids in decoder.decode(emissions)]
    cold = decoder.entity_probabilities(emissions, spans, scheme, 0.5)
    hot = decoder.entity_probabilities(emissions, spans, scheme, 4.0)
    for c, h, s in zip(cold, hot, spans):
        if len(s):  # the best path's entities gain probability as the distribution sharpens
            assert (c >= h - 1e-6).all()


def test_marginals_stay_exact_on_long_documents_with_large_potentials():
    """The scaled recursion must not under- or overflow: 5,000 tokens with
    emissions of ±40, against the log-space forward algorithm's log Z."""
    from spacy_medner.ml.crf import forward_backward, log_partition

    decoder, scheme, _ = decoder_and_emissions("crf", "BIOES", seed=11)
    torch.manual_seed(0)
    emissions = torch.randn(2, 5000, len(scheme.names)) * 40
    mask = torch.arange(5000).unsqueeze(0) < torch.tensor([5000, 1234]).unsqueeze(1)
    moves = decoder.module.constrained_moves()
    alpha, beta, log_z = forward_backward(emissions, mask, *moves)
    expected = log_partition(emissions.double(), mask, *(m.double() for m in moves))
    torch.testing.assert_close(log_z, expected, rtol=1e-9, atol=1e-6)
    marginals = (alpha + beta - log_z[:, None, None]).exp()
    totals = marginals.sum(dim=2)
    torch.testing.assert_close(totals[0], torch.ones(5000, dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(totals[1, :1234], torch.ones(1234, dtype=torch.float64), rtol=0, atol=1e-6)
