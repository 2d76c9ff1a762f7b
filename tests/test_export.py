"""ONNX export: every cell, stacked and bidirectional, equal to rnnkit under onnxruntime.

The whole-sequence graph is compared at two lengths (one graph, dynamic T and batch) and
with a non-zero initial state; the step graph, run as a streaming loop, is compared with
``layer.step``. float32, tolerance 1e-5.
"""
import onnx
import pytest
import torch

import rnnkit
from rnnkit.errors import UserError

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install 'rnnkit[export]'")
pytest.importorskip("onnxscript", reason="onnxscript not installed: pip install 'rnnkit[export]'")

CELLS = {
    "rnn-tanh": (rnnkit.SimpleRNN, {}),
    "rnn-relu": (rnnkit.SimpleRNN, {"activation": "relu"}),
    "lstm": (rnnkit.LSTM, {}),
    "lstm-proj": (rnnkit.LSTM, {"proj_size": 3}),
    "lstm-peephole": (rnnkit.LSTM, {"peephole": True}),
    "gru": (rnnkit.GRU, {}),
    "gru-reset-before": (rnnkit.GRU, {"reset_after": False}),
    "jordan": (rnnkit.JordanRNN, {"output_size": 4}),
    "lnlstm": (rnnkit.LayerNormLSTM, {}),
    "mingru": (rnnkit.MinGRU, {}),
    "minlstm": (rnnkit.MinLSTM, {}),
}
I, H = 3, 5


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def perturb(layer):
    """Non-trivial values everywhere (biases, peepholes, layer-norm gains start at constants)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return layer


def run_onnx(sess, x, state):
    feed = {"x": x.numpy(), **{f"state_{i}": s.numpy() for i, s in enumerate(state)}}
    y, *out = sess.run(None, feed)
    return torch.from_numpy(y), [torch.from_numpy(s) for s in out]


@pytest.mark.parametrize("name", list(CELLS))
def test_sequence_graph_equals_rnnkit(name, tmp_path):
    """Stacked (2 layers) and bidirectional in one model, with zoneout (its expectation in eval mode)."""
    cls, options = CELLS[name]
    torch.manual_seed(0)
    layer = perturb(cls(H, input_size=I, num_layers=2, bidirectional=True, zoneout=0.2, return_sequences=True,
                        return_state=True, **options)).eval()
    path = rnnkit.export_onnx(layer, tmp_path / "m.onnx")
    assert any(n.op_type == "Scan" for n in onnx.load(str(path)).graph.node)   # a real loop, not T copies
    sess = session(path)
    for B, T in ((2, 4), (3, 9), (1, 1)):
        x = torch.randn(B, T, I)
        state = tuple(torch.randn(layer.num_slots, B, s) for s in layer.state_sizes)
        with torch.no_grad():
            y, final = layer(x, state)
        y_onnx, final_onnx = run_onnx(sess, x, state)
        torch.testing.assert_close(y_onnx, y, rtol=1e-5, atol=1e-5)
        for a, b in zip(final_onnx, final):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CELLS))
def test_step_graph_streams_like_layer_step(name, tmp_path):
    cls, options = CELLS[name]
    torch.manual_seed(0)
    layer = perturb(cls(H, input_size=I, num_layers=2, zoneout=0.1, return_sequences=True, return_state=True,
                        **options)).eval()
    sess = session(rnnkit.export_onnx(layer, tmp_path / "step.onnx", step=True))
    B, T = 3, 6
    x = torch.randn(B, T, I)
    state = state_onnx = tuple(torch.randn(layer.num_slots, B, s) for s in layer.state_sizes)
    for t in range(T):
        y, state = layer.step(x[:, t], state)
        y_onnx, state_onnx = run_onnx(sess, x[:, t], state_onnx)
        torch.testing.assert_close(y_onnx, y, rtol=1e-5, atol=1e-5)
    for a, b in zip(state_onnx, state):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_charlm_graphs_take_ids_and_give_logits(tmp_path):
    from rnnkit.models.charlm import CharLM, CharLMConfig
    torch.manual_seed(0)
    model = CharLM(CharLMConfig(vocab_size=7, cell="lstm", hidden_size=6, num_layers=2, embedding_dim=4)).eval()
    ids = torch.randint(0, 7, (2, 5))
    with torch.no_grad():
        logits, state = model(ids)
    sess = session(rnnkit.export_onnx(model, tmp_path / "lm.onnx"))
    zeros = [torch.zeros_like(s).numpy() for s in state]
    out = sess.run(None, {"ids": ids.numpy(), "state_0": zeros[0], "state_1": zeros[1]})
    torch.testing.assert_close(torch.from_numpy(out[0]), logits, rtol=1e-5, atol=1e-5)


def test_bad_requests_are_one_line_errors(tmp_path):
    layer = rnnkit.GRU(4, input_size=2, bidirectional=True)
    with pytest.raises(UserError, match="cannot stream"):
        rnnkit.export_onnx(layer, tmp_path / "s.onnx", step=True)
    with pytest.raises(UserError, match="not built"):
        rnnkit.export_onnx(rnnkit.GRU(4), tmp_path / "a.onnx")
    with pytest.raises(UserError, match="does not exist"):
        rnnkit.export_onnx(layer, tmp_path / "missing" / "a.onnx")
    with pytest.raises(UserError, match="merge_mode"):
        rnnkit.export_onnx(rnnkit.GRU(4, input_size=2, bidirectional=True, merge_mode=None), tmp_path / "a.onnx")
    (tmp_path / "old.onnx").write_text("keep me")
    with pytest.raises(UserError, match="exists"):
        rnnkit.export_onnx(layer, tmp_path / "old.onnx")
    assert (tmp_path / "old.onnx").read_text() == "keep me"


def test_missing_extra_says_what_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnxscript", None)   # import fails as if not installed
    with pytest.raises(UserError, match=r'pip install "rnnkit\[export\]"'):
        rnnkit.export_onnx(rnnkit.GRU(4, input_size=2), "x.onnx")


def test_cli_without_the_extra_is_one_line(monkeypatch, capsys, tmp_path):
    import sys

    from rnnkit.cli import main
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", "--checkpoint", str(tmp_path / "ck.safetensors"), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert 'pip install "rnnkit[export]"' in err and err.count("\n") == 1


def greedy_from_onnx(seq_path, step_path, prime: str, length: int) -> str:
    """Greedy text from the two exported graphs alone (vocabulary from the model's metadata)."""
    import json

    import numpy as np
    seq, step = session(seq_path), session(step_path)
    meta = {p.key: p.value for p in onnx.load(str(seq_path)).metadata_props}
    chars = json.loads(meta["rnnkit.vocab"])
    config = json.loads(meta["rnnkit.model"])
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([[index[c] for c in prime]], dtype=np.int64)
    inputs = [i for i in seq.get_inputs() if i.name.startswith("state_")]
    sizes = {"state_0": config["hidden_size"], "state_1": config["hidden_size"]}
    state = [np.zeros((config["num_layers"], 1, sizes[i.name]), dtype=np.float32) for i in inputs]
    logits, *state = seq.run(None, {"ids": ids, **{f"state_{i}": s for i, s in enumerate(state)}})
    logits, out = logits[:, -1], []
    for _ in range(length):
        nxt = logits.argmax(-1)
        out.append(chars[int(nxt[0])])
        logits, *state = step.run(None, {"ids": nxt.astype(np.int64), **{f"state_{i}": s for i, s in enumerate(state)}})
    return "".join(out)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cli_export_of_charlm_generates_the_same_greedy_text(cell, tmp_path, capsys):
    import io

    from rnnkit.cli import main
    from rnnkit.tasks import charlm
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. a dog ran to the red door. " * 40, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "charlm", "--text", str(text), "--cell", cell, "--hidden-size", "16", "--num-layers", "2",
                 "--embedding-dim", "8", "--batch-size", "4", "--seq-len", "16", "--max-steps", "120", "--lr", "0.03",
                 "--out", str(out), "--quiet", "--sample-length", "0"]) == 0
    ck = str(out / "best.safetensors")
    assert main(["export", "--checkpoint", ck, "--out", str(tmp_path / "lm.onnx")]) == 0
    assert main(["export", "--checkpoint", ck, "--out", str(tmp_path / "lm-step.onnx"), "--step"]) == 0
    model, vocab = charlm.load_model(ck)
    expected = charlm.generate(model, vocab, "the ", 60, temperature=0.0, stream=io.StringIO())
    assert len(set(expected)) >= 4, expected   # a text, not one repeated character that any graph would give
    assert greedy_from_onnx(tmp_path / "lm.onnx", tmp_path / "lm-step.onnx", "the ", 60) == expected
    capsys.readouterr()
    assert main(["export", "--checkpoint", ck, "--out", str(tmp_path / "lm.onnx")]) == 2   # no silent overwrite
    assert "exists" in capsys.readouterr().err


