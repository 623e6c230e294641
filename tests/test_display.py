"""displaCy colours: every label distinct and readable, stable across label
sets, and picked up by a plain `displacy.render` once registered."""
import itertools
import random
import re

import catalogue
import pytest
from spacy import displacy
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from spacy_medner.display import (
    COLORS, MIN_CONTRAST, MIN_DELTA_E, REGISTRY_NAME, WIDE_DELTA_E, contrast_ratio, delta_e, label_colors,
    register_displacy_colors, registered_colors,
)

# Labels of corpora the palette does not know (Chinese and Latin, as users name them).
OWN_LABELS = [f"自定义{i}" for i in range(20)] + [f"LABEL_{i}" for i in range(20)]


@pytest.fixture
def clean_registry():
    """Start without spacy_medner's colours in spaCy's displacy_colors registry
    (a pipeline loaded by an earlier test may have registered some) and leave
    the registry as the test found it."""
    key = ("spacy", "displacy_colors", REGISTRY_NAME)
    before = catalogue.REGISTRY.pop(key, None)
    yield
    catalogue.REGISTRY.pop(key, None)
    if before is not None:
        catalogue.REGISTRY[key] = before


def test_colour_measures_on_known_values():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#777777") == pytest.approx(1.0)
    assert delta_e("#000000", "#ffffff") == pytest.approx(100.0, abs=0.01)
    assert delta_e("#8ecae6", "#8ecae6") == 0.0


def test_forty_own_labels_get_distinct_readable_colours():
    colors = label_colors(OWN_LABELS)
    assert set(colors) == set(OWN_LABELS)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", color) for color in colors.values())
    closest = min(delta_e(a, b) for a, b in itertools.combinations(colors.values(), 2))
    assert closest >= MIN_DELTA_E
    assert all(contrast_ratio(color, "#000000") >= MIN_CONTRAST for color in colors.values())


def test_small_sets_get_clearly_different_hues():
    colors = label_colors(OWN_LABELS[:8])
    assert min(delta_e(a, b) for a, b in itertools.combinations(colors.values(), 2)) >= WIDE_DELTA_E


def test_hundreds_of_labels_still_get_distinct_colours():
    colors = label_colors(f"L{i}" for i in range(700))
    assert len(set(colors.values())) == 700
    assert all(contrast_ratio(color, "#000000") >= MIN_CONTRAST for color in colors.values())


def test_palette_labels_keep_their_colour_and_others_avoid_it():
    labels = ["解剖部位", "药物", "身体部位_自定义", "检查"]
    colors = label_colors(labels)
    assert colors["解剖部位"] == COLORS["解剖部位"] and colors["药物"] == COLORS["药物"]
    for own in ("身体部位_自定义", "检查"):
        assert min(delta_e(colors[own], COLORS[known]) for known in ("解剖部位", "药物")) >= WIDE_DELTA_E


def test_palette_labels_sharing_a_colour_in_one_set_are_told_apart():
    colors = label_colors(["bod", "BODY", "dis", "DISE"])
    assert len(set(colors.values())) == 4
    assert colors["BODY"] == COLORS["BODY"] and colors["DISE"] == COLORS["DISE"]  # sorted first, palette kept


def test_the_colours_do_not_depend_on_order_or_process():
    shuffled = OWN_LABELS[:]
    random.Random(0).shuffle(shuffled)
    assert label_colors(shuffled) == label_colors(OWN_LABELS)
    assert label_colors(OWN_LABELS + OWN_LABELS[:5]) == label_colors(OWN_LABELS)


def test_a_label_keeps_its_own_colour_unless_an_earlier_label_is_too_close():
    """A label alone gets the colour its name points to. In a set it keeps that
    colour exactly when no label placed before it (palette labels, then the
    others in sorted order) already has a colour within WIDE_DELTA_E of it, and
    labels that sort after it never change it."""
    labels = sorted(OWN_LABELS)
    colors = label_colors(labels)
    for i, label in enumerate(labels):
        alone = label_colors([label])[label]
        earlier = [colors[other] for other in labels[:i]]
        clash = any(delta_e(alone, color) < WIDE_DELTA_E for color in earlier)
        assert (colors[label] == alone) == (not clash), label
        assert label_colors(labels[: i + 1])[label] == colors[label]  # later labels change nothing


def test_in_small_sets_most_labels_have_the_colour_they_have_alone():
    """The common case, a corpus with a handful of its own labels: clashes are rare."""
    kept = total = 0
    for corpus in range(50):
        labels = [f"语料{corpus}类别{i}" for i in range(6)]
        colors = label_colors(labels)
        kept += sum(colors[label] == label_colors([label])[label] for label in labels)
        total += len(labels)
    assert kept / total >= 0.8


def test_displacy_uses_registered_colours_without_options(clean_registry):
    doc = Doc(Vocab(), words=list("患者诉腹痛三天，予头孢曲松抗感染"), spaces=[False] * 16)
    doc.ents = [Span(doc, 3, 5, label="症状和主诉"), Span(doc, 9, 13, label="LABEL_7")]
    before = displacy.render(doc, style="ent")
    colors = label_colors(["症状和主诉", "LABEL_7"])
    register_displacy_colors(colors)
    html = displacy.render(doc, style="ent")
    for label, color in colors.items():
        assert re.search(rf"background: {color};.*?{label}</span>", html, re.S), label
        assert f"background: {color}" not in before
    # A second pipeline's colours are merged in, not put in place of the first's.
    register_displacy_colors({"其他": "#abcdef"})
    again = displacy.render(doc, style="ent")
    assert all(f"background: {color}" in again for color in colors.values())
    # Options still win over the registry, as spaCy documents.
    assert "background: #123456" in displacy.render(doc, style="ent", options={"colors": {"LABEL_7": "#123456"}})


def test_registered_colours_are_read_back(clean_registry):
    assert registered_colors() == {}
    register_displacy_colors({"甲": "#aabbcc"})
    register_displacy_colors({"乙": "#ccbbaa", "甲": "#abcabc"})
    assert registered_colors() == {"甲": "#abcabc", "乙": "#ccbbaa"}
