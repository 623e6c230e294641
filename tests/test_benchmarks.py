"""The benchmark suite: its scoring and baseline pieces, and a CI-sized run of
every script (tiny data, two steps) so that the `benchmark` workflow keeps
working. No figure from these runs means anything; they are never timed."""
import argparse
import dataclasses
import datetime
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.tokens import DocBin

from benchmarks import accuracy, report, seen_mentions, selection
from benchmarks.corpora import bench_corpora, demo_corpus, prepare
from benchmarks.crfsuite_baseline import char_features, gold_tags
from benchmarks.markdown import section, tables
from benchmarks.scoring import macro, score
from benchmarks.systems import SYSTEMS, word_features
from benchmarks.training_log import TimeBudgetReached, TrainingLog, timed_logger

from .conftest import SHARED, pretrain_on_demo_texts, shared_corpus

ROOT = Path(__file__).resolve().parents[1]


def test_exact_and_boundary_scores():
    gold = {(0, 0, 2, "DRUG"), (0, 5, 8, "BODY"), (1, 1, 3, "TEST")}
    predicted = {(0, 0, 2, "DRUG"), (0, 5, 8, "SYMP"), (1, 1, 4, "TEST"), (1, 6, 7, "TEST")}
    s = score(gold, predicted)
    assert (s["p"], s["r"]) == (1 / 4, 1 / 3)
    assert s["f"] == pytest.approx(2 / 7)
    assert s["boundary_f"] == pytest.approx(2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3))  # the BODY/SYMP span counts
    assert s["per_type"]["DRUG"]["f"] == 1.0 and s["per_type"]["BODY"] == {"p": 0.0, "r": 0.0, "f": 0.0, "n_gold": 1}
    assert s["per_type"]["SYMP"]["n_gold"] == 0
    assert macro([{"p": 1, "r": 0.5, "f": 0.6, "boundary_f": 0.8}, {"p": 0, "r": 0.5, "f": 0.2, "boundary_f": 0.4}])["f"] == pytest.approx(0.4)


def test_crf_features_are_window_and_bigrams_and_tags_follow_characters():
    features = char_features("口服药")
    assert {"c0=服", "c-1=口", "c+1=药", "c-2=\x02", "c+2=\x03", "b-1=口服", "b+1=服药"} <= set(features[1])
    nlp = spacy.blank("zh")
    doc = nlp.make_doc("口服 阿司匹林")
    doc.ents = [doc.char_span(3, 7, label="DRUG")]
    assert gold_tags(doc) == ["O", "O", "O", "B-DRUG", "I-DRUG", "I-DRUG", "E-DRUG"]


def _entities(path: Path) -> int:
    return sum(len(d.ents) for d in DocBin().from_disk(path).get_docs(spacy.blank("zh").vocab))


def test_prepare_splits_lose_no_entity(tmp_path):
    target = prepare(demo_corpus(), tmp_path)
    summary = json.loads((target / "splits.json").read_text(encoding="utf8"))
    assert set(summary["splits"]) == {"train", "dev", "test-test"}
    assert summary["splits"]["train"]["records"] + summary["splits"]["dev"]["records"] == 320
    for name, split in summary["splits"].items():
        assert split["entities_in"] == split["ents_out"] == _entities(target / f"{name}.spacy")


def test_prepare_ccks2019_official_test_and_dev_from_train(tmp_path):
    shared_corpus("ccks2019")
    target = prepare(bench_corpora(SHARED)["ccks2019"], tmp_path)
    splits = json.loads((target / "splits.json").read_text(encoding="utf8"))["splits"]
    assert (splits["train"]["records"], splits["dev"]["records"], splits["test-test"]["records"]) == (900, 100, 379)
    assert splits["train"]["ents_out"] + splits["dev"]["ents_out"] == 17653
    assert splits["test-test"]["ents_out"] == 6002


def test_carved_test_split_is_disjoint_by_record(tmp_path):
    shared_corpus("cmeee")
    target = prepare(bench_corpora(SHARED)["cmeee"], tmp_path, limit=None)
    splits = json.loads((target / "splits.json").read_text(encoding="utf8"))["splits"]
    assert (splits["train"]["records"], splits["dev"]["records"], splits["test-test"]["records"]) == (3600, 400, 1000)
    # Nested mentions: all kept between doc.ents and the span group, in every split.
    assert sum(s["spans_out"] for s in splits.values()) == 26081
    sources = {
        name: {d.user_data["medner_source"]["id"] for d in DocBin(store_user_data=True).from_disk(target / f"{name}.spacy").get_docs(spacy.blank("zh").vocab)}
        for name in splits
    }
    assert not (sources["train"] & sources["test-test"]) and not (sources["dev"] & sources["test-test"])


def run(module, *args, returncode=0):
    """`python -m benchmarks.MODULE ARGS` from the repository root, as project.yml runs it."""
    result = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == returncode, (result.stdout + result.stderr)[-3000:]
    return result.stdout if returncode == 0 else result.stderr


def build_report(metrics: Path, output: Path) -> str:
    run("report", "--metrics", metrics, "--output", output, "--notes", output.parent / "no-notes.md")
    return output.read_text(encoding="utf8")


def accuracy_table(markdown: str, corpus: str):
    """The rows of a corpus's accuracy table, by system name."""
    titles = {system.title: name for name, system in SYSTEMS.items()}
    return {titles[row["system"]]: row for row in tables(section(markdown, f"### {corpus}"))[0]}


def bold_number(cell: str) -> float:
    return float(cell.strip("*"))


def test_benchmark_smoke_run_writes_the_report(tmp_path):
    metrics = tmp_path / "metrics"
    out = run("accuracy", "demo", "--limit", "24", "--steps", "2", "--eval-frequency", "1", "--output", metrics, "--models", tmp_path / "models", "--data", tmp_path / "data")
    for system in ("crf_ner", "spacy_ner", "spacy_ner_cnn", "crfsuite"):
        result = json.loads((metrics / "demo" / f"{system}.json").read_text(encoding="utf8"))
        assert 0.0 <= result["tests"]["test"]["f"] <= 1.0
        assert result["tests"]["test"]["n_gold"] > 0 and result["train_seconds"] > 0
        assert f"demo {system}: dev F1" in out
        # Results are committed and combined across sessions: each says where and when it was measured.
        assert result["date"] == datetime.date.today().isoformat()
        assert "cores" in result["machine"] and "spacy " in result["versions"] and "torch " in result["versions"]
        if (ROOT / ".git").exists():
            assert re.fullmatch(r"[0-9a-f]{7,40}(\+changes)?", result["commit"])
    assert json.loads((metrics / "demo" / "spacy_ner_cnn.json").read_text(encoding="utf8"))["time_budget"] > 0
    models = tmp_path / "models" / "demo"
    texts = ROOT / "assets" / "demo" / "dev.jsonl"
    run("speed", models / "crf_ner" / "model-best", "--crfsuite", models / "crfsuite.pkl", "--texts", texts,
        "--repeats", "1", "--threads", "1", "--json", metrics / "speed.json")
    # A config is measured untrained: its network, not its weights, sets the cost.
    out = run("speed", ROOT / "configs" / "cpu_accuracy.cfg", "--texts", texts, "--repeats", "1", "--threads", "1")
    assert re.search(r"cpu_accuracy\.cfg  threads 1: [\d,]+ chars/s", out)
    run("scaling", models / "crf_ner" / "model-best", "--texts", texts, "--lengths", "100,300", "--chars-per-length", "600",
        "--threads", "1", "--plot", tmp_path / "scaling.png", "--json", metrics / "scaling.json")
    assert (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    out = run("seen_mentions", "demo", "crf_ner", "--models", tmp_path / "models", "--data", tmp_path / "data")
    assert "  dev: " in out and "crf_ner, test test: exact recall on seen / unseen mentions" in out
    report = build_report(metrics, tmp_path / "BENCHMARKS.md")
    # Every row and figure comes from a result file.
    rows = accuracy_table(report, "demo")
    assert set(rows) == {"crf_ner", "spacy_ner", "spacy_ner_cnn", "crfsuite"}
    for system, row in rows.items():
        result = json.loads((metrics / "demo" / f"{system}.json").read_text(encoding="utf8"))
        assert bold_number(row["F1"]) == round(100 * result["tests"]["test"]["f"], 2)
        assert float(row["dev F1"]) == round(100 * result["dev_f"], 2) and row["steps"] == str(result.get("steps", "—"))
    # The commands are printed in the form that runs them.
    assert "`python -m benchmarks.accuracy demo --limit 24 --steps 2" in section(report, "### demo")
    speed = json.loads((metrics / "speed.json").read_text(encoding="utf8"))
    speed_rows = tables(section(report, "## Speed and memory"))[0]
    assert [(r["model"], int(r["threads"])) for r in speed_rows] == [("crf_ner", 1), ("crfsuite", 1)]
    assert [int(r["chars/s"].replace(",", "")) for r in speed_rows] == [r["chars_per_second"] for r in speed["rows"]]
    scaling = json.loads((metrics / "scaling.json").read_text(encoding="utf8"))
    scaling_rows = tables(section(report, "## Scaling with document length"))[0]
    assert [int(r["length"]) for r in scaling_rows] == [100, 300]
    assert [float(r["ms/doc"]) for r in scaling_rows] == [r["ms_per_doc"] for r in scaling["rows"]]
    # A corpus without results has a section and no figures.
    assert "### ccks2019" in report and not tables(section(report, "### ccks2019"))


def test_recall_is_split_by_whether_training_holds_the_mention():
    """A mention counts as seen only with the same type and text: a name seen as
    another type is unseen, and a prediction must match span and type exactly."""
    nlp = spacy.blank("zh")

    def doc(text, *ents):
        d = nlp.make_doc(text)
        d.ents = [d.char_span(start, end, label=label) for start, end, label in ents]
        return d

    training = seen_mentions.mentions([doc("张三在北京", (0, 2, "PER"), (3, 5, "LOC"))])
    gold = [doc("张三和北京人", (0, 2, "PER"), (3, 5, "PER")), doc("去北京", (1, 3, "LOC"))]
    predicted = [doc("张三和北京人", (0, 2, "PER"), (3, 5, "LOC")), doc("去北京", (1, 2, "LOC"))]
    assert seen_mentions.seen_share(gold, training) == {"LOC": (1, 1), "PER": (1, 2)}
    assert seen_mentions.recall_by_seen(gold, predicted, training) == {
        ("LOC", True): (0, 1), ("PER", False): (0, 1), ("PER", True): (1, 1)}
    with pytest.raises(ValueError, match="not the gold docs' texts"):
        seen_mentions.recall_by_seen(gold, predicted[::-1], training)


def test_time_budget_stops_between_evaluations(tmp_path):
    """An evaluation interval can last minutes: a row trained for crf_ner's wall time must not get them on top.
    What the logger saw reaches the caller in the file it named, also when the budget stops training."""
    path = tmp_path / "training_log.json"
    path.write_text(json.dumps({"evaluations": [{"step": 600, "seconds": 1.0, "score": 0.9}], "last_step": 900}))
    log, finalize = timed_logger(time_budget=1e-9, log_path=str(path))(spacy.blank("zh"), stdout=io.StringIO(), stderr=io.StringIO())
    assert TrainingLog.from_disk(path) == TrainingLog()  # an earlier run's file is not read as this one's
    with pytest.raises(TimeBudgetReached) as stop:
        log(None)  # spaCy's call after a step without an evaluation
    assert stop.value.step == 0 and "last evaluation at step none" in str(stop.value)
    finalize()  # spaCy finalizes the logger on the way out of an exception too
    assert TrainingLog.from_disk(path) == TrainingLog(evaluations=[], last_step=0)


@pytest.mark.parametrize("patience,steps,stopped_by", [(1, 1, "patience"), (0, 4, "max_steps")])
def test_result_records_the_step_training_ended_on(tmp_path, monkeypatch, patience, steps, stopped_by):
    """Patience stops spaCy between evaluations: the row must say how far training went, not where it was last scored."""
    config = spacy.util.load_config(SYSTEMS["crf_ner"].config_path)
    config["training"]["patience"] = patience
    config.to_disk(tmp_path / "patient.cfg")
    monkeypatch.setitem(SYSTEMS, "crf_ner", dataclasses.replace(SYSTEMS["crf_ner"], config=str(tmp_path / "patient.cfg")))
    accuracy.main(["demo", "--limit", "24", "--steps", "4", "--eval-frequency", "2", "--systems", "crf_ner",
                   "--output", str(tmp_path / "metrics"), "--models", str(tmp_path / "models"), "--data", str(tmp_path / "data")])
    result = json.loads((tmp_path / "metrics" / "demo" / "crf_ner.json").read_text(encoding="utf8"))
    # With patience 1 the step after the first evaluation (step 0) already has no improvement.
    assert (result["steps"], result["stopped_by"]) == (steps, stopped_by)
    assert result["evaluations"][-1]["step"] == (0 if patience else 4)


def test_selection_rules_are_scored_on_the_half_they_did_not_see():
    gold = 10
    # Checkpoint 0 is right on every record; checkpoint 1 (the last) on half of each record's entities.
    counts = numpy.array([[[10, 10, gold]] * 6, [[5, 10, gold]] * 6])
    held = selection.held_out_scores(counts, {"best": [0, 1], "last": [1]}, halvings=5)
    assert len(held["best"]) == 10 and (held["best"] == 1.0).all() and (held["last"] == 0.5).all()
    # Dev noise: checkpoint 0 is right on records 0-2 and wrong on 3-5, checkpoint 1 the reverse. Whichever wins
    # on the selection half is the one that loses on the held-out half, so selecting does worse than not selecting.
    noisy = numpy.array([[[10, 10, gold]] * 3 + [[0, 10, gold]] * 3, [[0, 10, gold]] * 3 + [[10, 10, gold]] * 3])
    held = selection.held_out_scores(noisy, {"best": [0, 1], "last": [1]}, halvings=50)
    assert held["best"].max() <= 1 / 3 < held["last"].mean()
    # A tie goes to the later checkpoint, as spaCy's model-best does. Two records, so the halves are {0} and {1}:
    # selecting on record 0 ties and must pick checkpoint 1 (0.0 on record 1); selecting on record 1 picks checkpoint 0.
    tie_then_differ = numpy.array([[[5, 10, gold], [5, 10, gold]], [[5, 10, gold], [0, 10, gold]]])
    assert sorted(selection.held_out_scores(tie_then_differ, {"best": [0, 1]}, halvings=1)["best"]) == [0.0, 0.5]


def test_selection_counts_a_segmented_record_once():
    """Halving dev by segment would put parts of one record on both sides; counts are summed per record."""
    from spacy_medner.corpora.build import SOURCE_KEY

    nlp = spacy.blank("zh")
    gold = [nlp.make_doc(text) for text in ("患者头痛。", "服用阿司匹林。", "无发热。")]
    gold[0].set_ents([gold[0].char_span(2, 4, "SYMPTOM")])
    gold[1].set_ents([gold[1].char_span(2, 6, "DRUG")])
    for doc, (record, offset) in zip(gold, [("r1", 0), ("r1", 5), ("r2", 0)]):
        doc.user_data[SOURCE_KEY] = {"id": record, "offset": offset}
    predicted = [nlp.make_doc(doc.text) for doc in gold]
    predicted[0].set_ents([predicted[0].char_span(2, 4, "SYMPTOM")])
    predicted[2].set_ents([predicted[2].char_span(1, 3, "SYMPTOM")])
    assert selection.record_counts(gold, predicted).tolist() == [[1, 1, 2], [0, 1, 0]]


def test_checkpoints_are_refused_when_evaluations_score_averaged_weights(tmp_path):
    """With use_averages, spaCy evaluates the averaged weights but the logger would save the raw ones."""
    config = spacy.util.load_config(SYSTEMS["crf_ner"].config_path)
    config["training"]["optimizer"]["use_averages"] = True
    config.to_disk(tmp_path / "averaged.cfg")
    averaged_config = dataclasses.replace(SYSTEMS["crf_ner"], config=str(tmp_path / "averaged.cfg"))
    args = argparse.Namespace(seed=0, checkpoint_every=3, eval_frequency=3, steps=12, init_tok2vec=None)
    with pytest.raises(ValueError, match="use_averages = true"):
        accuracy.train_spacy(averaged_config, tmp_path / "data", tmp_path / "models", args)
    with pytest.raises(ValueError, match="use_averages = true"):
        accuracy.train_spacy(SYSTEMS["crf_ner_averaged"], tmp_path / "data", tmp_path / "models", args)
    assert not (tmp_path / "models").exists()


def test_checkpoints_hold_the_weights_each_evaluation_scored(tmp_path):
    """selection.py judges rules on checkpoints: the one saved at an evaluation step must score what that evaluation did."""
    args = ["--output", str(tmp_path / "metrics"), "--models", str(tmp_path / "models"), "--data", str(tmp_path / "data")]
    # 12 steps: enough for dev F1 to change between evaluations, so a checkpoint saved a step early would score differently.
    accuracy.main(["demo", "--limit", "24", "--steps", "12", "--eval-frequency", "3", "--checkpoint-every", "3",
                   "--systems", "crf_ner", *args])
    trained = json.loads((tmp_path / "metrics" / "demo" / "crf_ner.json").read_text(encoding="utf8"))
    selection.main(["demo", "--seeds", "0", "--every", "3", "--halvings", "3", *args])
    chosen = json.loads((tmp_path / "metrics" / "demo" / "selection.json").read_text(encoding="utf8"))
    seed0 = chosen["runs"][0]
    assert seed0["steps"] == [3, 6, 9, 12]
    evaluated = {e["step"]: e["score"] for e in trained["evaluations"]}
    assert len({round(evaluated[step], 4) for step in seed0["steps"]}) > 2
    for step, f in seed0["dev_f"].items():
        assert f == pytest.approx(evaluated[int(step)], abs=1e-4)
    assert set(seed0["held_out_f"]) == {"best of every 3 steps", "last"}
    report = build_report(tmp_path / "metrics", tmp_path / "BENCHMARKS.md")
    [row, mean] = tables(section(report, "## Model selection on dev"))[0]
    assert row["seed"] == "0" and mean["seed"] == "mean"
    assert row["dev F1 by step"] == ", ".join(f"{step}: {100 * f:.2f}" for step, f in seed0["dev_f"].items())
    for rule, f in seed0["held_out_f"].items():
        assert float(row[rule].split(" ")[0]) == float(mean[rule]) == round(100 * f, 2)


def test_result_provenance_is_taken_when_the_run_starts(tmp_path, monkeypatch):
    """A commit made while a long run trains must not be credited with its results."""
    commits = iter(["start", "later", "later"])
    monkeypatch.setattr(accuracy, "provenance", lambda: {"date": "2026-11-23", "machine": "m", "versions": "v", "commit": next(commits)})
    accuracy.main(["demo", "--limit", "24", "--steps", "2", "--eval-frequency", "1", "--systems", "crf_ner,crfsuite",
                   "--output", str(tmp_path / "metrics"), "--models", str(tmp_path / "models"), "--data", str(tmp_path / "data")])
    for system in ("crf_ner", "crfsuite"):
        assert json.loads((tmp_path / "metrics" / "demo" / f"{system}.json").read_text(encoding="utf8"))["commit"] == "start"


def test_converged_row_says_when_the_time_cap_stopped_it(tmp_path):
    metrics = tmp_path / "metrics"
    run("accuracy", "demo", "--limit", "24", "--systems", "spacy_ner_cnn_converged", "--time-cap", "0.001",
        "--output", metrics, "--models", tmp_path / "models", "--data", tmp_path / "data")
    result = json.loads((metrics / "demo" / "spacy_ner_cnn_converged.json").read_text(encoding="utf8"))
    # The cap is checked at every step, so training stops at the first one, long before 20,000 steps.
    assert result["stopped_by"] == "time cap" and len(result["evaluations"]) == 1 and result["steps"] < 20_000
    report = build_report(metrics, tmp_path / "BENCHMARKS.md")
    assert int(accuracy_table(report, "demo")["spacy_ner_cnn_converged"]["steps"]) == result["steps"]
    title = SYSTEMS["spacy_ner_cnn_converged"].title
    [said] = [line for line in section(report, "### demo").splitlines() if line.startswith(title) and "--time-cap" in line]
    assert f"step {result['steps']}" in said and f"step {result['best_step']}" in said


@pytest.mark.parametrize("system", [name for name, s in SYSTEMS.items() if s.pretrained])
def test_pretrained_row_needs_pretrained_weights(tmp_path, system):
    err = run("accuracy", "demo", "--systems", f"crf_ner,{system}", "--data", tmp_path / "data", "--output", tmp_path / "metrics",
              "--models", tmp_path / "models", returncode=2)
    assert f"{system} needs --init-tok2vec" in err
    assert not (tmp_path / "metrics").exists()


def _result(system, machine, **extra):
    per_type = {"DRUG": {"p": 0.5, "r": 0.5, "f": 0.5, "n_gold": 4}}
    return {
        # The form results recorded before the benchmarks ran as `python -m benchmarks.X`.
        "corpus": "demo", "system": system, "command": f"python benchmarks/accuracy.py demo --systems {system}",
        "date": "2026-11-23", "machine": machine, "versions": "spacy 3.8.18",
        "splits": {"note": "demo", "splits": {"test-test": {"records": 2, "ents_out": 4, "spans_out": 4}}},
        "dev_f": 0.6, "train_seconds": 10.0, "seconds_to_best": 9.0, "steps": 2,
        "tests": {"test": {"p": 0.5, "r": 0.5, "f": 0.5, "boundary_f": 0.75, "per_type": per_type}}, **extra,
    }


def _write_results(folder: Path, records) -> Path:
    """Result files as benchmarks.accuracy names them, under folder/<corpus>/; returns folder."""
    for record in records:
        path = folder / record["corpus"] / f"{record['system']}{'.seed%d' % record['seed'] if record.get('seed') else ''}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record), encoding="utf8")
    return folder


def test_report_lists_every_machine_and_prints_runnable_commands(tmp_path):
    """Results are committed and rebuilt into one report: each run's machine must show, once, and a command
    recorded as `python benchmarks/X.py` is printed as the `python -m benchmarks.X` that runs today."""
    metrics = _write_results(tmp_path / "results", [_result("crf_ner", "2 cores, EPYC A"), _result("crfsuite", "2 cores, EPYC B"),
                                                    _result("spacy_ner", "2 cores, EPYC A")])
    report = build_report(metrics, tmp_path / "BENCHMARKS.md")
    machines = report.split("- Machines:\n", 1)[1].split("\n- ", 1)[0]
    assert [line.strip("- ") for line in machines.splitlines()] == ["2 cores, EPYC A", "2 cores, EPYC B"]
    rows = accuracy_table(report, "demo")
    assert list(rows) == ["crf_ner", "spacy_ner", "crfsuite"]  # the declared order, ours first
    assert all(float(row["dev F1"]) == 60.0 and bold_number(row["F1"]) == 50.0 for row in rows.values())
    assert "python benchmarks/" not in report
    assert "`python -m benchmarks.accuracy demo --systems crfsuite`" in section(report, "### demo")


def test_report_refuses_figures_without_a_run(tmp_path):
    """A result file rebuilt from an older report's tables has no run behind it: the report names it and writes nothing."""
    metrics = _write_results(tmp_path / "results", [
        _result("crf_ner", "2 cores, EPYC A"), _result("crfsuite", "2 cores, EPYC B", recovered_from="BENCHMARKS.md at abc1234")])
    err = run("report", "--metrics", metrics, "--output", tmp_path / "BENCHMARKS.md", returncode=1)
    assert err.count("\n") == 1 and str(metrics / "demo" / "crfsuite.json") in err and "recovered_from" in err
    assert not (tmp_path / "BENCHMARKS.md").exists()


def test_committed_results_all_come_from_runs():
    report.report(ROOT / "benchmarks" / "results", ROOT / "no-notes.md")  # raises on a file without a run


def test_an_opt_in_variant_is_not_a_gap_but_a_baseline_is():
    runs = {"crf_ner": {}, "spacy_ner": {}}
    missing = report.not_measured(runs)
    assert {"spacy_ner_cnn", "spacy_ner_cnn_converged", "crfsuite"} == set(missing)
    assert not any(SYSTEMS[name].variant for name in missing)


def test_spacy_ner_baseline_shares_the_cpu_default_encoder_and_schedule():
    """The spacy_ner row claims crf_ner's encoder, batcher, optimizer and schedule:
    a change to configs/cpu_default.cfg must reach the baseline too."""
    ours = spacy.util.load_config(SYSTEMS["crf_ner"].config_path, interpolate=False)
    baseline = spacy.util.load_config(SYSTEMS["spacy_ner"].config_path, interpolate=False)
    assert baseline["components"]["ner"]["model"]["tok2vec"] == ours["components"]["crf_ner"]["model"]["encoder"]
    assert baseline["training"] == ours["training"]
    assert baseline["nlp"]["tokenizer"] == ours["nlp"]["tokenizer"] and baseline["nlp"]["batch_size"] == ours["nlp"]["batch_size"]


@pytest.mark.parametrize("system,averaged", [("crf_ner_words", False), ("crf_ner_words_averaged", True)])
def test_word_features_row_trains_the_shipped_word_feature_encoder(tmp_path, system, averaged):
    """The word-feature rows train configs/cpu_default.cfg with the encoder that configs/cpu_accuracy.cfg ships."""
    metrics, models = tmp_path / "metrics", tmp_path / "models"
    run("accuracy", "demo", "--limit", "24", "--steps", "2", "--eval-frequency", "1", "--systems", system,
        "--output", metrics, "--models", models, "--data", tmp_path / "data")
    result = json.loads((metrics / "demo" / f"{system}.json").read_text(encoding="utf8"))
    assert result["system"] == system and result["tests"]["test"]["n_gold"] > 0
    nlp = spacy.load(models / "demo" / system / "model-best")
    shipped = spacy.util.load_config(ROOT / "configs" / "cpu_accuracy.cfg", interpolate=False)
    tok2vec = nlp.config["components"]["crf_ner"]["model"]["encoder"]["tok2vec"]
    assert tok2vec == shipped["components"]["crf_ner"]["model"]["encoder"]["tok2vec"]
    assert tok2vec["@architectures"] == "spacy_medner.CharEmbed.v2" and tok2vec["word_width"] > 0
    assert nlp.config["training"]["optimizer"]["use_averages"] is averaged
    # An opt-in row: reported, with its figures.
    row = accuracy_table(build_report(metrics, tmp_path / "BENCHMARKS.md"), "demo")[system]
    assert bold_number(row["F1"]) == round(100 * result["tests"]["test"]["f"], 2)


@pytest.mark.parametrize("system,averaged", [("crf_ner_words_pretrained", False), ("crf_ner_words_pretrained_averaged", True)])
def test_words_pretrained_rows_start_from_word_feature_weights(tmp_path, system, averaged):
    """crf_ner_words_pretrained = both variants: CharEmbed.v2 in the trained model and
    the encoder loaded from `spacy pretrain` weights of the same shapes; the _averaged
    row adds use_averages and nothing else."""
    weights = pretrain_on_demo_texts(tmp_path, word_features())
    metrics, models = tmp_path / "metrics", tmp_path / "models"
    run("accuracy", "demo", "--limit", "24", "--steps", "2", "--eval-frequency", "1", "--systems", system,
        "--init-tok2vec", weights, "--output", metrics, "--models", models, "--data", tmp_path / "data")
    result = json.loads((metrics / "demo" / f"{system}.json").read_text(encoding="utf8"))
    assert result["init_tok2vec"] == str(weights) and result["tests"]["test"]["n_gold"] > 0
    config = spacy.load(models / "demo" / system / "model-best").config
    assert config["components"]["crf_ner"]["model"]["encoder"]["tok2vec"]["@architectures"] == "spacy_medner.CharEmbed.v2"
    assert config["paths"]["init_tok2vec"] == str(weights)
    assert config["training"]["optimizer"]["use_averages"] is averaged


def test_seed_option_writes_a_separate_run_and_report_shows_the_spread(tmp_path):
    metrics, models = tmp_path / "metrics", tmp_path / "models"
    run("accuracy", "demo", "--limit", "24", "--steps", "2", "--eval-frequency", "1", "--systems", "crf_ner", "--seed", "1",
        "--output", metrics, "--models", models, "--data", tmp_path / "data")
    seeded = json.loads((metrics / "demo" / "crf_ner.seed1.json").read_text(encoding="utf8"))
    assert seeded["seed"] == 1 and not (metrics / "demo" / "crf_ner.json").exists()
    assert seeded["command"].startswith("python -m benchmarks.accuracy demo ")
    assert spacy.load(models / "demo" / "crf_ner.seed1" / "model-best").config["system"]["seed"] == 1
    # Seed 0 stays the row of the tables; the spread of every seed gets its own table.
    records = []
    for seed, f, dev_f, best_step in ((0, 0.5, 0.6, 2), (1, 0.6, 0.65, 1), (2, 0.45, 0.7, 1)):
        record = _result("crf_ner", "2 cores, EPYC A", seed=seed, best_step=best_step)
        record["command"] += f" --seed {seed}" if seed else ""
        record["tests"]["test"]["f"], record["dev_f"] = f, dev_f
        records.append(record)
    report = build_report(_write_results(tmp_path / "results", records), tmp_path / "BENCHMARKS.md")
    [row] = accuracy_table(report, "demo").values()
    assert (float(row["dev F1"]), bold_number(row["F1"])) == (60.0, 50.0)
    [spread] = [t for t in tables(section(report, "### demo")) if "test F1 by seed" in t[0]]
    [row] = spread
    assert row["system"] == SYSTEMS["crf_ner"].title and int(row["seeds"]) == 3
    by_seed = re.findall(r"(\d+): ([\d.]+) \(dev ([\d.]+), step (\d+)\)", row["test F1 by seed"])
    assert by_seed == [("0", "50.00", "60.00", "2"), ("1", "60.00", "65.00", "1"), ("2", "45.00", "70.00", "1")]
    assert (float(row["mean"]), float(row["max − min"])) == (51.67, 15.0)
    # Each seed's command is printed, so a seed run can be reproduced from the report alone.
    assert "`python -m benchmarks.accuracy demo --systems crf_ner --seed 2`" in report


def test_target_verdict_goes_by_the_mean_of_the_seeds():
    """One lucky seed must not turn a missed target into a met one."""
    runs = [_result("crf_ner", "m", seed=seed) for seed in (0, 1)]
    runs[0]["tests"]["test"]["f"], runs[1]["tests"]["test"]["f"] = 0.825, 0.805
    verdict = report.target_verdict(runs, 82.0)
    assert verdict["f"] == {0: 82.5, 1: 80.5} and not verdict["met"]
    assert verdict["mean"] == pytest.approx(81.5) and verdict["missed_by"] == pytest.approx(0.5)


def test_variant_run_on_other_seeds_is_judged_by_its_own_seeds(tmp_path):
    """A variant compared on seeds 3 and 4 has no seed-0 row; its verdict must not call seed 3 "seed 0"."""
    records = [dict(_result("crf_ner", "2 cores, EPYC A"), corpus="ccks2019")]
    for seed, f in ((3, 0.83), (4, 0.82)):
        record = dict(_result("crf_ner_averaged", "2 cores, EPYC A", seed=seed), corpus="ccks2019")
        record["tests"]["test"]["f"] = f
        records.append(record)
    verdict = report.target_verdict(records[1:], 82.0)
    assert set(verdict["f"]) == {3, 4} and verdict["met"] and verdict["mean"] == pytest.approx(82.5)
    text = build_report(_write_results(tmp_path / "results", records), tmp_path / "BENCHMARKS.md")
    [line] = [line for line in section(text, "## Targets").splitlines() if "`crf_ner_averaged`" in line]
    assert "82.50" in line and "seed 0" not in line
    [spread] = [t for t in tables(section(text, "### ccks2019")) if "test F1 by seed" in t[0]]
    assert spread[0]["system"] == SYSTEMS["crf_ner_averaged"].title and spread[0]["test F1 by seed"].startswith("3: 83.00")


def test_averaged_row_evaluates_and_keeps_the_averaged_weights(tmp_path):
    metrics, models = tmp_path / "metrics", tmp_path / "models"
    run("accuracy", "demo", "--limit", "24", "--steps", "4", "--eval-frequency", "2", "--systems", "crf_ner_averaged",
        "--output", metrics, "--models", models, "--data", tmp_path / "data")
    result = json.loads((metrics / "demo" / "crf_ner_averaged.json").read_text(encoding="utf8"))
    assert result["tests"]["test"]["n_gold"] > 0
    nlp = spacy.load(models / "demo" / "crf_ner_averaged" / "model-last")
    assert nlp.config["training"]["optimizer"]["use_averages"] is True
    # The saved torch weights are the averages, not the last update's: they differ from a run without averaging.
    plain = tmp_path / "plain"
    run("accuracy", "demo", "--limit", "24", "--steps", "4", "--eval-frequency", "2", "--systems", "crf_ner",
        "--output", plain / "metrics", "--models", plain / "models", "--data", tmp_path / "data")
    raw = spacy.load(plain / "models" / "demo" / "crf_ner" / "model-last")
    averaged_crf = nlp.get_pipe("crf_ner").model.get_ref("decoder").shims[0]._model.state_dict()
    raw_crf = raw.get_pipe("crf_ner").model.get_ref("decoder").shims[0]._model.state_dict()
    assert any(not torch.allclose(averaged_crf[k], raw_crf[k]) for k in raw_crf)


def test_training_time_target_judges_every_seed_on_its_machine(tmp_path):
    """A fast seed 0 must not hide a seed that took over 30 minutes, and a time means little without its machine."""
    records = [dict(_result("crf_ner", machine, seed=seed), corpus="ccks2019", seconds_to_best=seconds)
               for seed, seconds, machine in ((0, 1225.0, "2 cores, EPYC A"), (1, 2339.0, "2 cores, EPYC B"))]
    assert report.minutes_to_best(records) == {0: pytest.approx(20.42, abs=0.01), 1: pytest.approx(38.98, abs=0.01)}
    targets = section(build_report(_write_results(tmp_path / "results", records), tmp_path / "BENCHMARKS.md"), "## Targets")
    [verdict, *seeds] = [line for line in targets.splitlines() if "minutes" in line]
    assert "missed" in verdict and "seed 1 of 2" in verdict
    assert ["20.4" in seeds[0] and "EPYC A" in seeds[0], "39.0" in seeds[1] and "EPYC B" in seeds[1]] == [True, True]


def test_crfsuite_has_no_seed_to_vary(tmp_path):
    err = run("accuracy", "demo", "--systems", "crf_ner,crfsuite", "--seed", "3", "--data", tmp_path / "data",
              "--output", tmp_path / "metrics", returncode=2)
    assert "crfsuite has no random seed" in err


def test_entity_scores_section_reports_the_measured_figures(tmp_path):
    """The calibration and cost tables hold the result files' numbers, and the
    CCKS2019 ECE target is judged on the one-temperature row."""
    from benchmarks.markdown import tables

    folder = tmp_path / "entity_scores"
    folder.mkdir()
    row = lambda ece: {"ece": ece, "brier": 0.1, "nll": 0.4, "review_share_98": 0.5, "review_share_95": 0.25}
    calibration = {
        "kind": "entity_calibration", "corpus": "ccks2019", "model": "m", "temperature": 1.5, "label_temperatures": {"药物": 1.4},
        "dev": {"n_entities": 10}, "command": "python -m benchmarks.entity_scores calibration m d t --corpus ccks2019",
        "test": {"n_entities": 9, "n_gold": 10, "precision": 0.8, "raw": row(0.09), "global": row(0.025), "per_label": row(0.031)},
    }
    speed = {"kind": "entity_scores_speed", "model": "configs/cpu_default.cfg", "n_texts": 3, "n_chars": 300, "threads": 1, "rounds": 3,
             "chars_per_s": {"viterbi_only": 1000.0, "with_scores": 900.0}, "time_ratio": 1.11, "command": "python -m benchmarks.entity_scores speed x"}
    (folder / "calibration_ccks2019.json").write_text(json.dumps(calibration), encoding="utf8")
    (folder / "speed_1thread.json").write_text(json.dumps(speed), encoding="utf8")
    text = "\n".join(report.entity_scores_section(tmp_path))
    cost, calibrated = tables(text)
    assert [r["chars/s"] for r in cost] == ["1,000", "900"]
    assert [r["ECE"] for r in calibrated] == ["0.0900", "0.0250", "0.0310"]
    assert "Target ECE ≤ 0.03 on CCKS2019 test: met" in text
    assert "≤ 1.25×: met" in text
