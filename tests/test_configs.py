"""Every shipped config trains (a few steps), saves and reloads. Transformer
configs run on the tiny offline BERT in place of their hub model."""
from pathlib import Path

import pytest
import spacy
from spacy.cli.train import train
from spacy.util import load_config

from spacy_medner.corpora.convert import convert

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.cfg"))


@pytest.fixture(scope="module")
def demo_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    for split in ("train", "dev"):
        docbin, _, _ = convert("doccano", [ROOT / "assets" / "demo" / f"{split}.jsonl"], max_length=128)
        docbin.to_disk(out / f"{split}.spacy")
    return out


def test_configs_exist():
    names = {c.stem for c in CONFIGS}
    assert {"cpu_default", "bert_bigru_mha_crf", "roberta_mha_crf", "ptm_fc_crf"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_trains_and_reloads(config, demo_corpus, tiny_bert, tmp_path):
    overrides = {
        "paths.train": str(demo_corpus / "train.spacy"),
        "paths.dev": str(demo_corpus / "dev.spacy"),
        "training.max_steps": 4,
        "training.eval_frequency": 2,
        "training.optimizer.learn_rate.warmup_steps": 1,
    }
    if "transformer" in load_config(config)["nlp"]["pipeline"]:
        overrides["components.transformer.model.name"] = tiny_bert
        overrides["components.transformer.model.get_spans.window"] = 32
        overrides["components.transformer.model.get_spans.stride"] = 24
        overrides["components.crf_ner.model.encoder.attention_heads"] = 4  # the tiny BERT is 32 wide
    train(config, tmp_path, overrides=overrides)
    nlp = spacy.load(tmp_path / "model-last")
    text = "患者因直肠癌于我院行直肠癌根治术，术后予奥沙利铂化疗。" * 20  # longer than any window
    assert len(nlp(text)) == len(text)
    ner = next(name for name in ("crf_ner", "span_ner") if name in nlp.pipe_names)
    assert nlp.get_pipe(ner).labels


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_warms_up_decays_and_clips(config):
    loaded = load_config(config)
    optimizer = loaded["training"]["optimizer"]
    assert optimizer["learn_rate"]["@schedules"] == "warmup_linear.v1"
    assert optimizer["learn_rate"]["warmup_steps"] > 0
    assert optimizer["grad_clip"] > 0
    if "transformer" in loaded["components"]:
        # Averages would not reach the transformer's weights (the config says why).
        assert optimizer["use_averages"] is False


def test_accuracy_config_is_the_default_plus_the_benchmarked_recipe():
    """configs/cpu_accuracy.cfg claims the figures of the benchmark row
    crf_ner_words_pretrained_averaged, which trains cpu_default.cfg with these
    overrides: any other difference would make that claim false."""
    accuracy = load_config(ROOT / "configs" / "cpu_accuracy.cfg", interpolate=False)
    # Word features are the encoder's tok2vec section (the benchmark rows read it from this file).
    tok2vec = accuracy["components"]["crf_ner"]["model"]["encoder"]["tok2vec"]
    recipe = {**{f"components.crf_ner.model.encoder.tok2vec.{key}": value for key, value in tok2vec.items()},
              "training.optimizer.use_averages": True}
    default_plus_recipe = load_config(ROOT / "configs" / "cpu_default.cfg", overrides=recipe, interpolate=False)
    assert accuracy == default_plus_recipe
    assert load_config(ROOT / "configs" / "cpu_default.cfg")["training"]["optimizer"]["use_averages"] is False


def test_factory_default_builds_the_shipped_default_network():
    """`nlp.add_pipe("crf_ner")` and configs/cpu_default.cfg mean the same network."""
    default = spacy.blank("zh")
    default.add_pipe("crf_ner")
    shipped = spacy.blank("zh")
    shipped.add_pipe("crf_ner", config={"model": load_config(ROOT / "configs" / "cpu_default.cfg")["components"]["crf_ner"]["model"]})
    assert default.config["components"]["crf_ner"]["model"] == shipped.config["components"]["crf_ner"]["model"]


def test_cpu_fast_is_cpu_default_without_attention():
    """configs/cpu_fast.cfg is the speed lever of BENCHMARKS.md: the same
    recipe with the attention layer left out, nothing else."""
    default = load_config(ROOT / "configs" / "cpu_default.cfg")
    fast = load_config(ROOT / "configs" / "cpu_fast.cfg")
    assert fast["components"]["crf_ner"]["model"]["encoder"].pop("attention") is None
    assert default["components"]["crf_ner"]["model"]["encoder"].pop("attention") == "mha"
    assert fast.to_str() == default.to_str()
