"""The review page in a real browser: headless Chromium, driven over the
DevTools protocol, loads `/` from a server started by the test, types a
record, clicks Annotate, and the test reads what the page shows.

A screenshot is kept under pytest's tmp dir and, if $SCREENSHOT_DIR is set,
there too (CI keeps it as an artifact)."""
import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import spacy

from spacy_medner.io.entities import doc_entities

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1200,1300", "--remote-debugging-port=0",
]
RECORD = "患者因直肠癌于我院行直肠癌根治术，术后予奥沙利铂化疗，腹部CT示肝脏多发占位，口服阿司匹林后复查血常规。"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run installs it)")
websocket = pytest.importorskip("websocket", reason="websocket-client is not installed (it is in the test extra)")


class Chromium:
    """One headless Chromium and a DevTools session on its first page."""

    def __init__(self, folder: Path) -> None:
        profile = folder / "profile"
        self.log = open(folder / "chromium.log", "wb")
        self.process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"], stdout=self.log, stderr=subprocess.STDOUT)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert self.process.poll() is None, (folder / "chromium.log").read_text()
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port within 60 s"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
        # No Origin header: Chromium refuses DevTools websockets from unlisted origins.
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0

    def send(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message["result"]

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        status = self.js("document.getElementById('status').textContent")
        raise AssertionError(f"timed out waiting for {expression}; the page's status line: {status!r}")

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element."""
        box = self.js(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def type_into(self, selector: str, text: str) -> None:
        self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.focus(); e.select(); }})()")
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.log.close()


@pytest.fixture
def browser(tmp_path):
    chromium = Chromium(tmp_path)
    yield chromium
    chromium.close()


def keep_screenshot(browser: Chromium, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    browser.screenshot(path)
    if os.environ.get("SCREENSHOT_DIR"):
        folder = Path(os.environ["SCREENSHOT_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / name)
    assert path.stat().st_size > 10_000, "an empty screenshot"
    return path


def download_json(browser: Chromium, folder: Path) -> dict:
    """Click Download JSON and read the file the browser saved into `folder`
    (set by Page.setDownloadBehavior)."""
    path = folder / "entities.json"
    path.unlink(missing_ok=True)
    browser.click("#download")
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, "no entities.json downloaded"
        time.sleep(0.1)
    time.sleep(0.2)  # the file appears before its last write
    return json.loads(path.read_text(encoding="utf8"))


MARKS = """[...document.querySelectorAll('#rendering mark.entity')].map(m => ({
  text: m.firstChild.textContent, label: m.dataset.label, start: +m.dataset.start, end: +m.dataset.end,
  review: m.classList.contains('review'), color: getComputedStyle(m).backgroundColor,
  shown: m.querySelector('.label').textContent, prob: m.querySelector('.prob') ? m.querySelector('.prob').textContent : null}))"""
ROWS = "[...document.querySelectorAll('#entities tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
# The record as the rendering shows it, without the label and probability tags.
PLAIN = """(() => { const c = document.getElementById('rendering').cloneNode(true);
  c.querySelectorAll('.label, .prob').forEach(e => e.remove()); return c.textContent; })()"""


def test_a_clinician_annotates_a_record_and_reviews_its_entities(scored_server, scored_model, browser, tmp_path):
    """On a pipeline whose entities carry probabilities (scores_component.py)."""
    from . import scores_component  # noqa: F401  the pipeline needs it

    server = scored_server
    expected = doc_entities(spacy.load(scored_model)(RECORD))
    assert all("score" in e for e in expected)
    assert len(expected) >= 4 and len({e["label"] for e in expected}) >= 3, "the record should show several labels"
    browser.send("Page.enable")
    browser.send("Page.setDownloadBehavior", behavior="allow", downloadPath=str(tmp_path))
    browser.send("Page.navigate", url=server.url + "/")
    browser.wait_for("document.querySelectorAll('#legend .chip').length > 0")  # the labels came from /v1/metadata
    threshold = 0.9
    browser.js(f"(() => {{ const t = document.getElementById('threshold'); t.value = '{threshold}'; }})()")
    browser.type_into("#record", RECORD)
    browser.click("#annotate")
    browser.wait_for("document.getElementById('status').textContent.startsWith('Done')")

    marks = browser.js(MARKS)
    assert [(m["start"], m["end"], m["label"], m["text"]) for m in marks] == [(e["start"], e["end"], e["label"], e["text"]) for e in expected]
    assert all(m["shown"] == m["label"] for m in marks)
    assert browser.js(PLAIN) == RECORD, "the rendering must show the whole record, in order"
    colors = {}
    for mark in marks:
        assert colors.setdefault(mark["label"], mark["color"]) == mark["color"], "one colour per label"
    assert len(set(colors.values())) == len(colors), "each label its own colour"
    for mark, entity in zip(marks, expected):
        score = entity.get("score")
        assert mark["prob"] == (None if score is None else f"{score:.2f}")
        assert mark["review"] == (score is not None and score < threshold)

    rows = browser.js(ROWS)
    assert [(int(r[1]), int(r[2]), r[3], r[4]) for r in rows] == [(e["start"], e["end"], e["label"], e["text"]) for e in expected]
    for row, entity in zip(rows, expected):
        score = entity.get("score")
        assert row[5] == ("–" if score is None else f"{score:.4f}")
        assert row[6] == ("no score" if score is None else ("review" if score < threshold else "accept"))
    assert any(m["review"] for m in marks) and not all(m["review"] for m in marks)
    summary = browser.js("document.getElementById('summary').textContent")
    assert f"{len(expected)} found, {sum(m['review'] for m in marks)} to review" in summary
    keep_screenshot(browser, tmp_path, "review_page.png")

    # A lower threshold re-marks the entities without asking the server again.
    browser.type_into("#threshold", "0.3")
    marks = browser.js(MARKS)
    assert [m["review"] for m in marks] == [e["score"] < 0.3 for e in expected]
    threshold = 0.3

    # The download is the table as JSON.
    downloaded = download_json(browser, tmp_path)
    assert downloaded["text"] == RECORD and downloaded["threshold"] == threshold
    assert [{k: v for k, v in e.items() if k != "review"} for e in downloaded["entities"]] == expected
    browser.click("#copy")
    browser.wait_for("document.getElementById('copied').textContent === 'Copied.'")

    # A record over the server's limit: the page says why, with the limit.
    browser.type_into("#record", "病" * 201)
    browser.click("#annotate")
    error = browser.wait_for("document.getElementById('status').className === 'error' && document.getElementById('status').textContent")
    assert "200" in error and "--max-text-chars" in error
    assert browser.js("document.getElementById('output').hidden"), "the last record's entities must not stay on show"
    keep_screenshot(browser, tmp_path, "review_page_error.png")
