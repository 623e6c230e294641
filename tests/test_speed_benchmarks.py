"""The speed tools of issue 33: the interleaved A/B runner, the stage profile
and the report section built from their results. Real runs on a small trained
pipeline; no timing is asserted, only what the tools must get right."""
import json
import subprocess
import sys

import spacy
from spacy.tokens import DocBin

from benchmarks.speed_report import lever_verdicts, speed_levers_section

from .conftest import ROOT, TRAIN_DATA
from .io.trained import trained_pipeline


def gold_docbin(path):
    nlp = spacy.blank("zh")
    docs = []
    for text, entities in TRAIN_DATA * 3:
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=label) for s, e, label in entities]
        docs.append(doc)
    DocBin(docs=docs).to_disk(path)
    return path


def run(module, *args):
    result = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_ab_run_checks_entities_scores_them_and_feeds_the_report(tmp_path):
    model = trained_pipeline()
    gold = gold_docbin(tmp_path / "gold.spacy")
    metrics = tmp_path / "results"
    out = run(
        "speed_ab", f"first={model}", f"again={model}", f"int8={model}+int8", "--gold", gold,
        "--threads", "1", "--rounds", "2", "--json", metrics / "speed" / "levers.json",
    )
    rows = {r["variant"]: r for r in json.loads((metrics / "speed" / "levers.json").read_text())["rows"]}
    assert set(rows) == {"first", "again", "int8"} and all(len(r["rounds"]) == 2 for r in rows.values())
    # The same model and code: the same entities; the overfitted pipeline scores its own training texts.
    assert rows["again"]["same_entities"] and rows["first"]["same_entities"]
    assert rows["first"]["f"] == rows["again"]["f"] > 90
    assert rows["first"]["entities"] == rows["again"]["entities"] > 0
    assert "again" in out and "identical" in out
    section = "\n".join(speed_levers_section(metrics, exact_variant="again", crf_variant="none"))
    assert "| again | working tree | 1 |" in section
    assert "`again`" in section and "2× missed" in section  # the same code cannot be twice as fast


def test_ab_run_refuses_a_variant_without_a_model():
    result = subprocess.run([sys.executable, "-m", "benchmarks.speed_ab", "only-a-label", "x=y"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0 and "label=MODEL" in result.stderr


def test_verdicts_need_the_speed_ratio_identical_entities_and_the_f1_budget():
    def row(variant, threads, speed, same=True, f=80.0, model="m"):
        return {"variant": variant, "threads": threads, "chars_per_second": speed, "same_entities": same, "f": f, "model": model}

    levers = {"rows": [
        row("today", 2, 30_000), row("now", 2, 61_000), row("fast", 2, 70_000, same=False, f=79.8),
        row("lossy", 2, 90_000, same=False, f=79.0), row("crfsuite", 2, 120_000, same=False, f=79.5, model="crf.pkl"),
    ]}
    lines = "\n".join(lever_verdicts(levers, "now", "crfsuite"))
    assert "`now` 61,000 chars/s, 2.03× `today` (identical entities): ≥ 2× met" in lines
    assert "`fast`: 58% of the character CRF's chars/s, F1 79.80 (-0.20 against `today`): ≥ 50% at ≤ 0.3 F1 lost met" in lines
    assert "`lossy`: 75% of the character CRF's chars/s, F1 79.00 (-1.00 against `today`): ≥ 50% at ≤ 0.3 F1 lost missed" in lines
    levers["rows"][1]["same_entities"] = False
    assert "≥ 2× missed" in "\n".join(lever_verdicts(levers, "now", "crfsuite"))


def test_profile_times_every_stage_of_prediction(tmp_path):
    texts = tmp_path / "texts.jsonl"
    texts.write_text("\n".join(json.dumps({"text": t}, ensure_ascii=False) for t, _ in TRAIN_DATA * 20), encoding="utf8")
    run("profile_prediction", trained_pipeline(), "--texts", texts, "--repeats", "1", "--json", tmp_path / "speed" / "profile_1thread_now.json")
    profile = json.loads((tmp_path / "speed" / "profile_1thread_now.json").read_text())
    stages = {s["stage"] for s in profile["stages"]}
    # The test pipeline has a BiGRU and no attention, and scores its entities.
    assert {"tokenizer", "char_ids", "embed", "rnn", "projection", "viterbi", "entity_probs", "set_annotations"} <= stages
    assert all(s["seconds"] >= 0 for s in profile["stages"]) and sum(s["seconds"] for s in profile["stages"]) > 0 < profile["pipe_seconds"]
    section = "\n".join(speed_levers_section(tmp_path))
    assert "Where the time goes, 1 thread(s)" in section and "| BiGRU (with residual and layer norm) |" in section
