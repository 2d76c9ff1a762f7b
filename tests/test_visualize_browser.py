"""rnnkit visualize in a real browser: headless Chromium over the DevTools protocol (tests/chromium.py).

Skipped, with the reason, only where no Chromium is installed (Debian: apt-get install chromium).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from chromium import Browser, find_chromium
from rnnkit.cli import main
from test_visualize import TEXT, charlm_checkpoint

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)")
ARTEFACTS = Path(os.environ.get("RNNKIT_TEST_ARTEFACTS", tempfile.gettempdir())) / "rnnkit-test-artefacts"


@pytest.fixture(scope="module")
def browser():
    b = Browser(CHROMIUM)
    yield b
    b.close()


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    d = tmp_path_factory.mktemp("vizb")
    ck = charlm_checkpoint(d / "lm.safetensors", cell="lstm", hidden=8)
    (d / "text.txt").write_text(TEXT)
    assert main(["visualize", "--checkpoint", str(ck), "--text", str(d / "text.txt"), "--out", str(d / "p.html")]) == 0
    return (d / "p.html").as_uri()


def test_the_page_renders_and_colours_follow_the_chosen_unit(browser, page_url):
    browser.events.clear()
    browser.open(page_url)
    assert browser.js("document.body.dataset.ready") == "1"
    # the text renders: one coloured span per character, the text itself readable
    assert browser.js("document.querySelectorAll('#text span').length") == len(TEXT)
    assert browser.js("[...document.querySelectorAll('#text span')].map(s => s.textContent).join('')") \
        == TEXT.replace("\n", "\u21b5\n")
    before = browser.js("rnnkitViz.colours()")
    assert len(set(before)) > 3   # a unit's activation varies over the text
    # choose another unit the way a user does: the unit list, then its change event
    browser.js("(() => { const s = document.getElementById('unit');"
               " s.value = String((+s.value + 1) % s.options.length); s.dispatchEvent(new Event('change')); })()")
    after = browser.js("rnnkitViz.colours()")
    assert after != before and len(after) == len(TEXT)
    # another quantity and layer from the lists
    browser.js("(() => { const s = document.getElementById('layer'); s.value = '1';"
               " s.dispatchEvent(new Event('change')); })()")
    assert browser.js("[document.getElementById('quantity').selectedOptions[0].textContent, rnnkitViz.current.layer]") \
        == ["hidden", 1]
    # a click on a ranked unit selects it
    row = browser.js("(() => { const r = document.querySelectorAll('#ranking tr[data-unit]')[3]; r.click();"
                     " return [+r.dataset.layer, r.dataset.quantity, +r.dataset.unit]; })()")
    assert browser.js("[rnnkitViz.current.layer, rnnkitViz.current.q.name, rnnkitViz.current.unit]") == row
    assert browser.js("document.querySelector('#ranking tr.chosen') !== null")
    # a click on a saturation dot selects that gate unit
    browser.js("document.querySelector('#saturation circle[data-layer=\"0\"][data-unit=\"5\"]')"
               ".dispatchEvent(new MouseEvent('click'))")
    assert browser.js("[rnnkitViz.current.layer, rnnkitViz.current.unit]") == [0, 5]
    # hovering a character shows the top-5 next-character predictions
    tip = browser.js("(() => { const s = document.querySelectorAll('#text span')[4];"
                     " const r = s.getBoundingClientRect();"
                     " s.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: r.x + 1, clientY: r.y + 1}));"
                     " const t = document.getElementById('tip'); return [t.hidden, t.textContent]; })()")
    assert tip[0] is False and "next:" in tip[1] and tip[1].count("%") == 5
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "visualize-charlm.png"
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert browser.problems() == []


def test_the_page_makes_no_network_request(browser, page_url, tmp_path):
    browser.events.clear()
    browser.open(page_url)
    browser.js("rnnkitViz.select(1, 0, 2)")
    assert browser.requests() == [page_url]   # the page itself, nothing else
    # the check can fail: a page that asks for an outside image is seen asking
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><p>x</p><img src="http://127.0.0.1:9/x.png">')
    browser.events.clear()
    browser.open(control.as_uri())
    assert "http://127.0.0.1:9/x.png" in browser.requests()


def test_the_attention_page_draws(browser, tmp_path):
    from test_visualize import classifier_checkpoint
    ck = classifier_checkpoint(tmp_path / "cls.safetensors")
    (tmp_path / "in.txt").write_text("a good film\ngood acting and a bad plot\n")
    out = tmp_path / "att.html"
    assert main(["visualize", "--checkpoint", str(ck), "--text", str(tmp_path / "in.txt"), "--out", str(out)]) == 0
    browser.events.clear()
    browser.open(out.as_uri())
    assert browser.js("[...document.querySelectorAll('.words span')].map(s => s.textContent)") == \
        ["a", "good", "film", "good", "acting", "and", "a", "bad", "plot"]
    assert len(set(browser.js("rnnkitViz.colours()"))) > 1
    assert browser.requests() == [out.as_uri()] and browser.problems() == []
