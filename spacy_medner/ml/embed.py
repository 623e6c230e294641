"""Character + character-bigram embeddings, optionally with word-segmentation
features: the token encoder of the CPU default, which has no pretrained
weights.

For Chinese NER without a pretrained model, bigrams carry much of the word
information that single characters lack (Zhang & Yang 2018; the papers'
BiGRU-CRF baselines). Each token (a character, with spaCy's `zh` "char"
segmenter) is embedded from its NORM, the bigram with its left neighbour and
the bigram with its right neighbour, using hashed tables so that no
vocabulary has to be built or stored. With `word_width > 0` two more tables
embed the segmenter's word holding the character (with the character's
position in it) and that position alone (`spacy_medner.ml.words`).
"""
from typing import List

import numpy
from spacy.attrs import IDX, NORM
from spacy.tokens import Doc
from thinc.api import HashEmbed, Model, chain, concatenate, with_array
from thinc.types import Floats2d, Ints2d

from .words import word_features

# Sentinels for the missing neighbour at either end of a doc.
_BOS = numpy.uint64(0x2545F4914F6CDD1D)
_EOS = numpy.uint64(0x9E3779B97F4A7C15)
_MIX = numpy.uint64(0x100000001B3)


def char_ngram_ids(words: bool = False) -> Model[List[Doc], List[Ints2d]]:
    """Per token: NORM, left bigram, right bigram and, with `words`, the word
    (mixed with the position) and the position in the word."""
    return Model("char_ngram_ids", _ids_forward, attrs={"words": words})


def _ids_forward(model: Model, docs: List[Doc], is_train: bool):
    out = []
    with numpy.errstate(over="ignore"):
        for doc in docs:
            chars = doc.to_array(NORM).astype(numpy.uint64).reshape(-1)
            prev = numpy.concatenate([[_BOS], chars[:-1]]) if len(chars) else chars
            nxt = numpy.concatenate([chars[1:], [_EOS]]) if len(chars) else chars
            columns = [chars, (prev * _MIX) ^ chars, (chars * _MIX) ^ nxt]
            if model.attrs["words"]:
                words, positions = word_features(doc.text)
                starts = doc.to_array(IDX).astype(numpy.int64).reshape(-1)
                columns += [(words[starts] * _MIX) ^ positions[starts], positions[starts]]
            out.append(model.ops.asarray(numpy.stack(columns, axis=1), dtype="uint64"))
    return out, lambda d: []


def CharEmbed(
    width: int, bigram_width: int, rows: int, bigram_rows: int, word_width: int = 0, word_rows: int = 50000
) -> Model[List[Doc], List[Floats2d]]:
    """Output width is `width + 2 * bigram_width + 2 * word_width` (0 disables
    bigrams or words)."""
    tables = [HashEmbed(width, rows, column=0, seed=11)]
    if bigram_width > 0:
        tables.append(HashEmbed(bigram_width, bigram_rows, column=1, seed=12))
        tables.append(HashEmbed(bigram_width, bigram_rows, column=2, seed=13))
    if word_width > 0:
        tables.append(HashEmbed(word_width, word_rows, column=3, seed=14))
        # Four positions: a small table, hashed like the others so FGM and saving treat it alike.
        tables.append(HashEmbed(word_width, 64, column=4, seed=15))
    model = chain(char_ngram_ids(words=word_width > 0), with_array(concatenate(*tables)))
    model.set_dim("nO", width + 2 * (bigram_width if bigram_width > 0 else 0) + 2 * max(word_width, 0))
    for i, table in enumerate(tables):
        # HashEmbed(column=...) is a chain; the ref names the node holding the table.
        model.set_ref(f"embed_{i}", next(node for node in table.walk() if "E" in node.param_names))
    return model
