"""A small trained crf_ner pipeline for the annotate, io and Ray tests,
trained once per test process (about 10 s) and saved to a temporary folder."""
import functools
import tempfile
from pathlib import Path

from ..conftest import TRAIN_DATA

CHAR_EMBED = {"@architectures": "spacy_medner.CharEmbed.v1", "width": 32, "bigram_width": 16, "rows": 2000, "bigram_rows": 2000}
ENCODER = {"@architectures": "spacy_medner.SequenceEncoder.v1", "tok2vec": CHAR_EMBED, "rnn": "gru", "rnn_width": 64,
           "attention": None, "residual": False, "dropout": 0.0}


@functools.lru_cache(maxsize=None)
def trained_pipeline() -> Path:
    """The folder of a crf_ner pipeline (CharEmbed + BiGRU + CRF) overfitted on TRAIN_DATA."""
    import spacy
    from spacy.training import Example
    from thinc.api import fix_random_seed

    import spacy_medner  # noqa: F401

    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config={"scheme": "BIOES", "model": {"@architectures": "spacy_medner.EntityTagger.v1", "decoder": "crf", "encoder": ENCODER}})
    fix_random_seed(0)
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(60):
        nlp.update(examples, sgd=optimizer, losses={})
    path = Path(tempfile.mkdtemp(prefix="spacy_medner_annotate_")) / "pipeline"
    nlp.to_disk(path)
    return path


def sample_texts(n: int):
    """n short clinical-style texts, varied so that batches differ."""
    base = [text for text, _ in TRAIN_DATA] + ["患者无明显诱因出现咳嗽。", "复查腹部CT示肝脏多发占位，予阿司匹林口服。"]
    return [base[i % len(base)] + ("。" * (i % 3)) for i in range(n)]


def assert_same_records(got, expected, score_tolerance=1e-3):
    """Records equal field by field, entities exactly, scores within a tolerance:
    a crf_ner score is a float whose last digits depend on which records share
    its batch (padding changes the summation order), so two runs that batch
    differently (--n-process, Ray, a resumed run) agree on it to about 1e-5."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        a_entities, b_entities = a.get("entities") or [], b.get("entities") or []
        assert {k: v for k, v in a.items() if k != "entities"} == {k: v for k, v in b.items() if k != "entities"}
        assert len(a_entities) == len(b_entities), (a, b)
        for x, y in zip(a_entities, b_entities):
            x_score, y_score = x.get("score"), y.get("score")
            assert {k: v for k, v in x.items() if k != "score"} == {k: v for k, v in y.items() if k != "score"}
            assert (x_score is None) == (y_score is None)
            if x_score is not None:
                assert abs(x_score - y_score) <= score_tolerance, (x, y)


def write_jsonl(path, rows):
    """Input records, one JSON line each; a str row is written as is (a broken line, for the bad-input tests)."""
    import json

    with open(path, "w", encoding="utf8") as file:
        for row in rows:
            file.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
    return path
