"""Registered functions: architectures, and the oversampling corpus reader.
Only registrations live here; the layers are in `spacy_medner.ml`."""
from typing import Callable, Dict, List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from .corpora.oversample import create_oversampled_corpus
from .ml.embed import CharEmbed
from .ml.encoder import SequenceEncoder
from .ml.lora import with_lora
from .ml.tagger import EntityTagger


@registry.architectures("spacy_medner.CharEmbed.v1")
def char_embed_v1(width: int = 64, bigram_width: int = 32, rows: int = 10000, bigram_rows: int = 50000) -> Model[List[Doc], List[Floats2d]]:
    """Hashed character + left/right bigram embeddings (output width
    `width + 2 * bigram_width`). A complete token encoder for Chinese without
    pretrained weights."""
    return CharEmbed(width, bigram_width, rows, bigram_rows)


@registry.architectures("spacy_medner.CharEmbed.v2")
def char_embed_v2(
    width: int = 64,
    bigram_width: int = 32,
    rows: int = 10000,
    bigram_rows: int = 50000,
    word_width: int = 16,
    word_rows: int = 50000,
) -> Model[List[Doc], List[Floats2d]]:
    """CharEmbed.v1 plus word-segmentation features (output width `width +
    2 * bigram_width + 2 * word_width`): jieba's word holding each character,
    with its position in the word, and the position alone. Word boundaries
    help where entities are words (names, drugs), at the cost of jieba's
    segmentation time when predicting; `word_width = 0` is v1."""
    return CharEmbed(width, bigram_width, rows, bigram_rows, word_width, word_rows)


@registry.architectures("spacy_medner.SequenceEncoder.v1")
def sequence_encoder_v1(
    tok2vec: Model[List[Doc], List[Floats2d]],
    rnn: Optional[str] = "gru",
    rnn_width: int = 256,
    rnn_depth: int = 1,
    attention: Optional[str] = None,
    attention_heads: int = 4,
    attention_window: int = 128,
    residual: bool = True,
    layer_norm: bool = False,
    dropout: float = 0.2,
) -> Model[List[Doc], List[Floats2d]]:
    """BiGRU/BiLSTM (`rnn`: "gru", "lstm" or null) and attention (`attention`:
    "mha", "additive" or null) on any token encoder: an inline tok2vec,
    `spacy.Tok2VecListener.v1` or `spacy-transformers.TransformerListener.v1`.
    `rnn_width` is both directions together. `attention_window` bounds the
    attention span (0 = full attention, quadratic in length)."""
    return SequenceEncoder(
        tok2vec, rnn, rnn_width, rnn_depth, attention, attention_heads, attention_window, residual, layer_norm, dropout
    )


@registry.architectures("spacy_medner.EntityTagger.v1")
def entity_tagger_v1(
    encoder: Model[List[Doc], List[Floats2d]],
    decoder: str = "crf",
    nO: Optional[int] = None,
    focal_gamma: float = 0.0,
    label_smoothing: float = 0.0,
    label_weights: Optional[Dict[str, float]] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Linear projection to tag scores, decoded by a constrained CRF
    (`decoder = "crf"`) or a constrained softmax (`"softmax"`, the papers'
    "FC" head). `nO` (the number of tags) is set by the component.

    Softmax only: `focal_gamma` (focal loss; 0 = cross-entropy),
    `label_smoothing`, and `label_weights` (focal loss's alpha, per entity
    label; "O" for outside tokens; unlisted labels weigh 1)."""
    return EntityTagger(encoder, decoder, nO, focal_gamma, label_smoothing, label_weights)


@registry.architectures("spacy_medner.LoraTransformerModel.v1")
def lora_transformer_model_v1(
    name: str,
    get_spans: Callable,
    tokenizer_config: dict = {},
    transformer_config: dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.1,
    lora_target_modules: List[str] = ["query", "value"],
) -> Model:
    """spacy-transformers.TransformerModel.v3 with LoRA adapters (peft) and a
    frozen base; saved pipelines hold merged weights and load without peft.
    See spacy_medner.ml.lora for the trade-off."""
    from spacy_transformers.layers import TransformerModel

    return with_lora(
        TransformerModel(name, get_spans, tokenizer_config, transformer_config, mixed_precision, grad_scaler_config),
        lora_r, lora_alpha, lora_dropout, lora_target_modules,
    )


registry.readers("spacy_medner.OversampledCorpus.v1")(create_oversampled_corpus)


@registry.architectures("spacy_medner.SpanPointer.v1")
def span_pointer_v1(
    encoder: Model[List[Doc], List[Floats2d]],
    kind: str = "global_pointer",
    max_length: int = 16,
    width: int = 64,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """The span decoder of the `span_ner` component: every (start, end, label)
    of at most `max_length` tokens scored on the encoder output, banded so
    that cost is linear in document length. `kind`: "global_pointer" (per-label
    start/end heads `width` wide with rotary positions) or "biaffine". `nO`
    (the number of labels) is set by the component. See
    spacy_medner.ml.span_pointer for the trade-offs and the loss."""
    from .ml.span_pointer import SpanPointer

    return SpanPointer(encoder, kind, max_length, width, nO)
