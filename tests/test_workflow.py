"""The project's workflows end to end on a user's own files: `all` on a
ccks2019-format corpus given by absolute paths outside the project, and
`all-transformer` on a tiny random BERT from a local directory, each through
convert, train, evaluate, package, evaluate-package (the wheel installed and
scored in a fresh process) and visualize.

The project files (project.yml, configs/, scripts/) are copied into a fresh
directory so that nothing is written into the checkout. The only change to a
shipped config is the schedule (eval_frequency and warmup fit the tiny budget,
so that model-best is a trained model; FGM off in the CPU test, to halve the
step time); the budget itself goes through the project's own vars, as a user
passes it.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from spacy.util import load_config

from spacy_medner.display import label_colors

from .conftest import ROOT, TRAIN_DATA


# The demo's labels renamed to ones displaCy and the palette do not know, as a
# hospital's own annotation guide would name them.
OWN_LABELS = {"疾病和诊断": "诊断", "解剖部位": "部位", "药物": "用药", "实验室检验": "化验", "手术": "术式", "影像检查": "影像"}


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def demo_as_ccks2019(path: Path, records: List[Dict]) -> None:
    """Write doccano-style demo records in CCKS 2019's format (JSON lines,
    end-exclusive offsets), as the official files come, with our own labels."""
    lines = [
        {
            "originalText": record["text"],
            "entities": [
                {"label_type": OWN_LABELS[label], "start_pos": start, "end_pos": end} for start, end, label in record["label"]
            ],
        }
        for record in records
    ]
    path.write_text("".join(srsly.json_dumps(line) + "\n" for line in lines), encoding="utf8")


def copy_project(destination: Path) -> Path:
    destination.mkdir()
    shutil.copy(ROOT / "project.yml", destination / "project.yml")
    for folder in ("configs", "scripts"):
        shutil.copytree(ROOT / folder, destination / folder)
    return destination


def write_config(project: Path, source: str, name: str, steps: int, warmup: int, extra: Dict = None) -> str:
    """A shipped config whose evaluation falls on the last step of the tiny budget."""
    overrides = {"training.eval_frequency": steps, "training.optimizer.learn_rate.warmup_steps": warmup, **(extra or {})}
    config = load_config(project / source, overrides=overrides, interpolate=False)
    config.to_disk(project / "configs" / name)
    return f"configs/{name}"


def run_project(project: Path, target: str, variables: Dict[str, object]) -> subprocess.CompletedProcess:
    args = [f"--vars.{key}={value}" for key, value in variables.items()]
    # Run from elsewhere: the project directory is an argument, as for a user outside the checkout.
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", target, str(project), *args],
        cwd=project.parent, env=ENV, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, f"spacy project run {target} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def uninstall(package: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", package], capture_output=True)


def entity_colors(html: str) -> Dict[str, str]:
    """label → background colour of every entity displaCy rendered."""
    colors: Dict[str, str] = {}
    marks = re.findall(r'<mark class="entity" style="background: ([^;]+);.*?<span[^>]*>([^<]+)</span>', html, re.S)
    for background, shown in marks:
        # visualize --scores shows "LABEL 0.93": each entity's probability, in its label's colour.
        label, score = re.fullmatch(r"(.+?)(?: ([01]\.\d\d))?", shown.strip()).groups()
        assert colors.setdefault(label, background) == background, f"{label} drawn in two colours"
    return colors


def check_finished_project(project: Path, package: str, dev: Path) -> Dict[str, str]:
    """Every output of the workflow is there and consistent; returns the HTML's colours."""
    metrics = srsly.read_json(project / "metrics" / "dev" / "metrics.json")
    packaged = srsly.read_json(project / "metrics" / "dev-package" / "metrics.json")
    for key in ("ents_p", "ents_r", "ents_f", "ents_per_type", "temperature", "calibration"):
        assert metrics[key] == packaged[key], key
    assert (project / "metrics" / "dev" / "reliability.png").exists()
    wheels = list((project / "packages").glob(f"*/dist/{package}-0.1.0-py3-none-any.whl"))
    assert len(wheels) == 1, list((project / "packages").rglob("*.whl"))
    html = (project / "visualize" / "ents.html").read_text(encoding="utf8")
    nlp = spacy.blank("zh")
    texts = [doc.text for doc in DocBin().from_disk(project / "corpus" / "dev.spacy").get_docs(nlp.vocab)]
    # Rendered from the converted dev set (not the raw file): its texts, less the
    # label names inside entities, the markup and displaCy's indentation.
    rendered = re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", re.sub(r"<span[^>]*>[^<]*</span>", "", html)))
    assert all(re.sub(r"\s+", "", text) in rendered for text in texts)
    # The lock records the user's absolute paths as the convert step's inputs.
    lock = srsly.read_yaml(project / "project.lock")
    assert Path(lock["convert"]["deps"][1]["path"]) == dev
    assert re.search(r"<span[^>]*>[^<]+ [01]\.\d\d</span>", html), "no entity shows its probability"
    return entity_colors(html)


