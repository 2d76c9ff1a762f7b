"""rnnkit.inspect: the gates of every cell family, a character model's activations, features and rankings."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import CELL_CONFIGS, make_cell, random_state
from rnnkit.cells import MinGRUCell, MinLSTMCell
from rnnkit.cells.activated import ActivatedGRUCell, ActivatedLSTMCell
from rnnkit.cells.minrnn import g as min_g
from rnnkit.data.text import Vocabulary
from rnnkit.inspect import activations, rank_units, saturation, text_features
from rnnkit.inspect.activations import Activations, LayerActivations
from rnnkit.inspect.features import bracket_depth, inside_quotes, position_in_line, start_of_word
from rnnkit.inspect.gates import step_function
from rnnkit.models.charlm import CharLM, CharLMConfig

ALL_CELLS = CELL_CONFIGS + [
    ("mingru", MinGRUCell, {}),
    ("minlstm", MinLSTMCell, {}),
    ("lstm-relu-hardsigmoid", ActivatedLSTMCell, {"activation": torch.relu,
                                                  "recurrent_activation": F.hardsigmoid}),
    ("gru-cho-relu", ActivatedGRUCell, {"activation": torch.relu, "reset_after": False}),
]


def recombine(cell, prev, q):
    """The next state built from the inspected gates by the equations in the cell's docstring."""
    kind = type(cell).__name__
    if kind in ("LSTMCell", "ActivatedLSTMCell", "LayerNormLSTMCell"):
        c = q["forget gate"] * prev[1] + q["input gate"] * q["candidate"]
        if kind == "LayerNormLSTMCell":
            squashed = torch.tanh(F.layer_norm(c, (cell.hidden_size,), cell.ln_c_weight, cell.ln_c_bias, cell.eps))
        else:
            squashed = getattr(cell, "activation", torch.tanh)(c)
        h = q["output gate"] * squashed
        return (h if getattr(cell, "weight_hr", None) is None else h @ cell.weight_hr.T, c)
    if kind in ("GRUCell", "ActivatedGRUCell", "MinGRUCell"):
        return ((1 - q["update gate"]) * (q["candidate"] if kind != "MinGRUCell" else prev[0])
                + q["update gate"] * (prev[0] if kind != "MinGRUCell" else q["candidate"]),)
    if kind == "MinLSTMCell":
        f, i = q["forget gate"], q["input gate"]
        return (f / (f + i) * prev[0] + i / (f + i) * q["candidate"],)
    if kind == "JordanCell":
        return (cell.output_activation(q["hidden"] @ cell.weight_hy.T + cell.bias_y),)
    return (q["hidden"],)   # Elman: the state is the hidden activation itself


@pytest.mark.parametrize("name,cls,options", ALL_CELLS, ids=[c[0] for c in ALL_CELLS])
def test_inspected_step_equals_cell_step_and_gates_recombine(name, cls, options):
    cell = make_cell(cls, options)
    x, prev = torch.randn(4, 3, dtype=torch.float64), random_state(cell, 4)
    reference = cell.step(x, prev, cell)
    state, q = step_function(cell)(x, prev, cell)
    for got, want in zip(state, reference):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    for got, want in zip(recombine(cell, prev, q), reference):   # gates -> state by the cell's equations
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    for gate in (n for n in q if n.endswith("gate")):
        assert q[gate].shape == (4, cell.hidden_size)
    if cls is MinGRUCell:   # the candidate is g(.) > 0 (log-space minGRU)
        assert (q["candidate"] > 0).all() and min_g(torch.tensor([-1.0, 1.0])).gt(0).all()


