"""Entity-probability calibration and the evaluation report, on the pinned
pipeline (tests/fixtures/pinned) and the demo dev texts."""
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
from spacy.tokens import DocBin

from spacy_medner.calibration import brier, ece, reliability_bins, review_share
from spacy_medner.corpora.convert import convert

ROOT = Path(__file__).resolve().parents[1]
PINNED = ROOT / "tests" / "fixtures" / "pinned" / "crf_bioes"


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "spacy_medner", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dev") / "dev.spacy"
    docbin, _, _ = convert("doccano", [ROOT / "assets" / "demo" / "dev.jsonl"])
    docbin.to_disk(path)
    return path


def test_metrics_on_a_hand_computed_case():
    probs = numpy.array([0.95, 0.9, 0.85, 0.3, 0.2])
    correct = numpy.array([True, True, False, True, False])
    # Bins: (0.8, 0.9] holds 0.85 and 0.9; (0.9, 1] holds 0.95; (0.2, 0.3] holds 0.3; (0.1, 0.2] holds 0.2.
    expected_ece = (2 * abs(0.5 - 0.875) + abs(1 - 0.95) + abs(1 - 0.3) + abs(0 - 0.2)) / 5
    assert ece(probs, correct) == pytest.approx(expected_ece)
    assert sum(b["count"] for b in reliability_bins(probs, correct)) == 5
    assert brier(probs, correct) == pytest.approx(numpy.mean((probs - correct) ** 2))
    # Checking the 3 least confident (0.2, 0.3, 0.85) leaves 0.9 and 0.95, both right.
    assert review_share(probs, correct) == pytest.approx(3 / 5)
    assert review_share(numpy.array([0.5, 0.6]), numpy.array([True, True])) == 0.0


def test_calibrate_keeps_entities_and_saves_the_temperature(dev, tmp_path):
    out = tmp_path / "calibrated"
    result = cli("calibrate", PINNED, dev, "--output", out)
    assert result.returncode == 0, result.stderr
    raw, calibrated = spacy.load(PINNED), spacy.load(out)
    temperature = calibrated.get_pipe("crf_ner").cfg["temperature"]
    assert temperature != 1.0 and 0.05 <= temperature <= 20
    report = srsly.read_json(out / "calibration.json")
    assert report["after"]["nll"] <= report["before"]["nll"]
    texts = [doc.text for doc in DocBin().from_disk(dev).get_docs(raw.vocab)][:30]
    before, after = list(raw.pipe(texts)), list(calibrated.pipe(texts))
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in before] == [[(e.start, e.end, e.label_) for e in d.ents] for d in after]
    scores_before = [p for d in before for p in d.spans["crf_ner"].attrs["scores"]]
    scores_after = [p for d in after for p in d.spans["crf_ner"].attrs["scores"]]
    assert len(scores_before) == len(scores_after) > 10 and scores_before != scores_after


def test_evaluate_writes_metrics_and_plots(dev, tmp_path):
    out = tmp_path / "report"
    result = cli("evaluate", PINNED, dev, "--output", out)
    assert result.returncode == 0, result.stderr
    metrics = srsly.read_json(out / "metrics.json")
    assert {"ents_p", "ents_r", "ents_f", "ents_per_type", "calibration"} <= set(metrics)
    calibration = metrics["calibration"]
    assert calibration["n_entities"] > 10 and 0 <= calibration["ece"] <= 1
    assert sum(b["count"] for b in calibration["reliability"]) == calibration["n_entities"]
    # The threshold curve starts at every entity, i.e. the plain precision and recall.
    assert calibration["threshold_curve"][0]["precision"] == pytest.approx(metrics["ents_p"], abs=1e-6)
    assert calibration["threshold_curve"][0]["recall"] == pytest.approx(metrics["ents_r"], abs=1e-6)
    for png in ("reliability.png", "threshold.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, dev):
    folder = tmp_path_factory.mktemp("bad")
    nlp = spacy.blank("zh")
    nlp.to_disk(folder / "no_crf_ner")
    DocBin(docs=[nlp.make_doc("无实体的文本")]).to_disk(folder / "no_entities.spacy")
    (folder / "notes.txt").write_text("not a docbin", encoding="utf8")
    return folder


@pytest.mark.parametrize(
    "command,args,message",
    [
        ("evaluate", ["{pinned}", "{dev}", "--threshold", "1.5"], "--threshold must be a probability in [0, 1]"),
        ("calibrate", ["{bad}/no_crf_ner", "{dev}"], "has no crf_ner component"),
        ("evaluate", ["{bad}/no_crf_ner", "{dev}"], "has no crf_ner component"),
        ("calibrate", ["{pinned}", "{bad}/notes.txt"], "not a spaCy DocBin"),
        ("calibrate", ["{pinned}", "{bad}/no_entities.spacy"], "no gold entities"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_no_output(command, args, message, bad_inputs, dev, tmp_path):
    out = tmp_path / "out"
    args = [a.format(pinned=PINNED, dev=dev, bad=bad_inputs) for a in args]
    result = cli(command, *args, "--output", out)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not out.exists() and not list(tmp_path.glob(".out*"))
