"""A span_ner (nested-entity) pipeline over real HTTP: without `--spans-key`
the service reads the scoring group off the pipeline, so the entities carry
span_ner's scores, and every result carries `mentions` (every span found,
nested ones too); the metadata and the OpenAPI schema say so."""
import httpx
import pytest
import spacy

from spacy_medner.io.entities import doc_entities, doc_mentions

from ..io.trained_span import TEXTS, gold_mentions, same_items, trained_span_pipeline
from .conftest import LIMITS

UNSEEN = ["".join(TEXTS[:2]), "今日无不适", ""]


@pytest.fixture(scope="module")
def span_model():
    return trained_span_pipeline()


@pytest.fixture(scope="module")
def span_server(start_server, span_model):
    return start_server(*LIMITS, model=span_model)


@pytest.fixture(scope="module")
def expected(span_model):
    """What the pipeline gives in this process: the service must say the same."""
    nlp = spacy.load(span_model)

    def result(text):
        doc = nlp(text)
        return {"entities": doc_entities(doc, "sc"), "mentions": doc_mentions(doc, "sc")}

    return result


def same_result(got, want) -> bool:
    return set(got) == set(want) == {"entities", "mentions"} and all(same_items(got[k], want[k]) for k in want)


def post(server, body) -> httpx.Response:
    return httpx.post(server.url + "/v1/entities", json=body, timeout=60)


def test_one_text_gets_scored_entities_and_nested_mentions(span_server, expected):
    for text in TEXTS + UNSEEN:
        response = post(span_server, {"text": text})
        assert response.status_code == 200, response.text
        body = response.json()
        assert same_result(body, expected(text)), (body, expected(text))
        for item in body["entities"] + body["mentions"]:
            assert text[item["start"]:item["end"]] == item["text"] and 0.5 <= item["score"] <= 1.0
    # Nested mentions reached the answer: 左下腹 (bod) inside 左下腹疼痛 (sym), and doc.ents keeps one of them.
    body = post(span_server, {"text": TEXTS[0]}).json()
    assert sorted((m["start"], m["end"], m["label"]) for m in body["mentions"]) == gold_mentions(TEXTS[0]) == [(2, 5, "bod"), (2, 7, "sym")]
    assert len(body["entities"]) == 1


def test_a_batch_is_answered_in_order_with_mentions(span_server, expected):
    texts = TEXTS + UNSEEN
    response = post(span_server, {"texts": texts})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(texts) and all(same_result(r, expected(t)) for r, t in zip(results, texts))


def test_metadata_and_schema_describe_the_mentions(span_server):
    meta = httpx.get(span_server.url + "/v1/metadata").json()
    assert meta["pipeline"] == ["span_ner"] and meta["spans_key"] == "sc" and meta["mentions"] is True
    assert meta["labels"] == ["bod", "dis", "dru", "sym"]
    schema = httpx.get(span_server.url + "/openapi.json").json()
    result = schema["components"]["schemas"]["EntitiesResult"]["properties"]
    assert "mentions" in result and "nested" in result["mentions"]["description"]
    assert "mentions" in schema["paths"]["/v1/entities"]["post"]["description"]


def test_a_crf_ner_service_says_it_has_no_mentions(server):
    meta = httpx.get(server.url + "/v1/metadata").json()
    assert meta["spans_key"] == "crf_ner" and meta["mentions"] is False
    assert "mentions" not in post(server, {"text": "患者因直肠癌于我院行直肠癌根治术"}).json()
