"""The classical baseline: a linear-chain CRF over characters (sklearn-crfsuite),
with the character ±2 window and the character bigrams around it as features,
BIOES tags. It sees no embeddings, so it is what a team gets without neural
models; it predicts at hundreds of thousands of characters per second.

The tag scheme is the library's: `gold_tags` and `predicted_spans` are the
only two places that call spacy_medner.tags, one to encode a doc's entities
as per-character tags, one to decode predicted tags back to character spans.
"""
import pickle
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple

from spacy.tokens import Doc
from spacy.util import filter_spans

from spacy_medner.tags import TagScheme, read_tags

SCHEME = "BIOES"


def char_features(text: str) -> List[List[str]]:
    padded = "\x02\x02" + text + "\x03\x03"  # start/end markers outside any real text
    features = []
    for i in range(len(text)):
        c = padded[i : i + 5]  # c[2] is the character itself
        features.append([
            "bias", f"c0={c[2]}", f"c-1={c[1]}", f"c-2={c[0]}", f"c+1={c[3]}", f"c+2={c[4]}",
            f"b-2={c[0:2]}", f"b-1={c[1:3]}", f"b+1={c[2:4]}", f"b+2={c[3:5]}",
            f"t={_char_class(c[2])}",
        ])
    return features


def _char_class(char: str) -> str:
    if char.isdigit():
        return "digit"
    if char.isascii() and char.isalpha():
        return "latin"
    if char.isspace():
        return "space"
    return "other" if not char.isalnum() else "cjk"


def gold_tags(doc: Doc) -> List[str]:
    """One tag per character of doc.text (not per token: spaces may not be tokens)."""
    scheme = TagScheme.from_name(SCHEME, [e.label_ for e in doc.ents])
    return scheme.encode_spans([(e.start_char, e.end_char, e.label_) for e in doc.ents], len(doc.text))


def predicted_spans(tags: Sequence[str]) -> List[Tuple[int, int, str]]:
    """(start char, end char, label) of each entity in one text's predicted tags."""
    return read_tags(tags)[0]


class CharCRF:
    def __init__(self, c1: float = 0.05, c2: float = 0.01, max_iterations: int = 150):
        import sklearn_crfsuite  # bench extra

        self.crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=c1, c2=c2, max_iterations=max_iterations, all_possible_transitions=True)

    def fit(self, docs: Iterable[Doc]) -> "CharCRF":
        docs = [d for d in docs if d.text]
        self.crf.fit([char_features(d.text) for d in docs], [gold_tags(d) for d in docs])
        return self

    def pipe(self, docs: Iterable[Doc], batch_size: int = 1000) -> Iterable[Doc]:
        """Sets doc.ents; entities that do not fall on token boundaries are dropped."""
        docs = list(docs)
        for doc, tags in zip(docs, self.crf.predict([char_features(d.text) for d in docs])):
            spans = [doc.char_span(s, e, label=label) for s, e, label in predicted_spans(tags)]
            doc.set_ents(filter_spans([s for s in spans if s is not None and s.text.strip() == s.text]))
            yield doc

    def to_disk(self, path: Path) -> None:
        path.write_bytes(pickle.dumps(self.crf))

    @classmethod
    def from_disk(cls, path: Path) -> "CharCRF":
        model = cls.__new__(cls)
        model.crf = pickle.loads(path.read_bytes())
        return model
