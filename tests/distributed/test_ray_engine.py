"""The Ray engine on a real local cluster (2 CPUs): the same records as the
local engine (scores to their batch noise), bad records reported the same way, pieces of a long record
predicted on different actors merged back."""
import json

import pytest

from spacy_medner.annotate import AnnotateOptions, annotate
from spacy_medner.io.writers import OutputError

from ..conftest import TRAIN_DATA
from ..io.trained import assert_same_records, sample_texts, trained_pipeline

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False)
    yield
    ray.shutdown()


def write_inputs(folder):
    long_text = "".join(TRAIN_DATA[i % 4][0] + "。" for i in range(40))
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(sample_texts(150))]
    rows[10]["text"] = ""
    rows[20]["text"] = None
    rows[30] = {"id": "no-text"}
    rows[40]["text"] = long_text
    rows[50]["text"] = "x" * 900
    a = folder / "a.jsonl"
    a.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:100]) + "{not json\n", encoding="utf8")
    b = folder / "b.jsonl"
    b.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[100:]), encoding="utf8")
    return [a, b]


def test_ray_writes_what_the_local_engine_writes(cluster, tmp_path):
    from spacy_medner.distributed import annotate_ray

    model = str(trained_pipeline())
    inputs = write_inputs(tmp_path)
    options = AnnotateOptions(id_field="id", max_chars=800, split_length=100, batch_size=16, chunk_size=40)
    local = annotate(model, inputs, tmp_path / "local.jsonl", options=options)
    # Small blocks, so that both actors predict, the long record's pieces included.
    on_ray = annotate_ray(model, inputs, tmp_path / "ray.jsonl", options=options, actors=2, block_bytes=2000)
    read = lambda name: [json.loads(line) for line in (tmp_path / name).read_text("utf8").splitlines()]  # noqa: E731
    assert_same_records(read("ray.jsonl"), read("local.jsonl"))
    assert (tmp_path / "ray.errors.jsonl").read_bytes() == (tmp_path / "local.errors.jsonl").read_bytes()
    assert (on_ray.records_in, on_ray.written, on_ray.errors, on_ray.reasons) == (local.records_in, local.written, local.errors, local.reasons)
    errors = [json.loads(line) for line in (tmp_path / "ray.errors.jsonl").read_text("utf8").splitlines()]
    assert [(e["source"].rsplit("/", 1)[-1], e["line"]) for e in errors] == [("a.jsonl", 11), ("a.jsonl", 21), ("a.jsonl", 31), ("a.jsonl", 51), ("a.jsonl", 101)]
    rows = [json.loads(line) for line in (tmp_path / "ray.jsonl").read_text("utf8").splitlines()]
    assert len(rows) == 146 and sum(len(r["entities"]) for r in rows) > 100


def test_ray_parquet_equals_local_parquet_and_docbin_is_refused(cluster, tmp_path):
    import pyarrow.dataset

    from spacy_medner.distributed import annotate_ray

    model = str(trained_pipeline())
    inputs = write_inputs(tmp_path)
    options = AnnotateOptions(id_field="id", max_chars=800, split_length=100, chunk_size=64)
    annotate(model, inputs, tmp_path / "local.parquet", options=options)
    annotate_ray(model, inputs, tmp_path / "ray.parquet", options=options, actors=2, block_bytes=4000)
    table = lambda name: pyarrow.dataset.dataset(tmp_path / name, format="parquet").to_table().to_pylist()  # noqa: E731
    assert_same_records(table("ray.parquet"), table("local.parquet"))
    with pytest.raises(OutputError, match="DocBin"):
        annotate_ray(model, inputs, tmp_path / "out.spacy", options=options)


def test_cli_joins_an_existing_cluster_with_ray_address(cluster, tmp_path):
    """`annotate --engine ray --ray-address ADDRESS` runs on the cluster it is
    given (here the test's), and prints the same summary as the local engine."""
    import os
    import subprocess
    import sys

    from ..conftest import ROOT

    model = str(trained_pipeline())
    inputs = write_inputs(tmp_path)
    address = ray.get_runtime_context().gcs_address
    common = ["--id-field", "id", "--max-chars", "800", "--split-length", "100"]
    result = subprocess.run(
        [sys.executable, "-m", "spacy_medner", "annotate", model, *map(str, inputs), "--output", str(tmp_path / "ray.jsonl"),
         "--engine", "ray", "--ray-address", address, "--actors", "1", *common],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "151 records in: 146 written, 5 errors" in result.stdout
    local = subprocess.run(
        [sys.executable, "-m", "spacy_medner", "annotate", model, *map(str, inputs), "--output", str(tmp_path / "local.jsonl"), *common],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert local.returncode == 0, local.stderr
    read = lambda name: [json.loads(line) for line in (tmp_path / name).read_text("utf8").splitlines()]  # noqa: E731
    assert_same_records(read("ray.jsonl"), read("local.jsonl"))
    assert (tmp_path / "ray.errors.jsonl").read_bytes() == (tmp_path / "local.errors.jsonl").read_bytes()


def test_ray_passes_on_span_ner_scores_and_nested_mentions(cluster, tmp_path):
    """A span_ner pipeline: each actor reads the scoring group off its pipeline,
    and the mentions of a long record's pieces, predicted on different actors,
    come back with offsets into the whole text, as the local engine writes them."""
    from spacy_medner.distributed import annotate_ray

    from ..io.trained_span import TEXTS, long_nested_record, same_items, trained_span_pipeline

    model = str(trained_span_pipeline())
    long_text = long_nested_record()
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(TEXTS * 5 + [long_text] + TEXTS)] + [{"id": "empty", "text": ""}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf8")
    options = AnnotateOptions(id_field="id", split_length=40, batch_size=4, chunk_size=8)
    annotate(model, [source], tmp_path / "local.jsonl", options=options)
    annotate_ray(model, [source], tmp_path / "ray.jsonl", options=options, actors=2, block_bytes=500)
    read = lambda name: [json.loads(line) for line in (tmp_path / name).read_text("utf8").splitlines()]  # noqa: E731
    local, on_ray = read("local.jsonl"), read("ray.jsonl")
    assert len(on_ray) == len(local) == len(rows) - 1
    for a, b in zip(on_ray, local):
        assert list(a) == list(b) == ["id", "text", "entities", "mentions"] and a["id"] == b["id"]
        assert same_items(a["entities"], b["entities"]) and same_items(a["mentions"], b["mentions"])
        assert all(a["text"][m["start"]:m["end"]] == m["text"] and "score" in m for m in a["mentions"] + a["entities"])
    long_row = next(r for r in on_ray if r["text"] == long_text)
    assert max(m["start"] for m in long_row["mentions"]) > len(long_text) - 40