@pytest.mark.slow
def test_all_on_a_ccks2019_corpus_given_by_absolute_paths(tmp_path):
    """The README's own-corpus command, in a format whose raw file visualize
    could not read, with files outside the project and labels of its own,
    through every step."""
    records = list(srsly.read_jsonl(ROOT / "assets" / "demo" / "train.jsonl"))[:24]
    data = tmp_path / "hospital" / "export"
    data.mkdir(parents=True)
    demo_as_ccks2019(data / "train.txt", records)
    demo_as_ccks2019(data / "dev.txt", records[:12])  # seen in training: a tiny budget can fit them
    project = copy_project(tmp_path / "project")
    steps = 40
    # configs/cpu_fast.cfg, the speed lever for archives: packaged, installed and loaded here
    # (evaluate-package), as the CI's `all` run does for cpu_default.cfg.
    config = write_config(
        project, "configs/cpu_fast.cfg", "tiny_budget.cfg", steps, warmup=5, extra={"components.crf_ner.fgm_epsilon": 0.0}
    )
    package = "zh_test_workflow"
    try:
        run_project(project, "all", {
            "format": "ccks2019", "train": data / "train.txt", "dev": data / "dev.txt",
            "config": config, "max_steps": steps, "name": "test_workflow",
        })
        colors = check_finished_project(project, package, data / "dev.txt")
    finally:
        uninstall(package)
    trained = srsly.read_json(project / "metrics" / "dev" / "metrics.json")
    assert trained["ents_f"] > 0.5, trained  # model-best is the trained model, not step 0's
    labels = sorted({OWN_LABELS[label] for record in records for _, _, label in record["label"]})  # the model's
    assert len(colors) >= 3 and set(colors) <= set(labels), colors
    assert colors == {label: label_colors(labels)[label] for label in colors}  # not displaCy's grey
    assert len(set(colors.values())) == len(colors), colors


@pytest.mark.slow
def test_all_transformer_on_a_local_tiny_bert_through_packaging(tmp_path, tiny_bert):
    """`all-transformer` is `all` with the transformer config, name and budget:
    it ends in the same package, evaluate-package and visualize steps, and the
    installed package predicts with the weights directory gone."""
    bert = tmp_path / "weights" / "tiny-bert"
    shutil.copytree(tiny_bert, bert)
    data = tmp_path / "data"
    data.mkdir()
    records = [{"text": text, "label": [[s, e, label] for s, e, label in ents]} for text, ents in TRAIN_DATA]
    srsly.write_jsonl(data / "train.jsonl", records * 4)
    srsly.write_jsonl(data / "dev.jsonl", records)
    project = copy_project(tmp_path / "project")
    steps = 6
    config = write_config(project, "configs/bert_bigru_mha_crf.cfg", "tiny_bert.cfg", steps, warmup=2)
    package = "zh_test_workflow_trf"
    try:
        run_project(project, "all-transformer", {
            "train": data / "train.jsonl", "dev": data / "dev.jsonl",
            "transformer_config": config, "transformer_name": bert, "transformer_steps": steps,
            "name": "test_workflow_trf",
        })
        check_finished_project(project, package, data / "dev.jsonl")
        # The transformer came from the local directory, through the configs' [paths] variable.
        trained = load_config(project / "training" / "model-best" / "config.cfg")
        assert trained["paths"]["transformer_name"] == str(bert)
        assert trained["training"]["max_steps"] == steps
        shutil.rmtree(bert)
        script = f"import spacy; nlp = spacy.load({package!r}); print(nlp.pipe_names, len(nlp('{TRAIN_DATA[0][0]}')))"
        loaded = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=ENV, capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        assert loaded.stdout.startswith("['transformer', 'crf_ner']"), loaded.stdout
    finally:
        uninstall(package)



