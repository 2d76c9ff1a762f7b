"""Streaming: layer.step over a sequence equals running the sequence at once."""
import copy
import warnings

import pytest
import torch

import rnnkit
from rnnkit.cells import MinGRUCell, MinLSTMCell
from rnnkit.kernels import reference, stream
from rnnkit.layers import Bidirectional, Recurrent, Stacked

from helpers import CELL_CONFIGS, CELL_IDS, make_cell

CONFIGS = CELL_CONFIGS + [("mingru", MinGRUCell, {}), ("minlstm", MinLSTMCell, {})]
IDS = CELL_IDS + ["mingru", "minlstm"]
NATIVE = [True, False]


@pytest.fixture(params=NATIVE, ids=["native", "python"])
def path(request, monkeypatch):
    """Run each test on the compiled step and on the Python fallback (as when no compiler exists)."""
    if not request.param:
        monkeypatch.setattr(stream, "native_module", lambda: None)
    elif stream.native_module() is None:
        pytest.skip("the native step module cannot be built here")
    return "native" if request.param else "reference"


def stream_through(layer, x, state=None):
    """Step over x (B, T, I) one step at a time: (B, T, O) outputs and the final state."""
    outputs = []
    for t in range(x.shape[1]):
        y, state = layer.step(x[:, t], state)
        outputs.append(y)
    return torch.stack(outputs, 1), state


