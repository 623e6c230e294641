import os

# Nothing in the tests may reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"

# Clinical-record-style sentences with the CCKS2019 labels, written for the tests.
TRAIN_DATA = [
    ("患者因直肠癌于我院行直肠癌根治术", [(3, 6, "疾病和诊断"), (10, 16, "手术")]),
    ("口服阿司匹林后复查血常规", [(2, 6, "药物"), (9, 12, "实验室检验")]),
    ("腹部CT示肝脏多发占位", [(0, 4, "影像检查"), (5, 7, "解剖部位")]),
    ("术后予奥沙利铂化疗", [(3, 7, "药物")]),
]


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state (python, numpy, torch), so
    its outcome cannot depend on which tests ran before it."""
    from thinc.api import fix_random_seed

    fix_random_seed(0)


def pretrain_on_demo_texts(folder: Path, overrides: dict = None) -> Path:
    """`spacy pretrain` with configs/cpu_default.cfg for one epoch over 40 demo
    texts; returns the saved weights (model0.bin)."""
    import srsly
    from spacy.training.pretrain import pretrain
    from spacy.util import load_config

    raw = folder / "raw.jsonl"
    texts = [line["text"] for line in srsly.read_jsonl(ROOT / "assets" / "demo" / "train.jsonl")][:40]
    srsly.write_jsonl(raw, [{"text": t} for t in texts])
    config = {"paths.raw_text": str(raw), "pretraining.max_epochs": 1, "pretraining.batcher.size": 1000, **(overrides or {})}
    (folder / "pretrain").mkdir()
    pretrain(load_config(ROOT / "configs" / "cpu_default.cfg", overrides=config, interpolate=True), folder / "pretrain", silent=True)
    return folder / "pretrain" / "model0.bin"


def shared_corpus(name: str) -> Path:
    path = SHARED / name / "raw"
    if not path.exists():
        pytest.skip(f"research corpus {name!r} not found at {path} (it lives in ../shared beside the checkout)")
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A tiny random BERT with a Chinese character vocabulary, saved offline."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny_bert")
    chars = sorted({c for text, _ in TRAIN_DATA for c in text} | set("的了在是有和中人上大小日月水火木金土病症痛热咳嗽"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [c.lower() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"] + list("0123456789")
    (path / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True, tokenize_chinese_chars=True)
    tokenizer.save_pretrained(str(path))
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )
    torch.manual_seed(0)  # the same random weights in every run
    BertModel(config).save_pretrained(str(path))
    return str(path)
