"""LoRA on the tiny offline BERT: only adapters and head train; the saved
pipeline holds merged weights and reloads with no peft step."""
import subprocess
import sys
import warnings

import numpy
import pytest
import spacy
from thinc.api import fix_random_seed

from .test_crf_ner import entities, examples, train, transformer_nlp

TEXTS = ["患者因直肠癌于我院行直肠癌根治术", "口服阿司匹林后复查血常规"]


def lora_nlp(tiny_bert):
    fix_random_seed(0)
    lora = {"@architectures": "spacy_medner.LoraTransformerModel.v1", "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    return transformer_nlp(tiny_bert, transformer=lora)


def hf_model(nlp):
    return nlp.get_pipe("transformer").model.layers[0].shims[0]._model


def test_only_adapters_and_head_train(tiny_bert, capsys):
    nlp = lora_nlp(tiny_bert)
    nlp.initialize(lambda: examples(nlp))
    model = hf_model(nlp)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert any(".query." in n for n in trainable) and any(".value." in n for n in trainable)
    assert not any(".key." in n for n in trainable)
    count = nlp.get_pipe("transformer").model.attrs["lora_trainable_parameters"]
    assert count == sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    assert f"{count:,} of" in capsys.readouterr().out  # logged for the user
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapters = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = nlp.create_optimizer()
    for _ in range(5):
        nlp.update(examples(nlp), sgd=optimizer)
    after = dict(model.named_parameters())
    assert all(numpy.array_equal(v.numpy(), after[n].detach().numpy()) for n, v in frozen.items())
    assert any(not numpy.array_equal(v.numpy(), after[n].detach().numpy()) for n, v in adapters.items())


def test_saved_pipeline_has_merged_weights_and_loads_without_peft(tiny_bert, tmp_path):
    nlp = train(lora_nlp(tiny_bert), 150)
    predicted = entities(nlp(t) for t in TEXTS)
    assert predicted == [[("直肠癌", "疾病和诊断"), ("直肠癌根治术", "手术")], [("阿司匹林", "药物"), ("血常规", "实验室检验")]]
    before = nlp.get_pipe("crf_ner").model.predict([nlp.make_doc(t) for t in TEXTS])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no strict=False fallback: the merged keys must match exactly
        nlp.to_disk(tmp_path / "nlp")
        reloaded = spacy.load(tmp_path / "nlp")
    assert not any("lora_" in n for n, _ in hf_model(reloaded).named_parameters())
    after = reloaded.get_pipe("crf_ner").model.predict([reloaded.make_doc(t) for t in TEXTS])
    for a, b in zip(before, after):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert entities(reloaded(t) for t in TEXTS) == predicted
    # A fresh process where peft cannot be imported at all.
    script = (
        "import sys; sys.modules['peft'] = None\n"
        "import spacy\n"
        f"nlp = spacy.load({str(tmp_path / 'nlp')!r})\n"
        f"print([(e.text, e.label_) for e in nlp({TEXTS[1]!r}).ents])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert "('阿司匹林', '药物')" in out.stdout


def test_bad_rank_is_named(tiny_bert):
    nlp = spacy.blank("zh")
    with pytest.raises(ValueError, match="Option 'lora_r'"):
        nlp.add_pipe("transformer", config={"model": {"@architectures": "spacy_medner.LoraTransformerModel.v1", "name": tiny_bert, "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 32, "stride": 24}, "lora_r": 0}})
