"""A training corpus that repeats examples containing rare labels.

Registered as `spacy_medner.OversampledCorpus.v1`:

    [corpora.train]
    @readers = "spacy_medner.OversampledCorpus.v1"
    path = ${paths.train}
    rare_below = 0.05   # a label is rare below this share of all entities
    factor = 3          # an example with a rare entity is seen this many times per epoch

Label shares are counted once over the whole corpus (doc.ents of the
reference docs). Repeats are spread through the epoch by spaCy's shuffling,
not given back to back.
"""
from collections import Counter
from typing import Iterator, Optional, Set

from spacy.language import Language
from spacy.training import Corpus, Example


class OversampledCorpus:
    def __init__(self, path, *, rare_below: float = 0.05, factor: int = 3, max_length: int = 0, limit: int = 0):
        if factor < 1:
            raise ValueError(f"[spacy_medner] Option 'factor' must be >= 1, got {factor}.")
        if not 0 < rare_below <= 1:
            raise ValueError(f"[spacy_medner] Option 'rare_below' must be in (0, 1], got {rare_below}.")
        self.corpus = Corpus(path, max_length=max_length, limit=limit)
        self.rare_below = rare_below
        self.factor = factor
        self._rare: Optional[Set[str]] = None

    def rare_labels(self, nlp: Language) -> Set[str]:
        if self._rare is None:
            counts = Counter(ent.label_ for eg in self.corpus(nlp) for ent in eg.reference.ents)
            total = sum(counts.values()) or 1
            self._rare = {label for label, n in counts.items() if n / total < self.rare_below}
        return self._rare

    def __call__(self, nlp: Language) -> Iterator[Example]:
        rare = self.rare_labels(nlp)
        for eg in self.corpus(nlp):
            repeats = self.factor if any(ent.label_ in rare for ent in eg.reference.ents) else 1
            for _ in range(repeats):
                yield eg


def create_oversampled_corpus(path, rare_below: float = 0.05, factor: int = 3, max_length: int = 0, limit: int = 0) -> OversampledCorpus:
    return OversampledCorpus(path, rare_below=rare_below, factor=factor, max_length=max_length, limit=limit)
