"""A small trained span_ner pipeline (nested mentions) for the annotate, serve
and Ray tests, trained once per test process on tests/pipeline/test_span_ner's
nested toy corpus with its helpers, and saved to a temporary folder."""
import functools
import tempfile
from pathlib import Path

from ..pipeline.test_span_ner import NESTED_DATA, span_config, train

TEXTS = [text for text, _ in NESTED_DATA]


@functools.lru_cache(maxsize=None)
def trained_span_pipeline() -> Path:
    """The folder of a span_ner pipeline (CharEmbed + BiGRU + GlobalPointer)
    overfitted on NESTED_DATA: every mention found, the inner ones too."""
    import spacy

    import spacy_medner  # noqa: F401  (the span_ner factory)

    nlp = spacy.blank("zh")
    nlp.add_pipe("span_ner", config=span_config())
    train(nlp, 60)
    path = Path(tempfile.mkdtemp(prefix="spacy_medner_span_")) / "pipeline"
    nlp.to_disk(path)
    return path


def gold_mentions(text: str):
    """(start, end, label) of every gold mention of a NESTED_DATA text."""
    return sorted(next(spans for t, spans in NESTED_DATA if t == text))


def long_nested_record(n: int = 24) -> str:
    """NESTED_DATA's texts as sentences, over and over: long enough to be cut."""
    return "".join(TEXTS[i % len(TEXTS)] + "。" for i in range(n))


def same_items(got, expected, tolerance: float = 1e-3) -> bool:
    """Entity or mention lists equal, scores to `tolerance` (a score's last
    digits depend on which texts share its batch)."""
    if len(got) != len(expected):
        return False
    for a, b in zip(got, expected):
        if {k: v for k, v in a.items() if k != "score"} != {k: v for k, v in b.items() if k != "score"}:
            return False
        if ("score" in a) != ("score" in b) or ("score" in a and abs(a["score"] - b["score"]) > tolerance):
            return False
    return True
