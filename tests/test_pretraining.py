"""Domain pretraining: raw text → spacy pretrain → init_tok2vec fills crf_ner's encoder."""
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import srsly
from spacy.training.initialize import init_nlp
from spacy.util import load_config

from spacy_medner.ml.lazy_torch import torch_module

from .conftest import pretrain_on_demo_texts

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "cpu_default.cfg"
# The word-feature encoder that configs/cpu_accuracy.cfg ships, as overrides of the default.
WORD_FEATURES = {
    f"components.crf_ner.model.encoder.tok2vec.{key}": value
    for key, value in load_config(ROOT / "configs" / "cpu_accuracy.cfg", interpolate=False)["components"]["crf_ner"]["model"]["encoder"]["tok2vec"].items()
}


def test_texts_command_writes_pretraining_jsonl(tmp_path):
    raw = tmp_path / "notes.txt"
    raw.write_text("\ufeff患者腹部CT示肝脏多发占位。\n\n复查血常规。" + "口服阿司匹林。" * 100 + "\n", encoding="utf8")
    out = tmp_path / "raw.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "spacy_medner", "texts", "plain", str(raw), "-o", str(out), "--max-length", "50"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    texts = [line["text"] for line in srsly.read_jsonl(out)]
    assert texts[0] == "患者腹部CT示肝脏多发占位。"
    assert all(len(t) <= 50 for t in texts) and "".join(texts[1:]) == "复查血常规。" + "口服阿司匹林。" * 100


def encoder_params(model):
    return {(node.id, name): node.get_param(name).copy() for node in model.walk() for name in node.param_names}


# The word-feature encoder has a third hash table and a wider projection, so its
# pretrained weights must come from `spacy pretrain` run with the same overrides.
@pytest.mark.parametrize("encoder", [{}, WORD_FEATURES], ids=["char_embed_v1", "char_embed_v2_words"])
def test_pretrained_weights_initialise_the_encoder(tmp_path, encoder):
    weights = pretrain_on_demo_texts(tmp_path, encoder)
    assert weights.exists()

    from spacy_medner.corpora.convert import convert

    for split in ("train", "dev"):
        docbin, _, _ = convert("doccano", [ROOT / "assets" / "demo" / f"{split}.jsonl"])
        docbin.to_disk(tmp_path / f"{split}.spacy")
    paths = {"paths.train": str(tmp_path / "train.spacy"), "paths.dev": str(tmp_path / "dev.spacy"), **encoder}
    plain = init_nlp(load_config(CONFIG, overrides=paths, interpolate=False))
    pretrained = init_nlp(load_config(CONFIG, overrides={**paths, "paths.init_tok2vec": str(weights)}, interpolate=False))
    encoder = pretrained.get_pipe("crf_ner").model.get_ref("encoder")
    # The encoder holds exactly the saved weights: load them into a fresh copy and compare.
    reference = plain.get_pipe("crf_ner").model.get_ref("encoder")
    table_before = reference.get_ref("tok2vec").get_ref("embed_0").get_param("E").copy()
    reference.from_bytes(weights.read_bytes())
    assert not numpy.array_equal(table_before, reference.get_ref("tok2vec").get_ref("embed_0").get_param("E"))
    for a, b in zip(encoder.walk(), reference.walk()):
        for name in a.param_names:
            assert numpy.array_equal(a.get_param(name), b.get_param(name))
    torch_a = torch_module(encoder.get_ref("sequence_encoder")).state_dict()
    torch_b = torch_module(reference.get_ref("sequence_encoder")).state_dict()
    assert all(torch_a[k].equal(torch_b[k]) for k in torch_a)
