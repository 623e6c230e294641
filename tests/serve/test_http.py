"""The service over real HTTP: a server subprocess on a loopback port."""
import json
import subprocess
import sys
import threading
import time

import httpx
import pytest
import spacy

from spacy_medner.io.entities import doc_entities

from ..conftest import ROOT, TRAIN_DATA
from .conftest import same_answer

TEXTS = [text for text, _ in TRAIN_DATA]
# Unseen combinations too, so the check is not only on memorised sentences.
MORE = TEXTS + ["".join(TEXTS[:2]), "入院后口服阿司匹林，腹部CT示肝脏多发占位。", "", " 术后予奥沙利铂化疗 \n复查血常规"]


@pytest.fixture(scope="module")
def reference(served_model):
    """What the pipeline predicts in this process: the service must say the same."""
    nlp = spacy.load(served_model)
    return lambda text: doc_entities(nlp(text))


def post(server, body, **kwargs) -> httpx.Response:
    return httpx.post(server.url + "/v1/entities", json=body, timeout=60, **kwargs)


def test_one_text_gets_the_pipelines_entities(server, reference):
    for text in MORE:
        response = post(server, {"text": text})
        assert response.status_code == 200, response.text
        assert same_answer(response.json(), {"entities": reference(text)})
        for entity in response.json()["entities"]:
            assert text[entity["start"] : entity["end"]] == entity["text"]
    # The trained model finds the training entities, so the comparison above compared something.
    first = post(server, {"text": TEXTS[0]}).json()["entities"]
    assert [(e["text"], e["label"]) for e in first] == [("直肠癌", "疾病和诊断"), ("直肠癌根治术", "手术")]


def test_scores_are_passed_on_when_the_pipeline_sets_them(scored_server, scored_model):
    """scored_server also runs two worker processes: each answers the same."""
    from . import scores_component

    nlp = spacy.load(scored_model)
    for text in MORE:
        entities = post(scored_server, {"text": text}).json()["entities"]
        assert entities == doc_entities(nlp(text))
        assert [e["score"] for e in entities] == [scores_component.SCORES[i % 5] for i in range(len(entities))]
    assert post(scored_server, {"text": TEXTS[0]}).json()["entities"][0]["score"] == 0.97
    pairs = concurrent_requests(scored_server, 8)
    for body, response in pairs:
        assert same_answer(response.json(), expected(body, lambda text: doc_entities(nlp(text))))


def test_a_batch_is_answered_in_order(server, reference):
    texts = MORE[:8]
    response = post(server, {"texts": texts})
    assert response.status_code == 200, response.text
    assert same_answer(response.json(), {"results": [{"entities": reference(text)} for text in texts]})
    assert post(server, {"texts": []}).json() == {"results": []}


def concurrent_requests(server, n: int = 24) -> list:
    """n requests released together, each with its own text(s)."""
    barrier = threading.Barrier(n)
    bodies = [{"text": MORE[i % len(MORE)]} if i % 3 else {"texts": [MORE[(i + k) % len(MORE)] for k in range(3)]} for i in range(n)]
    answers = [None] * n

    def call(i: int) -> None:
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            answers[i] = client.post(server.url + "/v1/entities", json=bodies[i])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return list(zip(bodies, answers))


def expected(body, reference):
    if "text" in body:
        return {"entities": reference(body["text"])}
    return {"results": [{"entities": reference(text)} for text in body["texts"]]}


def test_concurrent_requests_share_model_calls_and_each_gets_its_own_answer(server, reference):
    before = httpx.get(server.url + "/v1/metadata").json()["batching"]
    pairs = concurrent_requests(server)
    for body, response in pairs:
        assert response.status_code == 200, response.text
        assert same_answer(response.json(), expected(body, reference))
    after = httpx.get(server.url + "/v1/metadata").json()["batching"]
    assert after["texts"] - before["texts"] == sum(len(body.get("texts", [0])) for body, _ in pairs)
    # Batched: fewer model calls than requests.
    assert after["batches"] - before["batches"] < len(pairs)


