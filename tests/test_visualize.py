"""rnnkit visualize without a browser: the page's content and data, the CLI contract, the attention pages."""
from __future__ import annotations

import base64
import json
import re

import pytest
import torch

from helpers import error_of
from rnnkit.cli import main
from rnnkit.data.text import Vocabulary
from rnnkit.models.charlm import CharLM, CharLMConfig
from rnnkit.train.checkpoint import save_checkpoint
from rnnkit.visualize.charpage import quantize

TEXT = 'x = f(a, "b c")\nprint("it (is)" + [1, 2])\n' * 12


def charlm_checkpoint(path, cell="lstm", hidden=8, text=TEXT, seed=0):
    """A small untrained charlm checkpoint in the task's own format (header as tasks/charlm.py writes it)."""
    torch.manual_seed(seed)
    vocab = Vocabulary.build(text)
    model = CharLM(CharLMConfig(len(vocab), cell, hidden_size=hidden, num_layers=2, embedding_dim=4))
    save_checkpoint(path, model.state_dict(), config={"task": "charlm", "model": model.config.to_dict(),
                                                      "vocab": list(vocab.chars), "options": {}})
    return path


def page_json(html: str) -> dict:
    match = re.search(r'<script id="rnnkit-data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    d = tmp_path_factory.mktemp("viz")
    ck = charlm_checkpoint(d / "lm.safetensors")
    (d / "text.txt").write_text(TEXT)
    assert main(["visualize", "--checkpoint", str(ck), "--text", str(d / "text.txt"), "--out", str(d / "p.html")]) == 0
    return d, (d / "p.html").read_text()


def test_the_page_is_self_contained(page):
    _, html = page
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|<link|\bsrc=|@import|url\(", html, re.I)
    assert "<script src" not in html and html.count("<script") == 2


def test_the_page_holds_the_text_predictions_ranking_and_saturation(page):
    _, html = page
    data = page_json(html)
    assert data["text"] == TEXT and len(data["top"]) == len(TEXT) and all(len(t) == 5 for t in data["top"])
    names = [q["name"] for q in data["layers"][0]["quantities"]]
    assert names == ["hidden", "cell", "input gate", "forget gate", "candidate", "output gate"]
    features = {s["feature"] for s in data["ranking"]}
    assert {"inside quotes", "inside brackets", "position in line", "start of word"} <= features
    assert len(re.findall(r'<circle [^>]*data-layer="1" data-quantity="forget gate"', html)) == 8
    assert html.count("<svg") == 2   # one saturation plot per layer


def test_quantized_activations_decode_to_the_values():
    values = torch.randn(50, 7) * torch.arange(1, 8)
    values[:, 3] = 0.25   # a constant unit
    q = quantize(values)
    raw = torch.frombuffer(bytearray(base64.b64decode(q["data"])), dtype=torch.uint8).reshape(7, 50).T.double()
    lo, hi = torch.tensor(q["lo"]).double(), torch.tensor(q["hi"]).double()
    decoded = lo + raw / 255 * (hi - lo)
    assert ((decoded - values.double()).abs() <= (hi - lo) / 510 + 1e-4 * values.abs().max()).all()
    assert decoded[:, 3].eq(0.25).all()


def test_default_text_is_the_end_of_the_training_text(tmp_path):
    (tmp_path / "corpus.txt").write_text("first line\n" + TEXT * 3)
    ck = charlm_checkpoint(tmp_path / "lm.safetensors")
    from rnnkit.train.checkpoint import load_checkpoint
    header = load_checkpoint(ck).config
    header["options"] = {"text": [str(tmp_path / "corpus.txt")]}
    save_checkpoint(ck, load_checkpoint(ck).weights, config=header)
    out = tmp_path / "p.html"
    assert main(["visualize", "--checkpoint", str(ck), "--chars", "300", "--out", str(out)]) == 0
    text = page_json(out.read_text())["text"]
    assert (TEXT * 3).endswith(text) and 225 <= len(text) <= 300 and text.startswith("x = f")


def test_a_missing_training_text_asks_for_text(tmp_path, capsys):
    ck = charlm_checkpoint(tmp_path / "lm.safetensors")
    from rnnkit.train.checkpoint import load_checkpoint
    header = load_checkpoint(ck).config
    header["options"] = {"text": [str(tmp_path / "gone.txt")]}
    save_checkpoint(ck, load_checkpoint(ck).weights, config=header)
    assert "pass --text" in error_of(capsys, ["visualize", "--checkpoint", str(ck), "--out", str(tmp_path / "p.html")])
    assert not (tmp_path / "p.html").exists()


def test_bad_options_are_one_line_before_any_work(tmp_path, capsys, page):
    d, _ = page
    ck, text = str(d / "lm.safetensors"), str(d / "text.txt")
    out = tmp_path / "p.html"
    base = ["visualize", "--checkpoint", ck, "--text", text]
    assert "exists" in error_of(capsys, base + ["--out", str(d / "p.html")])   # no silent overwrite
    assert ".html" in error_of(capsys, base + ["--out", str(tmp_path / "p.png")])
    assert "does not exist" in error_of(capsys, base + ["--out", str(tmp_path / "nope" / "p.html")])
    (tmp_path / "dir.html").mkdir()
    assert "directory" in error_of(capsys, base + ["--out", str(tmp_path / "dir.html")])
    assert "chars" in error_of(capsys, base + ["--out", str(out), "--chars", "0"])
    assert "checkpoint not found" in error_of(capsys, ["visualize", "--checkpoint", str(tmp_path / "no.safetensors"),
                                                       "--out", str(out)])
    assert "text file not found" in error_of(capsys, ["visualize", "--checkpoint", ck, "--text",
                                                      str(tmp_path / "no.txt"), "--out", str(out)])
    other = tmp_path / "adding.safetensors"
    save_checkpoint(other, {"w": torch.zeros(1)}, config={"task": "adding"})
    assert "task 'adding'" in error_of(capsys, ["visualize", "--checkpoint", str(other), "--out", str(out)])
    assert not out.exists()


def test_overwrite_replaces_atomically(page, capsys):
    d, html = page
    target = d / "again.html"
    target.write_text("old")
    argv = ["visualize", "--checkpoint", str(d / "lm.safetensors"), "--text", str(d / "text.txt"), "--out", str(target)]
    assert "exists" in error_of(capsys, argv) and target.read_text() == "old"
    assert main(argv + ["--overwrite"]) == 0 and page_json(target.read_text())["text"] == TEXT
    assert not list(d.glob(".again.html*"))   # no temporary file left behind


@pytest.mark.parametrize("cell", ["rnn", "jordan", "gru", "lnlstm", "mingru", "minlstm"])
def test_every_cell_family_gets_a_page(tmp_path, cell):
    ck = charlm_checkpoint(tmp_path / "lm.safetensors", cell=cell, hidden=5)
    (tmp_path / "t.txt").write_text(TEXT)
    assert main(["visualize", "--checkpoint", str(ck), "--text", str(tmp_path / "t.txt"),
                 "--out", str(tmp_path / "p.html")]) == 0
    html = (tmp_path / "p.html").read_text()
    data = page_json(html)
    assert data["info"]["cell"] == cell and data["info"]["max_prob_diff"] < 1e-4
    has_gates = cell not in ("rnn", "jordan")
    assert ("<circle" in html) == has_gates and ("no σ gates" in html) == (not has_gates)


# ---- attention pages -------------------------------------------------------------------------------

def classifier_checkpoint(path, pooling="attention"):
    from rnnkit.data.vectorizer import TextVectorizer
    from rnnkit.models.classifier import ClassifierConfig, TextClassifier
    torch.manual_seed(0)
    vec = TextVectorizer().fit(["a good film", "a bad film", "good acting and a bad plot"])
    model = TextClassifier(ClassifierConfig(len(vec.vocabulary()), 2, "gru", 8, 8, pooling=pooling))
    save_checkpoint(path, model.state_dict(), config={"task": "classify", "model": model.config.to_dict(),
                                                      "vectorizer": vec.to_dict(), "labels": ["neg", "pos"]})
    return path


def test_classifier_attention_weights_page(tmp_path, capsys):
    ck = classifier_checkpoint(tmp_path / "cls.safetensors")
    (tmp_path / "in.txt").write_text("a good film\n\ngood acting and a bad plot\n")
    out = tmp_path / "att.html"
    assert main(["visualize", "--checkpoint", str(ck), "--text", str(tmp_path / "in.txt"), "--out", str(out)]) == 0
    items = page_json(out.read_text())["items"]
    assert [it["src"] for it in items] == [["a", "good", "film"], ["good", "acting", "and", "a", "bad", "plot"]]
    for it in items:
        assert sum(it["weights"]) == pytest.approx(1, abs=1e-3) and it["caption"].startswith("predicted ")
    pooled = classifier_checkpoint(tmp_path / "max.safetensors", pooling="max")
    capsys.readouterr()
    assert "--pooling attention" in error_of(capsys, ["visualize", "--checkpoint", str(pooled), "--text",
                                                      str(tmp_path / "in.txt"), "--out", str(tmp_path / "m.html")])
    assert "--text FILE" in error_of(capsys, ["visualize", "--checkpoint", str(ck), "--out", str(tmp_path / "m.html")])


@pytest.fixture(scope="module")
def seq2seq_checkpoint(tmp_path_factory):
    """An untrained addition model in the seq2seq task's checkpoint format (header as tasks/seq2seq.py writes it)."""
    from rnnkit.data.parallel import Translator
    from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
    torch.manual_seed(0)
    tr = Translator.learn([("12+7", "19"), ("3+45", "48"), ("60+9", "69")])
    model = Seq2Seq(Seq2SeqConfig(len(tr.src_vocab), len(tr.tgt_vocab), hidden_size=16, embedding_dim=8))
    path = tmp_path_factory.mktemp("s2s") / "s2s.safetensors"
    save_checkpoint(path, model.state_dict(), config={"task": "seq2seq", "model": model.config.to_dict(),
                                                      **tr.to_dict(), "options": {}})
    return path


def test_seq2seq_attention_matrix_page(tmp_path, seq2seq_checkpoint):
    (tmp_path / "src.txt").write_text("12+7\n3+45\n")
    out = tmp_path / "s2s.html"
    assert main(["visualize", "--checkpoint", str(seq2seq_checkpoint), "--text", str(tmp_path / "src.txt"),
                 "--out", str(out)]) == 0
    items = page_json(out.read_text())["items"]
    assert len(items) == 2
    for it in items:
        assert len(it["weights"]) == len(it["tgt"]) and all(len(row) == len(it["src"]) for row in it["weights"])
        assert all(sum(row) == pytest.approx(1, abs=0.02) for row in it["weights"])