def test_cli_checks_the_output_file_as_visualize_does_before_reading_the_checkpoint(tmp_path, capsys, monkeypatch):
    """One check for an output file (tasks/options.check_out_file): the same faults, the same one line and exit 2
    in rnnkit export and rnnkit visualize; export checks --out before it reads the checkpoint."""
    from helpers import error_of
    from rnnkit.tasks import charlm
    monkeypatch.setattr(charlm, "load_model", lambda path: pytest.fail("the checkpoint was read before --out"))
    ck = str(tmp_path / "lm.safetensors")   # never read
    (tmp_path / "dir.onnx").mkdir()
    (tmp_path / "dir.html").mkdir()
    (tmp_path / "old.onnx").write_text("keep me")
    (tmp_path / "old.html").write_text("keep me")
    for name, flags in (("dir", ["--overwrite"]), ("no/page", []), ("page.txt", []), ("old", [])):
        out = str(tmp_path / name)
        onnx_line = error_of(capsys, ["export", "--checkpoint", ck, "--out", out + ".onnx" * ("." not in name),
                                      *flags])
        html_line = error_of(capsys, ["visualize", "--checkpoint", ck, "--out", out + ".html" * ("." not in name),
                                      *flags])
        assert onnx_line.replace(".onnx", ".html") == html_line.replace(".html or .htm", ".html")
    assert (tmp_path / "old.onnx").read_text() == "keep me" and (tmp_path / "dir.onnx").is_dir()
