"""Word-segmentation features for character tokens: each character learns
which word a general-domain segmenter puts it in, and where in that word it
sits (B, M, E or S). This is the "softword" feature of Zhang & Yang (2018):
without pretrained weights, a character-level tagger sees no word boundaries
otherwise, and entity boundaries mostly fall on word boundaries.

The segmenter is jieba with its bundled dictionary and HMM for unknown words.
A private `jieba.Tokenizer` is used, so a `jieba.load_userdict` elsewhere in
the process cannot change a trained model's features. jieba runs at about
200,000 characters/s on one core here (184,000 and 222,000 in two one-off
measurements): the feature costs prediction speed, which is why it is a
setting (`word_width`) and not always on.
"""
import logging
from typing import Tuple

import numpy
from spacy.strings import get_string_id

# Position of a character in its word.
BEGIN, MIDDLE, END, SINGLE = (numpy.uint64(code) for code in (1, 2, 3, 4))

_SEGMENTER = None


def _segmenter():
    global _SEGMENTER
    if _SEGMENTER is None:
        try:
            import jieba
        except ImportError as err:  # pragma: no cover - jieba is a requirement
            raise ImportError(
                "[spacy_medner] Word features (CharEmbed word_width > 0) need jieba: pip install jieba"
            ) from err
        # jieba logs its dictionary loading at DEBUG to stderr; only this once, quietly.
        level = jieba.default_logger.level
        jieba.setLogLevel(logging.WARNING)
        try:
            segmenter = jieba.Tokenizer()
            segmenter.initialize()
        finally:
            jieba.setLogLevel(level)
        _SEGMENTER = segmenter
    return _SEGMENTER


def word_features(text: str) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Per character of `text`: the hash of the word holding it, and its
    position in that word (BEGIN, MIDDLE, END or SINGLE)."""
    segments = list(_segmenter().cut(text, HMM=True))
    if "".join(segments) != text:
        start = 0
        for word in segments:  # only on error: find where the segmenter diverged
            if text[start : start + len(word)] != word:
                break
            start += len(word)
        raise ValueError(f"[spacy_medner] jieba changed the text at character {start} of {len(text)}")
    lengths = numpy.array([len(word) for word in segments], dtype=numpy.int64)
    words = numpy.repeat(numpy.array([get_string_id(word) for word in segments], dtype=numpy.uint64), lengths)
    # Offset of each character in its word, and the length of that word.
    starts = numpy.repeat(numpy.cumsum(lengths) - lengths, lengths)
    offsets = numpy.arange(len(text), dtype=numpy.int64) - starts
    word_lengths = numpy.repeat(lengths, lengths)
    positions = numpy.full(len(text), MIDDLE, dtype=numpy.uint64)
    positions[offsets == word_lengths - 1] = END
    positions[offsets == 0] = BEGIN
    positions[word_lengths == 1] = SINGLE
    return words, positions