def test_healthz_is_503_until_the_model_is_loaded_and_unbatched_requests_run_alone(start_server, reference):
    """One server for two checks, since each server start loads torch and the model."""
    server = start_server("--no-batching", env={"SPACY_MEDNER_SERVE_LOAD_DELAY": "3"}, ready=False)
    health = httpx.get(server.url + "/healthz")
    assert health.status_code == 503
    assert health.json()["field"] == "model" and "loading" in health.json()["error"]
    early = post(server, {"text": TEXTS[0]})
    assert early.status_code == 503 and early.headers["retry-after"] == "1"
    assert httpx.get(server.url + "/v1/labels").status_code == 503
    server.wait_ready()
    assert httpx.get(server.url + "/healthz").json()["status"] == "ok"

    pairs = concurrent_requests(server, 12)
    for body, response in pairs:
        assert same_answer(response.json(), expected(body, reference))
    assert httpx.get(server.url + "/v1/metadata").json()["batching"]["batches"] == 12


def test_a_model_that_fails_to_load_is_reported_on_healthz(start_server, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.cfg").write_text("[nlp]\nlang = \"zh\"\npipeline = [\"no_such_component\"]\n")
    server = start_server(model=broken, ready=False)
    deadline = time.monotonic() + 120
    while "could not be loaded" not in httpx.get(server.url + "/healthz").text:
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.2)
    health = httpx.get(server.url + "/healthz")
    assert health.status_code == 503 and health.json()["field"] == "model"
    refused = post(server, {"text": TEXTS[0]})
    assert refused.status_code == 503 and "could not be loaded" in refused.json()["error"]
    assert server.process.poll() is None


def test_labels_and_metadata(server, served_model):
    labels = sorted({label for _, ents in TRAIN_DATA for _, _, label in ents})
    assert httpx.get(server.url + "/v1/labels").json() == {"labels": labels}
    meta = httpx.get(server.url + "/v1/metadata").json()
    nlp_meta = json.loads((served_model / "meta.json").read_text())
    assert meta["name"] == f"zh_{nlp_meta['name']}" and meta["version"] == nlp_meta["version"]
    assert meta["labels"] == labels and set(meta["colors"]) == set(labels)
    assert len(set(meta["colors"].values())) == len(labels), "one colour per label"
    import spacy_medner

    assert meta["versions"]["spacy"] == spacy.__version__
    assert meta["versions"]["spacy_medner"] == spacy_medner.__version__
    assert meta["pipeline"] == ["crf_ner"] and meta["torch_threads"] == 1
    assert meta["limits"] == {"max_text_chars": 200, "max_batch_texts": 8, "max_body_bytes": 4000}