@pytest.mark.parametrize("name,cls,options", ALL_CELLS, ids=[c[0] for c in ALL_CELLS])
def test_the_gates_are_the_cells_own(name, cls, options, monkeypatch):
    """The inspected quantities are what the cell's step computed (its math lives in rnnkit/cells alone): a step
    changed in the cell shows in the inspected gates."""
    cell = make_cell(cls, options)
    x, prev = torch.randn(4, 3, dtype=torch.float64), random_state(cell, 4)
    original = cls.step

    def doubled(x_t, state, p, rec_mask=None, record=None):
        new = original(2 * x_t, state, p, rec_mask, record)
        return new
    monkeypatch.setattr(cls, "step", staticmethod(doubled))
    state, q = step_function(cell)(x, prev, cell)
    monkeypatch.undo()
    reference, inside = cls.step(2 * x, prev, cell), {}
    cls.step(2 * x, prev, cell, record=inside)
    assert set(q) == set(inside) and "hidden" in q
    for name_ in q:
        torch.testing.assert_close(q[name_], inside[name_], rtol=0, atol=0)
    for got, want in zip(state, reference):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def tiny_charlm(cell: str, zoneout: float = 0.0, embedding_dim: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    vocab = Vocabulary.build('ab"c (d)\n')
    model = CharLM(CharLMConfig(len(vocab), cell, hidden_size=6, num_layers=2, embedding_dim=embedding_dim,
                                zoneout=zoneout))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval(), vocab


TEXT = 'ab "c (d) a"\nba (c "d") ' * 3


@pytest.mark.parametrize("cell", ["rnn", "jordan", "lstm", "gru", "lnlstm", "mingru", "minlstm"])
def test_layer_outputs_equal_the_models_forward(cell):
    """The states inspect returns are what each layer's own forward pass (its fast path) outputs."""
    model, vocab = tiny_charlm(cell, zoneout=0.25 if cell == "gru" else 0.0)
    acts = activations(model, TEXT, vocab)
    x = model.inputs(vocab.encode(TEXT))[None]
    with torch.no_grad():
        for layer, got in zip(model.rnn.stack.layers, acts.layers):
            x = layer.run(x)[0]                                      # (1, T, units)
            torch.testing.assert_close(got[got.output], x[0], rtol=1e-5, atol=1e-5)
        logits = model(vocab.encode(TEXT)[None])[0][0]
    probs, ids = logits.softmax(-1).topk(5, -1)
    torch.testing.assert_close(acts.top_probs, probs, rtol=1e-4, atol=1e-5)
    agree = [a == [vocab.chars[int(i)] for i in row] for a, row in zip(acts.top_chars, ids)]
    assert sum(agree) >= len(TEXT) - 2   # (a near-tie may swap two neighbours)
    assert acts.max_prob_diff < 1e-5
    assert len(acts.layers) == 2 and all(q.shape[0] == len(TEXT) for la in acts.layers for q in la.quantities.values())
    expected = {"rnn": ["hidden"], "jordan": ["output", "hidden"], "gru": ["hidden", "reset gate", "update gate",
                "candidate"], "mingru": ["hidden", "update gate", "candidate"]}
    if cell in expected:
        assert acts.layers[0].names == expected[cell]
    if cell in ("lstm", "lnlstm"):
        assert acts.layers[0].gates == ["input gate", "forget gate", "output gate"] and "cell" in acts.layers[0].names
    bits = F.cross_entropy(logits[:-1], vocab.encode(TEXT)[1:]).item() / torch.log(torch.tensor(2.0)).item()
    assert acts.bits_per_char == pytest.approx(bits, rel=1e-5)


def test_one_hot_inputs_and_unknown_characters():
    model, vocab = tiny_charlm("lstm", embedding_dim=0)
    acts = activations(model, "ab€c", vocab)
    assert acts.unknown == {"€"} and acts.layers[1]["cell"].shape == (4, 6)


def test_a_checkpoint_path_loads_safely(tmp_path):
    from rnnkit.train.checkpoint import save_checkpoint
    model, vocab = tiny_charlm("gru")
    path = tmp_path / "lm.safetensors"
    save_checkpoint(path, model.state_dict(), config={"task": "charlm", "model": model.config.to_dict(),
                                                      "vocab": list(vocab.chars)})
    from_path, direct = activations(str(path), TEXT), activations(model, TEXT, vocab)
    torch.testing.assert_close(from_path.layers[1]["update gate"], direct.layers[1]["update gate"])


def test_bad_calls_say_what_is_wrong():
    model, vocab = tiny_charlm("gru")
    with pytest.raises(ValueError, match="vocabulary"):
        activations(model, TEXT)
    with pytest.raises(ValueError, match="non-empty"):
        activations(model, "", vocab)


def test_features_by_hand():
    text = 'a "b(c)" d\nef'
    assert inside_quotes(text) == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert inside_quotes("a'b\nc'd'e", "'", line_ends=True) == [0, 1, 1, 0, 0, 1, 1, 0, 0]
    assert bracket_depth(text) == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert position_in_line(text) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2]
    assert start_of_word(text) == [1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0]


def planted(text: str, unit: int = 3, units: int = 8) -> Activations:
    """Random activations with one unit of layer 1's cell state that is the inside-quotes feature plus noise."""
    torch.manual_seed(0)
    T = len(text)
    quote = torch.tensor(inside_quotes(text))
    cell = torch.randn(T, units)
    cell[:, unit] = 2 * quote - 1 + 0.1 * torch.randn(T)
    gate = torch.rand(T, units)
    gate[:, 0], gate[:, 1] = 0.05, 0.95              # unit 0 always left-saturated, unit 1 always right-saturated
    gate[: T // 2, 2], gate[T // 2:, 2] = 0.01, 0.5  # unit 2 left-saturated half the time
    layers = [LayerActivations({"hidden": torch.randn(T, units), "forget gate": torch.rand(T, units)}),
              LayerActivations({"hidden": torch.randn(T, units), "cell": cell, "forget gate": gate})]
    return Activations(text, "lstm", layers, [["a"]] * T, torch.ones(T, 1), 1.0)


def test_the_ranking_finds_a_planted_quote_unit():
    text = 'say "hello there" and (then "go") now\n' * 20
    best = rank_units(planted(text))
    quote = [s for s in best if s.feature == "inside quotes"]
    assert (quote[0].layer, quote[0].quantity, quote[0].unit) == (1, "cell", 3) and quote[0].r > 0.95
    assert all(abs(s.r) < 0.5 for s in quote[1:])
    assert [abs(s.r) for s in best] == sorted((abs(s.r) for s in best), reverse=True)
    r = torch.corrcoef(torch.stack([planted(text).layers[1]["cell"][:, 3].double(),
                                    text_features(text)["inside quotes"]]))[0, 1]
    assert quote[0].r == pytest.approx(float(r), abs=1e-5)


def test_a_feature_absent_from_the_text_ranks_nothing():
    assert not [s for s in rank_units(planted("no quotes here\n" * 5)) if s.feature == "inside quotes"]


def test_saturation_fractions_by_hand():
    text = "abcd" * 10
    sat = saturation(planted(text))
    left, right = sat[1]["forget gate"]
    assert (left[0], right[0], left[1], right[1], left[2], right[2]) == (1.0, 0.0, 0.0, 1.0, 0.5, 0.0)
    assert list(sat[0]) == ["forget gate"] and list(sat[1]) == ["forget gate"]
