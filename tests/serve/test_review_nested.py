"""The review page with a span_ner (nested-entity) pipeline, in a real
browser: besides the entities (doc.ents), the page draws every mention the
answer carries in displaCy's span style, one bar per mention under its
characters on a render slot of its own, and lists them in a table.

What the page shows is read back from the DOM (and from the boxes Chromium
laid out) and checked against the pipeline's own `doc_mentions` in this
process: every mention drawn once, over exactly its characters, with its
label and probability; mentions over the same character on different slots
whose bars and labels do not overlap; the whole record shown once, in order.
A second test draws crossing and deeply stacked mentions, which the toy
pipeline does not produce, through the page's own code."""
import json
from itertools import combinations
from typing import List

import spacy

from spacy_medner.io.entities import doc_entities, doc_mentions

from ..io.trained_span import TEXTS, same_items
from .test_nested import span_model, span_server  # noqa: F401  (fixtures)
from .test_review_page import MARKS, PLAIN, ROWS, browser, download_json, keep_screenshot, pytestmark  # noqa: F401  (fixtures, skip marks)

# The nested toy texts in one record, a line break and a character outside
# the BMP (𠮷: two UTF-16 units, one Python character) before the last
# mentions, so the page must count offsets as the server does.
RECORD = "主诉：" + "，".join(TEXTS) + "。\n𠮷某复查：" + TEXTS[0]

# Everything the span drawing shows, per character box and per label.
DRAWING = """(() => {
  const box = (r) => ({ top: r.top, bottom: r.bottom, left: r.left, right: r.right });
  const units = [...document.querySelectorAll('#spans .span-char')].map(u => ({
    offset: +u.dataset.offset, char: u.firstChild.textContent, box: box(u.getBoundingClientRect()),
    bars: [...u.querySelectorAll(':scope > .span-slice')].map(b => ({
      mention: +b.dataset.mention, slot: +b.dataset.slot, start: b.classList.contains('span-start'),
      review: b.classList.contains('review'), box: box(b.getBoundingClientRect())})),
  }));
  const labels = [...document.querySelectorAll('#spans .span-label')].map(l => ({
    mention: +l.parentElement.dataset.mention, slot: +l.parentElement.dataset.slot, label: l.dataset.label,
    start: +l.dataset.start, end: +l.dataset.end, shown: l.firstChild.textContent,
    prob: l.querySelector('.prob') ? l.querySelector('.prob').textContent : null,
    review: l.parentElement.classList.contains('review'), at: +l.closest('.span-char').dataset.offset,
    box: box(l.getBoundingClientRect())}));
  return { units, labels };
})()"""
SPANS_PLAIN = """(() => { const c = document.getElementById('spans').cloneNode(true);
  c.querySelectorAll('.span-label').forEach(e => e.remove()); return c.textContent; })()"""
MENTION_ROWS = "[...document.querySelectorAll('#mentions tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
SHOWN = "(id) => !document.getElementById(id).hidden && document.getElementById(id).getClientRects().length > 0"


def shown(chromium, element_id: str) -> bool:
    return chromium.js(f"({SHOWN})({json.dumps(element_id)})")


def nesting(mentions: List[dict]) -> List[str]:
    """The Nesting column, by brute force over every pair."""
    out = []
    for i, m in enumerate(mentions):
        found = []
        for j, o in enumerate(mentions):
            if i == j or o["end"] <= m["start"] or m["end"] <= o["start"]:
                continue
            if (o["start"], o["end"]) == (m["start"], m["end"]):
                kind = "same characters as"
            elif o["start"] <= m["start"] and m["end"] <= o["end"]:
                kind = "inside"
            elif m["start"] <= o["start"] and o["end"] <= m["end"]:
                kind = "contains"
            else:
                kind = "crosses"
            found.append(f"{kind} #{j + 1} {o['text']}")
        out.append("; ".join(found) or "–")
    return out


def overlap(a: dict, b: dict) -> bool:
    """Two boxes share a horizontal band."""
    return a["top"] < b["bottom"] and b["top"] < a["bottom"]


def beside(a: dict, b: dict) -> bool:
    """Two boxes share a vertical band."""
    return a["left"] < b["right"] and b["left"] < a["right"]


def assert_drawing(chromium, text: str, mentions: List[dict], threshold: float) -> dict:
    """The span drawing shows `text` once, in order, and each of `mentions`
    once, over exactly its characters (a line break gets no box, as
    displaCy draws no bar under whitespace), on one slot, labelled at its
    first one; nothing over the same character draws over anything else."""
    boxed = lambda m: [c for c in range(m["start"], m["end"]) if text[c] not in "\r\n"]  # noqa: E731
    assert chromium.js(SPANS_PLAIN) == text, "the span drawing must show the whole record, once, in order"
    drawing = chromium.js(DRAWING)
    units, labels = drawing["units"], drawing["labels"]
    offsets = [u["offset"] for u in units]
    assert offsets == sorted(set(offsets)), "one box per character, in order"
    for unit in units:
        assert unit["char"] == text[unit["offset"]], unit

    # Each mention: one label, at its first character, with its label and probability.
    assert [(l["start"], l["end"], l["label"]) for l in sorted(labels, key=lambda l: l["mention"])] == [
        (m["start"], m["end"], m["label"]) for m in mentions]
    assert sorted(l["mention"] for l in labels) == list(range(len(mentions))), "every mention drawn once"
    for label in labels:
        mention = mentions[label["mention"]]
        score = mention.get("score")
        assert label["at"] == boxed(mention)[0] and label["shown"] == mention["label"]
        assert label["prob"] == (None if score is None else f"{score:.2f}")
        assert label["review"] == (score is not None and score < threshold)

    # Each mention: a bar under exactly its characters, all on one slot.
    slot_of = {label["mention"]: label["slot"] for label in labels}
    for i, mention in enumerate(mentions):
        under = [(u["offset"], b["slot"], b["review"]) for u in units for b in u["bars"] if b["mention"] == i]
        assert [offset for offset, _, _ in under] == boxed(mention), (mention, under)
        assert {slot for _, slot, _ in under} == {slot_of[i]}, f"{mention} changes slot"
        assert len({review for _, _, review in under}) == 1

    # Over one character: each mention on its own slot, bars that do not touch, a box tall enough for them.
    for unit in units:
        bars = unit["bars"]
        assert len({b["slot"] for b in bars}) == len(bars), f"two mentions share a slot at {unit}"
        for a, b in combinations(bars, 2):
            assert not overlap(a["box"], b["box"]), f"bars drawn over each other at character {unit['offset']}"
        assert all(unit["box"]["top"] < b["box"]["top"] and b["box"]["bottom"] <= unit["box"]["bottom"] + 1 for b in bars), "bars outside their box"
    # No label covers another label, or another mention's bar.
    for a, b in combinations(labels, 2):
        assert not (overlap(a["box"], b["box"]) and beside(a["box"], b["box"])), f"labels {a} and {b} overlap"
    for label in labels:
        for unit in units:
            for bar in unit["bars"]:
                if bar["mention"] != label["mention"]:
                    assert not (overlap(label["box"], bar["box"]) and beside(label["box"], bar["box"])), (label, unit["offset"], bar)
    # A mention inside another lies below it (displaCy stacks the inner one under the outer).
    for (i, m), (j, o) in combinations(enumerate(mentions), 2):
        if (m["start"], m["end"]) != (o["start"], o["end"]):
            if o["start"] <= m["start"] and m["end"] <= o["end"]:
                assert slot_of[i] > slot_of[j], (m, o)
            elif m["start"] <= o["start"] and o["end"] <= m["end"]:
                assert slot_of[j] > slot_of[i], (m, o)
    return slot_of