@pytest.mark.slow
def test_self_train_ccks2019_on_a_folder_in_ccks2019s_layout(tmp_path):
    """`self-train-ccks2019` as a user runs it on their copy of CCKS 2019
    (vars.ccks2019_dir): the calibrated model pseudo-labels every unlabelled
    report, the folder of gold + pseudo-labels is what the second model
    trains on, and both models are scored on the official test file."""
    records = list(srsly.read_jsonl(ROOT / "assets" / "demo" / "train.jsonl"))
    raw = tmp_path / "ccks2019" / "raw"
    raw.mkdir(parents=True)
    demo_as_ccks2019(raw / "subtask1_training_part1.txt", records[:30])
    demo_as_ccks2019(raw / "subtask1_training_part2.txt", records[30:40])
    demo_as_ccks2019(raw / "subtask1_test_set_with_answer.json", records[:12])
    unlabelled = [record["text"] for record in records[40:60]]
    (raw / "subtask2_unlabeled.txt").write_text("\n".join(unlabelled) + "\n", encoding="utf8")
    project = copy_project(tmp_path / "project")
    steps = 40
    config = write_config(
        project, "configs/cpu_fast.cfg", "tiny_budget.cfg", steps, warmup=5, extra={"components.crf_ner.fgm_epsilon": 0.0}
    )
    run_project(project, "self-train-ccks2019", {
        "ccks2019_dir": raw, "config": config, "ccks2019_steps": steps, "self_min_prob": 0.6, "max_length": 500,
    })
    nlp = spacy.blank("zh")
    pseudo = list(DocBin().from_disk(project / "corpus" / "ccks2019" / "self" / "pseudo.spacy").get_docs(nlp.vocab))
    assert [doc.text for doc in pseudo] == unlabelled  # every report, none cut (max_length 500)
    assert sum(len(doc.ents) for doc in pseudo) > 0, "the calibrated model kept no entity"
    gold = DocBin().from_disk(project / "corpus" / "ccks2019" / "self" / "gold.spacy")
    assert len(gold) == len(DocBin().from_disk(project / "corpus" / "ccks2019" / "train.spacy")) > 0
    calibrated = spacy.load(project / "training" / "ccks2019" / "model-calibrated")
    assert calibrated.get_pipe("crf_ner").cfg["temperature"] != 1.0  # fitted on dev, not the default
    trained = load_config(project / "training" / "ccks2019-self" / "model-best" / "config.cfg")
    assert trained["paths"]["train"] == "corpus/ccks2019/self"  # gold and pseudo-labels, one spaCy corpus
    for name in ("ccks2019-test.json", "ccks2019-self-test.json"):
        scores = srsly.read_json(project / "metrics" / name)
        assert scores["ents_f"] is not None and 0 <= scores["ents_f"] <= 1, name

def write_brat(folder: Path, records: List[Dict]) -> None:
    folder.mkdir(parents=True)
    for i, record in enumerate(records):
        (folder / f"r{i}.txt").write_text(record["text"], encoding="utf8")
        lines = [
            f"T{j}\t{label} {start} {end}\t{record['text'][start:end]}" for j, (start, end, label) in enumerate(record["label"], 1)
        ]
        (folder / f"r{i}.ann").write_text("\n".join(lines) + "\n", encoding="utf8")


def write_conll(path: Path, records: List[Dict]) -> None:
    sentences = []
    for record in records:
        tags = ["O"] * len(record["text"])
        for start, end, label in record["label"]:
            tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
        sentences.append("\n".join(f"{char}\t{tag}" for char, tag in zip(record["text"], tags)))
    path.write_text("\n\n".join(sentences) + "\n", encoding="utf8")


@pytest.mark.parametrize("corpus_format", ["brat", "conll"])
def test_convert_reads_folders_and_files_by_absolute_path(tmp_path, corpus_format):
    """The first step of `all` on a brat folder or CoNLL files outside the
    project: every entity arrives in corpus/*.spacy, and the lock hashes the
    folder (so a changed .ann file reruns the conversion)."""
    records = list(srsly.read_jsonl(ROOT / "assets" / "demo" / "dev.jsonl"))[:10]
    data = tmp_path / "annotations"
    if corpus_format == "brat":
        train, dev = data / "train", data / "dev"
        write_brat(train, records)
        write_brat(dev, records[:4])
    else:
        data.mkdir()
        train, dev = data / "train.conll", data / "dev.conll"
        write_conll(train, records)
        write_conll(dev, records[:4])
    project = copy_project(tmp_path / "project")
    run_project(project, "convert", {"format": corpus_format, "train": train, "dev": dev})
    vocab = spacy.blank("zh").vocab
    converted = list(DocBin().from_disk(project / "corpus" / "train.spacy").get_docs(vocab))
    assert [doc.text for doc in converted] == [record["text"] for record in records]
    assert [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in converted] == [
        [tuple(entity) for entity in sorted(record["label"])] for record in records
    ]
    lock = srsly.read_yaml(project / "project.lock")
    assert [Path(dep["path"]) for dep in lock["convert"]["deps"]] == [train, dev]
    assert all(dep["md5"] for dep in lock["convert"]["deps"])
