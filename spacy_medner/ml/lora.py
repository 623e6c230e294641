"""LoRA adapters (peft) on a spacy-transformers transformer.

`LoraTransformerModel` is spacy-transformers' `TransformerModel` whose
Hugging Face model gets LoRA adapters right after it is loaded in
`initialize`; every other transformer weight is frozen, so only the adapters
(and the `crf_ner` head) train.

Saving writes *merged* weights (W + BA) under the plain parameter names,
through a state-dict hook on the live model: the saved pipeline is an ordinary
transformer that loads with no peft step (and without peft installed), while
training goes on with the unmerged adapters. The price: a reloaded pipeline
no longer has adapters, so resuming training from it trains all weights.
"""
from typing import List

from thinc.api import Model
from wasabi import msg

ADAPTER = "default"


def with_lora(model: Model, r: int, alpha: int, dropout: float, target_modules: List[str]) -> Model:
    if r < 1:
        raise ValueError(f"[spacy_medner] Option 'lora_r' must be >= 1, got {r}.")
    base_init = model.init

    def init(model: Model, X=None, Y=None) -> None:
        base_init(model, X=X, Y=Y)
        trainable, total = add_lora(model.transformer, r, alpha, dropout, target_modules)
        model.attrs["lora_trainable_parameters"] = trainable
        msg.info(f"LoRA r={r} on {target_modules}: {trainable:,} of {total:,} transformer parameters are trainable")

    model.init = init
    return model


def add_lora(hf_model, r: int, alpha: int, dropout: float, target_modules: List[str]):
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules))
    inject_adapter_in_model(config, hf_model, adapter_name=ADAPTER)
    total = trainable = 0
    for name, param in hf_model.named_parameters():
        param.requires_grad = "lora_" in name
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    hf_model.register_state_dict_post_hook(_merged_state_dict)
    return trainable, total


def _merged_state_dict(module, state_dict, prefix, local_metadata) -> None:
    """Replace each LoRA layer's entries by its merged weight under the plain name."""
    from peft.tuners.lora import LoraLayer

    for name, layer in module.named_modules(prefix=prefix.rstrip(".")):
        if not isinstance(layer, LoraLayer):
            continue
        key = f"{name}." if name else ""
        base = layer.get_base_layer()
        state_dict[f"{key}weight"] = (base.weight + layer.get_delta_weight(ADAPTER)).detach()
        if base.bias is not None:
            state_dict[f"{key}bias"] = base.bias.detach()
        for stale in [k for k in state_dict if k.startswith(f"{key}base_layer.") or k.startswith(f"{key}lora_")]:
            del state_dict[stale]