def assert_mention_table(chromium, mentions: List[dict], entities: List[dict], threshold: float) -> None:
    rows = chromium.js(MENTION_ROWS)
    ents = {(e["start"], e["end"], e["label"]) for e in entities}
    want = [[str(i + 1), str(m["start"]), str(m["end"]), m["label"], m["text"],
             f"{m['score']:.4f}" if "score" in m else "–",
             "no score" if "score" not in m else ("review" if m["score"] < threshold else "accept"),
             relation, "yes" if (m["start"], m["end"], m["label"]) in ents else "no"]
            for i, (m, relation) in enumerate(zip(mentions, nesting(mentions)))]
    assert rows == want


def set_threshold(chromium, value: str) -> None:
    chromium.type_into("#threshold", value)


def between(scores: List[float], k: int) -> str:
    """A threshold between the k-th and (k+1)-th distinct scores: some under, some over."""
    distinct = sorted(set(scores))
    return repr((distinct[k] + distinct[k + 1]) / 2)


def test_a_clinician_reviews_nested_mentions(span_server, span_model, browser, tmp_path):  # noqa: F811
    nlp = spacy.load(span_model)
    doc = nlp(RECORD)
    expected, entities = doc_mentions(doc, "sc"), doc_entities(doc, "sc")
    spans = {(m["start"], m["end"], m["label"]) for m in expected}
    assert {(5, 8, "bod"), (5, 10, "sym")} <= spans, f"the record should hold 左下腹 inside 左下腹疼痛: {expected}"
    assert any(m["start"] > RECORD.index("𠮷") for m in expected), "mentions after the astral character"
    scores = [m["score"] for m in expected]
    first, second = between(scores, len(set(scores)) // 2 - 1), between(scores, 0)

    browser.send("Page.enable")
    browser.send("Page.setDownloadBehavior", behavior="allow", downloadPath=str(tmp_path))
    browser.send("Page.navigate", url=span_server.url + "/")
    browser.wait_for("document.querySelectorAll('#legend .chip').length > 0")
    set_threshold(browser, first)
    browser.type_into("#record", RECORD)
    browser.click("#annotate")
    status = browser.wait_for("document.getElementById('status').textContent.startsWith('Done') && document.getElementById('status').textContent")
    assert status == f"Done: {len(entities)} entities, {len(expected)} mentions."
    assert shown(browser, "nested") and shown(browser, "mention-list")
    heading = browser.js("document.querySelector('#nested h2').firstChild.textContent").strip()
    assert heading == "All mentions (nested included)"

    # doc.ents, as for any pipeline, with span_ner's probabilities.
    marks = browser.js(MARKS)
    assert [(m["start"], m["end"], m["label"], m["text"], m["prob"]) for m in marks] == [
        (e["start"], e["end"], e["label"], e["text"], f"{e['score']:.2f}") for e in entities]
    assert browser.js(PLAIN) == RECORD
    assert [(int(r[1]), int(r[2]), r[3], r[4]) for r in browser.js(ROWS)] == [(e["start"], e["end"], e["label"], e["text"]) for e in entities]

    # Every mention, nested ones included.
    threshold = float(first)
    slots = assert_drawing(browser, RECORD, expected, threshold)
    inner, outer = (next(i for i, m in enumerate(expected) if (m["start"], m["end"], m["label"]) == key) for key in [(5, 8, "bod"), (5, 10, "sym")])
    assert slots[outer] == 1 and slots[inner] == 2, "左下腹疼痛 on the first slot, 左下腹 under it"
    assert_mention_table(browser, expected, entities, threshold)
    review = sum(m["score"] < threshold for m in expected)
    nested = sum(relation != "–" for relation in nesting(expected))
    assert 0 < review < len(expected) and nested >= 2
    counts = f"{len(expected)} found, {nested} inside or across another, {review} to review"
    assert browser.js("document.getElementById('mention-summary').textContent").startswith(counts)
    summary = browser.js("document.getElementById('summary').textContent")
    assert summary.startswith(f"{len(entities)} found, {sum(e['score'] < threshold for e in entities)} to review") and counts in summary
    keep_screenshot(browser, tmp_path, "review_nested.png")

    # The threshold re-marks the mentions in the browser: the server is not asked again.
    browser.js("(() => { window.__posts = 0; const f = window.fetch; window.fetch = (...a) => { window.__posts += 1; return f(...a); }; })()")
    set_threshold(browser, second)
    threshold = float(second)
    assert_drawing(browser, RECORD, expected, threshold)
    assert_mention_table(browser, expected, entities, threshold)
    assert 0 < sum(m["score"] < threshold for m in expected) < review
    assert browser.js("window.__posts") == 0

    downloaded = download_json(browser, tmp_path)
    assert downloaded["text"] == RECORD and downloaded["threshold"] == threshold
    for field, want in (("mentions", expected), ("entities", entities)):
        got = downloaded[field]
        assert same_items([{k: v for k, v in item.items() if k != "review"} for item in got], want), (field, got)
        assert [item["review"] for item in got] == [item["score"] < threshold for item in want], field


# Crossing, identical, five-deep and side-by-side one-character mentions
# (whose labels are wider than they are), over line breaks and a character
# outside the BMP: what a larger span_ner model may answer. On the last line,
# 水 lies in 戌亥金木水火土, which had to start below 酉戌: 水 goes below it
# even once the row above is free again.
SYNTHETIC = "甲乙丙丁戊己庚辛壬癸𠮷子\n丑寅卯辰巳午、未 CT 申\n酉戌亥金木水火土"
SYNTHETIC_MENTIONS = [  # by start, then end, then label, as the service sends them
    (0, 6, "bod"), (0, 12, "sym"), (1, 3, "dru"), (2, 8, "dis"), (4, 5, "bod"), (4, 5, "dru"),
    (8, 10, "sym"), (9, 15, "dis"), (11, 12, "bod"), (15, 16, "bod"), (16, 17, "dru"), (17, 18, "sym"),
    (18, 19, "dis"), (20, 21, "bod"), (22, 24, "dis"), (25, 26, "sym"), (27, 29, "bod"), (28, 35, "sym"), (32, 33, "bod"),
]


def test_crossing_and_stacked_mentions_never_draw_over_each_other(span_server, browser, tmp_path):  # noqa: F811
    mentions = [{"start": s, "end": e, "label": label, "text": SYNTHETIC[s:e], "score": round(0.3 + 0.035 * k, 6)}
                for k, (s, e, label) in enumerate(SYNTHETIC_MENTIONS)]
    browser.send("Page.navigate", url=span_server.url + "/")
    browser.wait_for("document.querySelectorAll('#legend .chip').length > 0")
    browser.js(f"""(() => {{ state.text = {json.dumps(SYNTHETIC)}; state.chars = Array.from(state.text);
      state.entities = []; state.mentions = {json.dumps(mentions)}; render(); }})()""")
    slots = assert_drawing(browser, SYNTHETIC, mentions, 0.5)
    listed = [i for i, m in enumerate(mentions) if SYNTHETIC.index("卯") <= m["start"] < SYNTHETIC.index("酉")]
    assert max(slots[i] for i in listed) < len(listed), "a list of short mentions must not step down one row per mention"
    assert_mention_table(browser, mentions, [], 0.5)
    assert "crosses #4 丙丁戊己庚辛" in browser.js(MENTION_ROWS)[0][7]
    keep_screenshot(browser, tmp_path, "review_crossing.png")


def test_a_crf_ner_answer_shows_no_mentions(server, browser, tmp_path):  # noqa: F811
    browser.send("Page.enable")
    browser.send("Page.setDownloadBehavior", behavior="allow", downloadPath=str(tmp_path))
    browser.send("Page.navigate", url=server.url + "/")
    browser.wait_for("document.querySelectorAll('#legend .chip').length > 0")
    browser.type_into("#record", "患者因直肠癌于我院行直肠癌根治术")
    browser.click("#annotate")
    status = browser.wait_for("document.getElementById('status').textContent.startsWith('Done') && document.getElementById('status').textContent")
    assert status.endswith(" entities.") and "mentions" not in status
    assert not shown(browser, "nested") and not shown(browser, "mention-list")
    assert "mentions" not in browser.js("document.getElementById('summary').textContent")
    assert "mentions" not in download_json(browser, tmp_path)