def test_the_openapi_schema_states_the_limits(server):
    schema = httpx.get(server.url + "/openapi.json").json()
    operation = schema["paths"]["/v1/entities"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    fields = schema["components"]["schemas"][ref]["properties"]
    text = next(option for option in fields["text"]["anyOf"] if option.get("type") == "string")
    texts = next(option for option in fields["texts"]["anyOf"] if option.get("type") == "array")
    assert text["maxLength"] == 200
    assert texts["maxItems"] == 8 and texts["items"]["maxLength"] == 200
    assert "4,000 bytes" in operation["description"] and "4,000 bytes" in schema["info"]["description"]
    assert {"400", "413", "422", "503"} <= set(operation["responses"])
    assert httpx.get(server.url + "/docs").status_code == 200


BAD = {
    # id: (body bytes, status, field, words in the message)
    "malformed JSON": (b'{"text": "abc', 400, "body", ["not valid JSON"]),
    "empty body": (b"", 422, "body", ["empty"]),
    "text is a number": (b'{"text": 5}', 422, "text", ["text", "string", "number"]),
    "texts is a string": (b'{"texts": "x"}', 422, "texts", ["texts", "list"]),
    "a text of texts is a number": (b'{"texts": ["ok", 5]}', 422, "texts[1]", ["texts[1]", "string"]),
    "neither field": (b"{}", 422, "body", ["text", "texts"]),
    "text is null": (b'{"text": null}', 422, "body", ["text", "texts"]),
    "both fields": (b'{"text": "a", "texts": ["b"]}', 422, "body", ["both"]),
    "unknown field": (b'{"txt": "a"}', 422, "txt", ["txt"]),
    "a list": (b'["a"]', 422, "body", ["object"]),
    "a string": (b'"a"', 422, "body", ["object"]),
    "text over the limit": (json.dumps({"text": "病" * 201}).encode(), 413, "text", ["201", "200", "--max-text-chars"]),
    "a text of texts over the limit": (json.dumps({"texts": ["a", "病" * 201]}).encode(), 413, "texts[1]", ["200", "--max-text-chars"]),
    "batch over the limit": (json.dumps({"texts": ["a"] * 9}).encode(), 413, "texts", ["9", "8", "--max-batch-texts"]),
    "body over the limit": (json.dumps({"texts": ["病" * 190] * 8}, ensure_ascii=False).encode(), 413, "body", ["4,000 bytes", "--max-body-bytes"]),
}


@pytest.mark.parametrize("body,status,field,words", BAD.values(), ids=BAD.keys())
def test_a_bad_request_is_refused_with_a_json_error_and_the_server_keeps_serving(server, reference, body, status, field, words):
    response = httpx.post(server.url + "/v1/entities", content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["field"] == field
    for word in words:
        assert word in error["error"], error
    assert "\n" not in error["error"]
    assert server.process.poll() is None
    good = post(server, {"text": TEXTS[1]})
    assert good.status_code == 200 and same_answer(good.json(), {"entities": reference(TEXTS[1])})


def test_a_chunked_body_over_the_limit_is_refused_while_it_is_read(server, reference):
    def chunks():
        yield b'{"text": "'
        for _ in range(10):
            yield ("病" * 200).encode()
        yield b'"}'

    response = httpx.post(server.url + "/v1/entities", content=chunks(), headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 413 and "4,000 bytes" in response.json()["error"]
    assert same_answer(post(server, {"text": TEXTS[2]}).json(), {"entities": reference(TEXTS[2])})


def test_a_json_body_sent_as_a_form_is_read_as_json(server, reference):
    # What `curl -d '{"text": ...}'` sends without -H 'Content-Type: application/json'.
    body = json.dumps({"text": TEXTS[3]}, ensure_ascii=False).encode()
    response = httpx.post(server.url + "/v1/entities", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200 and same_answer(response.json(), {"entities": reference(TEXTS[3])})


def test_unknown_paths_and_methods_get_json_errors(server):
    assert httpx.get(server.url + "/v1/nothing").json()["field"] == "url"
    wrong_method = httpx.get(server.url + "/v1/entities")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def test_the_review_page_and_its_files_are_served_by_the_app(server):
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/review.js", "/static/review.css"):
        assert httpx.get(server.url + asset).status_code == 200
    assert "http://" not in page.text and "https://" not in page.text, "no external resource: the page must work offline"


@pytest.mark.parametrize(
    "arguments,words",
    [
        (["/no/such/model"], ["/no/such/model", "no such directory"]),
        ([str(ROOT)], ["no config.cfg"]),
        (["{model}", "--workers", "0"], ["--workers", "at least 1"]),
        (["{model}", "--code", "/no/such/file.py"], ["--code", "/no/such/file.py"]),
    ],
    ids=["missing", "not a pipeline", "no workers", "no code file"],
)
def test_bad_options_fail_with_one_line_and_exit_1(served_model, arguments, words):
    arguments = [a.format(model=served_model) for a in arguments]
    result = subprocess.run([sys.executable, "-m", "spacy_medner", "serve", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr
