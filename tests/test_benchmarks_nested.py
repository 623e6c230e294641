"""benchmarks.nested: all-mention scoring, the budget it gives each system, and
the BENCHMARKS.md section benchmarks.report builds from its result files. The
report tests use small hand-written result files; no system is trained here."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Span

from benchmarks import nested, report
from benchmarks.markdown import section, tables

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Nested entities (CMeEE, all mentions)"


def _nested_doc(nlp):
    """右下肢疼痛: a symptom (0-5) over a body part (0-3), as the CMeEE converter stores it."""
    doc = nlp.make_doc("右下肢疼痛，服阿司匹林")
    doc.spans["sc"] = [Span(doc, 0, 5, "sym"), Span(doc, 0, 3, "bod"), Span(doc, 7, 11, "dru")]
    doc.ents = [Span(doc, 0, 5, "sym"), Span(doc, 7, 11, "dru")]
    return doc


def test_flat_prediction_is_scored_against_every_mention_and_its_ceiling_is_outer_over_all():
    nlp = spacy.blank("zh")
    gold = [_nested_doc(nlp)]
    ceiling = nested.flat_ceiling(gold)
    assert (ceiling["p"], ceiling["r"]) == (1.0, 2 / 3)
    assert ceiling["per_type"]["bod"]["r"] == 0.0 and ceiling["per_type"]["sym"]["r"] == 1.0
    # A span prediction that finds the inner body part scores it; doc.ents of the same doc could not hold it.
    predicted = nlp.make_doc(gold[0].text)
    predicted.spans["sc"] = [Span(predicted, 0, 3, "bod"), Span(predicted, 0, 5, "sym")]
    s = nested.score(nested.mentions(gold, nested.SPANS), nested.mentions([predicted], nested.SPANS))
    assert (s["p"], s["r"]) == (1.0, 2 / 3) and s["per_type"]["bod"]["f"] == 1.0
    assert nested.mentions([predicted], nested.FLAT) == set()


def test_span_max_length_is_read_from_the_span_config_not_from_the_corpus_readers(tmp_path):
    config = ROOT / "configs" / "test_nested_span.cfg"  # inside the repository: the source is shown relative to it
    config.write_text("[corpora.train]\nmax_length = 0\n\n[components.span_ner]\nfactory = \"span_ner\"\nmax_length = 24\n", encoding="utf8")
    try:
        assert nested.span_max_length(config) == (24, "configs/test_nested_span.cfg [components.span_ner] max_length")
    finally:
        config.unlink()
    assert nested.span_max_length(tmp_path / "absent.cfg")[0] == nested.DEFAULT_MAX_LENGTH


def test_every_trained_system_gets_the_clock_the_schedule_and_no_fgm(tmp_path):
    crf = nested.run_overrides(nested.NESTED_SYSTEMS["crf_ner"], tmp_path, tmp_path / "log.json", steps=250, evaluations=5,
                               budget=600.0, max_length=20)
    assert crf["components.crf_ner.fgm_epsilon"] == 0.0
    assert (crf["training.max_steps"], crf["training.optimizer.learn_rate.total_steps"], crf["training.eval_frequency"]) == (250, 250, 50)
    assert crf["training.logger.time_budget"] == 600.0 and crf["training.patience"] == 0
    spancat = nested.run_overrides(nested.NESTED_SYSTEMS["spancat"], tmp_path, tmp_path / "log.json", steps=40, evaluations=2,
                                   budget=600.0, max_length=20)
    assert spancat["components.spancat.suggester.max_size"] == 20
    assert not any("fgm" in key for key in spancat)
    # The overrides apply to the config as it is: spaCy builds the pipeline they describe.
    config = spacy.util.load_config(ROOT / nested.SPANCAT_CONFIG, overrides={k: v for k, v in spancat.items() if not k.startswith("training.logger")})
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    assert nlp.get_pipe("spancat").suggester is not None and config["components"]["spancat"]["suggester"]["max_size"] == 20


def test_steps_option():
    assert nested.parse_steps("crf_ner=400,spancat=40", ["crf_ner", "spancat"]) == {"crf_ner": 400, "spancat": 40}
    assert nested.parse_steps("300", ["crf_ner", "spancat"]) == {"crf_ner": 300, "spancat": 300}
    with pytest.raises(ValueError, match="spacy_ner=3"):
        nested.parse_steps("spacy_ner=3", ["crf_ner"])


def _result(corpus, system, f, per_type, **extra):
    test = {"p": f + 0.05, "r": f - 0.05, "f": f, "boundary_f": f, "n_gold": 10, "n_predicted": 10, "n_chars": 1000,
            "predict_seconds": 0.5, "chars_per_second": 2000, "per_type": per_type}
    if nested.NESTED_SYSTEMS[system].predicts == nested.FLAT:
        test["outer"] = {"p": 0.9, "r": 0.9, "f": 0.9}
    return {
        "corpus": corpus, "system": system, "seed": 0, "command": f"python -m benchmarks.nested {corpus} --systems {system}",
        "date": "2026-12-04", "machine": "2 cores, EPYC N", "versions": "spacy 3.8.18", "commit": "abc1234",
        "splits": {"note": "CMeEE-V2 dev, 80/20", "splits": {"test-test": {"records": 3, "ents_out": 8, "spans_out": 10}}},
        "flat_ceiling": {"test": {"r": 0.8, "f": 0.8889, "n_gold": 10, "n_outer": 8,
                                  "per_type": {"bod": {"r": 0.5, "n_gold": 4}, "sym": {"r": 1.0, "n_gold": 6}}}},
        "time_budget": 600.0, "train_seconds": 600.4, "steps": 250, "best_step": 200, "stopped_by": "time budget",
        "load_average": {"start": [2.5, 2.0, 1.0], "end": [2.0, 2.0, 1.0]}, "tests": {"test": test}, **extra,
    }


def _write(folder: Path, records) -> Path:
    (folder / "nested").mkdir(parents=True, exist_ok=True)
    for r in records:
        (folder / "nested" / f"{r['corpus']}_{r['system']}.json").write_text(json.dumps(r), encoding="utf8")
    return folder


def _per_type(bod, sym):
    return {"bod": {"p": bod, "r": bod, "f": bod, "n_gold": 4}, "sym": {"p": sym, "r": sym, "f": sym, "n_gold": 6}}


def _build(metrics: Path) -> str:
    out = metrics / "BENCHMARKS.md"
    subprocess.run([sys.executable, "-m", "benchmarks.report", "--metrics", metrics, "--output", out, "--notes", metrics / "none.md"],
                   check=True, cwd=ROOT, capture_output=True)
    return out.read_text(encoding="utf8")


def test_nested_section_holds_the_result_files_figures_and_judges_the_target(tmp_path):
    metrics = _write(tmp_path, [
        _result("cmeee", "crf_ner", 0.60, _per_type(0.0, 0.8)),
        _result("cmeee", "spancat", 0.55, _per_type(0.5, 0.6), span_max_length={"value": 16, "from": "configs/cmeee_span.cfg"},
                best_step=0, evaluations=[{"step": 0, "seconds": 80.0, "score": 0.0013}, {"step": 18, "seconds": 350.0, "score": 0.0}]),
        _result("cmeee", "span_ner", 0.6312, _per_type(0.7, 0.6)),
        _result("ccks2019", "crf_ner", 0.80, _per_type(0.8, 0.8)),
        _result("ccks2019", "span_ner", 0.79, _per_type(0.8, 0.8)),
    ])
    text = section(_build(metrics), HEADING)
    micro, per_type, ccks = tables(text)
    # Declared order (ours first), then the ceiling row; figures are the files'.
    assert [r["system"] for r in micro] == [nested.NESTED_SYSTEMS[n].title for n in ("span_ner", "crf_ner", "spancat")] + ["perfect flat prediction (ceiling)"]
    assert [r["F1"] for r in micro[:3]] == ["**63.12**", "**60.00**", "**55.00**"]
    assert micro[1]["outer F1"] == "90.00" and micro[0]["outer F1"] == "—"
    assert (micro[3]["R"], micro[3]["F1"]) == ("80.00", "88.89")
    assert [(r["type"], r["gold"], r["flat ceiling R"], r["span_ner"], r["crf_ner"]) for r in per_type] == [
        ("bod", "4", "50.00", "70.00", "0.00"), ("sym", "6", "100.00", "60.00", "80.00")]
    # 63.12 is 3.12 above crf_ner and 8.12 above spancat.
    assert "+3.12 over crf_ner (60.00), +8.12 over spancat (55.00): met." in text
    assert "Not measured in this run: character CRF" in text
    # A kept model that is the untrained one is said, with the dev scores that made it so.
    assert "spaCy `spancat`, same encoder: no later dev evaluation beat the untrained model's (0.13 at step 0, 0.00 at step 18)" in text
    assert "every n-gram of 1 to 16 characters (configs/cmeee_span.cfg)" in text
    assert [r["F1"] for r in ccks] == ["**79.00**", "**80.00**"] and "span_ner − crf_ner: -1.00 F1." in text
    assert "`python -m benchmarks.nested cmeee --systems span_ner`" in text


def test_missed_target_says_by_how_much_and_nested_runs_are_not_accuracy_rows(tmp_path):
    metrics = _write(tmp_path, [_result("cmeee", "crf_ner", 0.60, _per_type(0.0, 0.8)),
                                _result("cmeee", "span_ner", 0.615, _per_type(0.5, 0.7))])
    markdown = _build(metrics)
    text = section(markdown, HEADING)
    assert "+1.50 over crf_ner (60.00): missed by 1.50; spancat not measured." in text
    assert "### CCKS2019 (flat): what the span decoder costs on flat data\n\nNot measured in this run." in text
    # benchmarks.accuracy's cmeee section does not read benchmarks.nested's crf_ner as its own row.
    assert not tables(section(markdown, "### cmeee"))


def test_report_refuses_a_nested_result_of_an_undeclared_system(tmp_path):
    metrics = _write(tmp_path, [_result("cmeee", "crf_ner", 0.6, _per_type(0.0, 0.8))])
    bad = _result("cmeee", "crf_ner", 0.6, _per_type(0.0, 0.8))
    bad["system"] = "w2ner"
    (metrics / "nested" / "cmeee_w2ner.json").write_text(json.dumps(bad), encoding="utf8")
    with pytest.raises(ValueError, match="cmeee_w2ner.json: unknown system 'w2ner'"):
        report.report(metrics, tmp_path / "none.md")


def test_runner_scores_the_character_crf_on_the_demo_corpus(tmp_path):
    """The untrained path end to end (the character CRF needs no budget): a result file with
    all-mention scores, the flat ceiling and the provenance, that the report renders."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.nested", "demo", "--systems", "crfsuite", "--limit", "24",
                             "--output", tmp_path / "nested", "--models", tmp_path / "models", "--data", tmp_path / "data"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / "nested" / "demo_crfsuite.json").read_text(encoding="utf8"))
    test = data["tests"]["test"]
    assert test["n_gold"] == data["flat_ceiling"]["test"]["n_gold"] > 0 and 0.0 <= test["f"] <= 1.0
    assert test["chars_per_second"] > 0 and data["machine"] and data["torch_threads"] == 1
    assert "demo crfsuite: test all-mention P/R/F" in result.stdout


def test_runner_refuses_unknown_systems_before_any_work(tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmarks.nested", "demo", "--systems", "crf_ner,w2ner", "--data", tmp_path / "data"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "unknown ['w2ner']" in result.stderr and not (tmp_path / "data").exists()
