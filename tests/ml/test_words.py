"""Word-segmentation features (CharEmbed.v2): every character gets its word and
its position in the word, whatever the text holds."""
import numpy
import pytest
import spacy
from spacy.util import registry

from spacy_medner.ml.words import BEGIN, END, MIDDLE, SINGLE, word_features


def test_positions_follow_the_segmentation():
    words, positions = word_features("患者男")
    # jieba's dictionary holds 患者 ("patient"): a two-character word and a one-character word.
    assert positions.tolist() == [BEGIN, END, SINGLE]
    assert words[0] == words[1] != words[2]
    words, positions = word_features("中华人民共和国")
    assert positions[0] == BEGIN and positions[-1] == END and set(positions[1:-1].tolist()) <= {MIDDLE}


def test_features_agree_with_the_segmentation_word_by_word():
    from spacy_medner.ml.words import _segmenter

    text = "患者男，65岁，因反复胸闷气促3年加重1周入院。查体：双肺呼吸音粗，未闻及干湿啰音。予阿司匹林肠溶片100mg口服。"
    expected_words, expected_positions = [], []
    for word in _segmenter().cut(text, HMM=True):
        expected_words += [spacy.strings.get_string_id(word)] * len(word)
        expected_positions += [SINGLE] if len(word) == 1 else [BEGIN] + [MIDDLE] * (len(word) - 2) + [END]
    words, positions = word_features(text)
    assert words.tolist() == expected_words and positions.tolist() == expected_positions
    assert MIDDLE in expected_positions and SINGLE in expected_positions


def test_a_segmenter_that_changes_the_text_is_an_error(monkeypatch):
    class Rewriting:
        def cut(self, text, HMM):
            return ["患者", "女"]

    monkeypatch.setattr("spacy_medner.ml.words._SEGMENTER", Rewriting())
    with pytest.raises(ValueError, match="jieba changed the text at character 2 of 3"):
        word_features("患者男")


@pytest.mark.parametrize("text", ["", " ", "患者  男，65岁。\n因\"胸痛\"入院 CT示: abc-12.5mg\t\r\n", "ǅ\u200b😀痛"])
def test_every_character_gets_a_word(text):
    words, positions = word_features(text)
    assert len(words) == len(positions) == len(text)
    assert set(positions.tolist()) <= {BEGIN, MIDDLE, END, SINGLE}


def test_char_embed_v2_maps_tokens_to_their_words():
    nlp = spacy.blank("zh")
    embed = registry.architectures.get("spacy_medner.CharEmbed.v2")(width=8, bigram_width=4, rows=100, bigram_rows=100, word_width=6, word_rows=100)
    embed.initialize()
    docs = [nlp("患者 男，胸痛"), nlp("")]
    vectors = embed.predict(docs)
    assert embed.get_dim("nO") == 8 + 2 * 4 + 2 * 6 == vectors[0].shape[1]
    assert [v.shape[0] for v in vectors] == [len(d) for d in docs]
    ids = embed.layers[0].predict(docs)[0]
    # 患 and 者 share a word but not a position; the space (no token of its own) keeps 男 a word alone.
    assert ids[0, 4] == BEGIN and ids[1, 4] == END and ids[0, 3] != ids[1, 3] and ids[2, 4] == SINGLE
    v1 = registry.architectures.get("spacy_medner.CharEmbed.v2")(width=8, bigram_width=4, rows=100, bigram_rows=100, word_width=0)
    assert v1.get_dim("nO") == 16 and v1.layers[0].predict(docs)[0].shape[1] == 3
    numpy.testing.assert_array_equal(ids[:, :3], v1.layers[0].predict(docs)[0])