def assert_same(a, b, dtype):
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("cls,options", [c[1:] for c in CONFIGS], ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("zoneout", [0.0, 0.3], ids=["plain", "zoneout"])
def test_every_cell_streams_like_the_whole_sequence(path, cls, options, dtype, zoneout):
    cell = make_cell(cls, options, input_size=3, hidden_size=6, dtype=dtype)
    layer = Recurrent(cell, return_sequences=True, return_state=True, zoneout=zoneout).eval()
    x = torch.randn(3, 7, 3, dtype=dtype)
    state = tuple(0.5 * torch.randn(1, 3, n, dtype=dtype) for n in cell.state_sizes)
    seq, final = layer(x, state)
    got, got_final = stream_through(layer, x, state)
    assert layer.stream_backend == path
    assert_same(got, seq, dtype)
    for a, b in zip(got_final, final):
        assert_same(a, b, dtype)
    # and the specification itself: the reference loop with zoneout's expectation (forward may be a fast path)
    zone = tuple(torch.full((3, 7, n), zoneout, dtype=dtype) for n in cell.state_sizes) if zoneout else None
    ref_seq, _, ref_final = reference.recur(cell, x, tuple(s[0] for s in state), zone=zone)
    assert_same(got, ref_seq, dtype)
    for a, b in zip(got_final, ref_final):
        assert_same(a[0], b, dtype)


@pytest.mark.parametrize("cls,options", [(rnnkit.LSTM, {"proj_size": 4}), (rnnkit.LSTM, {"peephole": True}),
                                         (rnnkit.GRU, {"reset_after": False}), (rnnkit.SimpleRNN, {}),
                                         (rnnkit.MinGRU, {}), (rnnkit.LayerNormLSTM, {}), (rnnkit.JordanRNN, {})],
                         ids=["lstm-proj", "lstm-peephole", "gru-cho", "rnn", "mingru", "lnlstm", "jordan"])
@pytest.mark.parametrize("batch", [1, 3, 12], ids=["B1", "B3", "B12-blas"])
def test_stacked_textbook_layers_stream_like_forward(path, cls, options, batch):
    torch.manual_seed(0)
    layer = cls(6, num_layers=3, dropout=0.2, zoneout=0.1, return_sequences=True, return_state=True,
                **options).eval()
    x = torch.randn(batch, 5, 4)
    seq, final = layer(x)  # built at the first call
    got, got_final = stream_through(layer, x)
    assert_same(got, seq, torch.float32)
    for a, b in zip(got_final, final):
        assert_same(a, b, torch.float32)


def test_unbatched_sample_and_lazy_build(path):
    torch.manual_seed(0)
    layer = rnnkit.LSTM(5, num_layers=2, return_sequences=True, return_state=True)  # input size unknown yet
    x = torch.randn(6, 3)
    y, state = layer.step(x[0])  # builds the layer
    assert y.shape == (5,) and [tuple(s.shape) for s in state] == [(2, 5), (2, 5)]
    for t in range(1, 6):
        y, state = layer.step(x[t], state)
    seq, (h, c) = layer(x[None])
    assert_same(y, seq[0, -1], torch.float32)
    assert_same(state[1], c[:, 0], torch.float32)


def test_hand_built_stack_of_different_cells(path):
    torch.manual_seed(0)
    stack = Stacked([Recurrent(MinGRUCell(3, 4)), Recurrent(rnnkit.cells.GRUCell(4, 4)),
                     Recurrent(rnnkit.cells.ElmanCell(4, 4, activation="relu"))],
                    return_sequences=True, return_state=True)
    x = torch.randn(2, 6, 3)
    seq, final = stack(x)
    got, got_final = stream_through(stack, x)
    assert_same(got, seq, torch.float32)
    assert_same(got_final[0], final[0], torch.float32)


def test_weights_changed_in_place_are_seen(path):
    """An optimiser step or load_state_dict between calls changes the next step's result."""
    torch.manual_seed(0)
    layer = rnnkit.GRU(4, input_size=3, return_sequences=True, return_state=True)
    other = rnnkit.GRU(4, input_size=3)
    x = torch.randn(2, 4, 3)
    stream_through(layer, x)
    layer.load_state_dict(other.state_dict())
    with torch.no_grad():
        layer.cells()[0][0].bias_hh.add_(0.3)
    seq, final = layer(x)
    assert_same(stream_through(layer, x)[0], seq, torch.float32)
    layer.double()  # a dtype change rebuilds the stepper
    seq, final = layer(x.double())
    assert_same(stream_through(layer, x.double())[0], seq, torch.float64)


def test_what_cannot_stream_says_why(path):
    bi = rnnkit.LSTM(4, input_size=3, bidirectional=True)
    with pytest.raises(ValueError, match="Bidirectional"):
        bi.step(torch.randn(2, 3))
    with pytest.raises(ValueError, match="Bidirectional"):
        Bidirectional(Recurrent(rnnkit.cells.LSTMCell(3, 4))).step(torch.randn(3))
    with pytest.raises(ValueError, match="go_backwards"):
        rnnkit.GRU(4, input_size=3, go_backwards=True).step(torch.randn(2, 3))
    with pytest.raises(ValueError, match="eval"):
        rnnkit.LSTM(4, input_size=3, zoneout=0.1).step(torch.randn(2, 3))
    layer = rnnkit.LSTM(4, input_size=3)
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        layer.step(torch.randn(2, 5))
    with pytest.raises(ValueError, match="state"):
        layer.step(torch.randn(2, 3), (torch.zeros(1, 2, 4),))
    with pytest.raises(ValueError, match="shape"):
        layer.step(torch.randn(2, 3), (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))


def test_no_gradients_and_copies_still_work(path):
    torch.manual_seed(0)
    layer = rnnkit.LSTM(4, input_size=3)
    y, state = layer.step(torch.randn(2, 3, requires_grad=True))
    assert not y.requires_grad and not state[0].requires_grad
    twin = copy.deepcopy(layer)  # the compiled stepper is not copied, the twin makes its own
    x = torch.randn(2, 3)
    torch.testing.assert_close(twin.step(x, state)[0], layer.step(x, state)[0])


def test_custom_activation_falls_back_to_python():
    layer = Recurrent(rnnkit.cells.ElmanCell(3, 4, activation=torch.nn.functional.softsign),
                      return_sequences=True)
    x = torch.randn(2, 5, 3)
    got, _ = stream_through(layer, x)
    assert layer.stream_backend == "reference"
    assert_same(got, layer(x), torch.float32)


def test_unbuildable_native_module_warns_once_and_falls_back(monkeypatch):
    from rnnkit.kernels import build
    monkeypatch.setenv("RNNKIT_NATIVE", "0")
    build.reset()
    try:
        layer = rnnkit.LSTM(4, input_size=3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layer.step(torch.randn(2, 3))
            rnnkit.GRU(4, input_size=3).step(torch.randn(3))
        assert layer.stream_backend == "reference"
        assert len([w for w in caught if "RNNKIT_NATIVE=0" in str(w.message)]) == 1
    finally:
        build.reset()


def reference_stream(layer, x, state=None):
    """The step loop through the cells' own Python step functions (kernels.stream.python_stepper)."""
    step = stream.python_stepper(layer.stream_cells())
    outputs = []
    for t in range(x.shape[1]):
        y, state = step(x[:, t], state)
        outputs.append(y)
    return torch.stack(outputs, 1), state


@pytest.mark.parametrize("how", ["assign", "new-parameter", "swap-tensors", "new-cell"])
@pytest.mark.parametrize("cls", [rnnkit.GRU, rnnkit.LSTM, rnnkit.LayerNormLSTM, rnnkit.MinGRU],
                         ids=["gru", "lstm", "lnlstm", "mingru"])
def test_replaced_parameters_are_used_at_the_next_step(path, cls, how):
    """load_state_dict(assign=True), a new nn.Parameter, swap_tensors or a new cell after streaming
    started: the next steps use the new weights (the old stepper kept the old tensors)."""
    torch.manual_seed(0)
    layer = cls(4, input_size=3, num_layers=2, return_sequences=True, return_state=True).eval()
    other = cls(4, input_size=3, num_layers=2).eval()
    x = torch.randn(2, 5, 3)
    stream_through(layer, x)  # the stepper exists and has seen the old weights
    if how == "assign":
        layer.load_state_dict(other.state_dict(), assign=True)
    elif how == "new-parameter":
        cell = layer.cells()[1][0]
        cell.weight_ih = torch.nn.Parameter(cell.weight_ih.detach() + 0.5)
    elif how == "swap-tensors":
        cell = layer.cells()[0][0]
        torch.utils.swap_tensors(cell.weight_ih, torch.nn.Parameter(cell.weight_ih.detach() - 0.5))
    else:
        layer.stack.layers[0].cell = other.cells()[0][0]
    seq, final = layer(x)
    got, got_final = stream_through(layer, x)
    assert_same(got, seq, torch.float32)
    assert_same(got, reference_stream(layer, x)[0], torch.float32)
    for a, b in zip(got_final, final):
        assert_same(a, b, torch.float32)
