"""Layer invariants: batching, padding, masks, directions, dropout, zoneout, Keras conventions."""
import pytest
import torch

import rnnkit
from rnnkit.kernels.reference import recur
from rnnkit.layers import Recurrent

from helpers import CELL_CONFIGS, CELL_IDS, holes_mask, make_cell, random_state

LAYERS = [(rnnkit.SimpleRNN, {}), (rnnkit.LSTM, {"peephole": True}), (rnnkit.LSTM, {}), (rnnkit.GRU, {}),
          (rnnkit.GRU, {"reset_after": False}), (rnnkit.JordanRNN, {}), (rnnkit.LayerNormLSTM, {})]
LAYER_IDS = ["rnn", "lstm-peephole", "lstm", "gru", "gru-cho", "jordan", "lnlstm"]


def make_layer(cls, options, **kw):
    torch.manual_seed(0)
    return cls(6, input_size=3, return_sequences=True, return_state=True, **options, **kw).double()


@pytest.mark.parametrize("cls,options", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("layout", [{}, {"num_layers": 2}, {"bidirectional": True, "num_layers": 2}])
def test_batch_equals_sequences_one_at_a_time(cls, options, layout):
    layer = make_layer(cls, options, **layout)
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    lengths = torch.tensor([7, 4, 1, 6])
    seq, state = layer(x, lengths=lengths)
    for b in range(4):
        L = int(lengths[b])
        seq_b, state_b = layer(x[b:b + 1, :L])
        torch.testing.assert_close(seq[b:b + 1, :L], seq_b)
        assert torch.all(seq[b, L:] == 0)
        for s, s_b in zip(state, state_b):
            torch.testing.assert_close(s[:, b:b + 1], s_b)


@pytest.mark.parametrize("cls,options", LAYERS, ids=LAYER_IDS)
def test_padding_values_never_change_results(cls, options):
    layer = make_layer(cls, options, bidirectional=True)
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    noisy = x.clone()
    for b, L in enumerate(lengths):
        noisy[b, L:] = 1e3 * torch.randn_like(noisy[b, L:])
    a, b_ = layer(x, lengths=lengths), layer(noisy, lengths=lengths)
    torch.testing.assert_close(a[0], b_[0])
    for s, t in zip(a[1], b_[1]):
        torch.testing.assert_close(s, t)


@pytest.mark.parametrize("cls,options", [c[1:] for c in CELL_CONFIGS], ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_mask_of_any_pattern_equals_compacted_sequence(cls, options, reverse):
    """Masked steps carry the state: valid outputs equal a run over the valid steps only."""
    cell = make_cell(cls, options)
    B, T = 5, 6
    x = torch.randn(B, T, 3, dtype=torch.float64)
    state = random_state(cell, B)
    mask = holes_mask(B, T)
    seq, last, final = recur(cell, x, state, mask=mask, reverse=reverse)
    for b in range(B):
        idx = mask[b].nonzero()[:, 0]
        s0 = tuple(s[b:b + 1] for s in state)
        assert torch.all(seq[b, ~mask[b]] == 0)
        if len(idx) == 0:  # a fully masked row keeps its initial state
            for s, s_init in zip(final, s0):
                torch.testing.assert_close(s[b:b + 1], s_init)
            assert torch.all(last[b] == 0)
            continue
        seq_b, last_b, final_b = recur(cell, x[b:b + 1, idx], s0, reverse=reverse)
        torch.testing.assert_close(seq[b, idx], seq_b[0])
        torch.testing.assert_close(last[b], last_b[0])
        for s, s_b in zip(final, final_b):
            torch.testing.assert_close(s[b:b + 1], s_b)


@pytest.mark.parametrize("cls,options", LAYERS, ids=LAYER_IDS)
def test_bidirectional_equals_two_directions_by_hand(cls, options):
    layer = make_layer(cls, options, bidirectional=True)
    fwd, bwd = layer.cells()[0]
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    lengths = torch.tensor([5, 3, 1])
    seq, state = layer(x, lengths=lengths)
    H = layer.hidden_size if cls is not rnnkit.JordanRNN else fwd.output_size
    for b, L in enumerate(lengths.tolist()):
        xb = x[b:b + 1, :L]
        f_seq, _, f_state = recur(fwd, xb, fwd.init_state(1, dtype=torch.float64))
        b_seq, _, b_state = recur(bwd, xb.flip(1), bwd.init_state(1, dtype=torch.float64))
        torch.testing.assert_close(seq[b, :L, :H], f_seq[0])
        torch.testing.assert_close(seq[b, :L, H:], b_seq[0].flip(0))  # backward run on the reversed span
        torch.testing.assert_close(state[0][0, b], f_state[0][0])
        torch.testing.assert_close(state[0][1, b], b_state[0][0])


@pytest.mark.parametrize("merge_mode", ["sum", "mul", "ave", None])
def test_merge_modes(merge_mode):
    torch.manual_seed(0)
    concat = rnnkit.GRU(4, input_size=3, bidirectional=True, return_sequences=True)
    other = rnnkit.GRU(4, input_size=3, bidirectional=True, merge_mode=merge_mode, return_sequences=True)
    other.load_state_dict(concat.state_dict())
    x = torch.randn(2, 5, 3)
    f, b = concat(x).chunk(2, -1)
    expected = {"sum": f + b, "mul": f * b, "ave": (f + b) / 2, None: (f, b)}[merge_mode]
    out = other(x)
    for o, e in zip(out if merge_mode is None else [out], expected if merge_mode is None else [expected]):
        torch.testing.assert_close(o, e)


def test_return_conventions_and_lazy_input_size():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(8)
    assert layer.input_size is None
    x = torch.randn(2, 5, 3)
    last = layer(x, lengths=[5, 2])
    assert layer.input_size == 3 and last.shape == (2, 8)
    layer.return_sequences = layer.return_state = True
    seq, (h, c) = layer(x, lengths=[5, 2])
    torch.testing.assert_close(last[1], seq[1, 1])  # the last valid step, not the padded end
    torch.testing.assert_close(last, h[-1])
    time_major = rnnkit.LSTM(8, input_size=3, batch_first=False, return_sequences=True)
    time_major.load_state_dict(layer.state_dict())
    torch.testing.assert_close(time_major(x.transpose(0, 1), lengths=[5, 2]).transpose(0, 1), seq)


def test_initial_state_in_final_state_out_continues_a_sequence():
    layer = make_layer(rnnkit.LSTM, {}, num_layers=2)
    x = torch.randn(2, 8, 3, dtype=torch.float64)
    whole, s_whole = layer(x)
    first, s = layer(x[:, :5])
    second, s_end = layer(x[:, 5:], s)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    for a, b in zip(s_end, s_whole):
        torch.testing.assert_close(a, b)


def test_go_backwards_processes_valid_span_in_reverse():
    torch.manual_seed(0)
    layer = rnnkit.GRU(4, input_size=3, go_backwards=True, return_sequences=True, return_state=True)
    x = torch.randn(2, 5, 3)
    seq, (h,) = layer(x, lengths=[5, 3])
    forward_twin = rnnkit.GRU(4, input_size=3, return_sequences=True, return_state=True)
    forward_twin.load_state_dict(layer.state_dict())
    seq_r, (h_r,) = forward_twin(x[1:, :3].flip(1))
    torch.testing.assert_close(seq[1, :3], seq_r[0].flip(0))
    torch.testing.assert_close(h[0, 1], h_r[0, 0])


def test_recurrent_dropout_one_mask_per_sequence_and_off_in_eval(monkeypatch):
    torch.manual_seed(0)
    layer = Recurrent(make_cell(rnnkit.cells.LSTMCell, {}, hidden_size=64, dtype=torch.float32),
                      recurrent_dropout=0.5, return_sequences=True, backend="reference")  # observes cell.step
    seen = []
    step = type(layer.cell).step
    monkeypatch.setattr(type(layer.cell), "step", staticmethod(lambda x, s, p, m=None: seen.append(m) or step(x, s, p, m)))
    x = torch.randn(8, 6, 3)
    layer.train()
    layer(x)
    masks = seen[:]
    assert len(masks) == 6 and all(m is masks[0] for m in masks)  # reused at every step
    m = masks[0]
    assert set(m.unique().tolist()) == {0.0, 2.0}  # dropped or scaled by 1/keep
    assert not torch.equal(m[0], m[1])  # one mask per sequence
    seen.clear()
    layer.eval()
    out_eval = layer(x)
    assert all(m is None for m in seen)
    plain = Recurrent(layer.cell, return_sequences=True, backend="reference")
    torch.testing.assert_close(out_eval, plain(x))


def test_zoneout_training_keeps_or_updates_each_unit_and_eval_uses_expectation():
    """Training: each unit keeps its previous value exactly where the sampled Bernoulli(p) mask says so
    (the mask is redrawn from the same seed: an exact check, not a rate window); the rate of a large
    draw is p within 4 standard deviations. Evaluation: the expectation p h_prev + (1 - p) h_new."""
    p = 0.3
    cell = make_cell(rnnkit.cells.GRUCell, {}, hidden_size=32, dtype=torch.float64)
    layer = Recurrent(cell, zoneout=p, return_sequences=True).double()
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    layer.train()
    torch.manual_seed(123)
    seq = layer(x)
    torch.manual_seed(123)
    expected = torch.rand(4, 5, 32, dtype=torch.float64) < p  # sample_masks' draw: (u < p) keeps
    h_prev = torch.zeros(4, 32, dtype=torch.float64)
    for t in range(5):
        candidate = cell.step(x[:, t], (h_prev,), cell)[0]
        kept = expected[:, t]
        assert torch.equal(seq[:, t][kept], h_prev[kept])
        torch.testing.assert_close(seq[:, t][~kept], candidate[~kept])  # the native kernel: rounding only
        h_prev = seq[:, t]
    zone = layer.sample_masks(torch.zeros(64, 50, 3, dtype=torch.float64))[1][0]
    n = zone.numel()
    assert abs(float(zone.mean()) - p) < 4 * (p * (1 - p) / n) ** 0.5
    layer.eval()
    out1, out2 = layer(x), layer(x)
    torch.testing.assert_close(out1, out2)
    h = torch.zeros(4, 32, dtype=torch.float64)
    for t in range(5):
        h = p * h + (1 - p) * cell.step(x[:, t], (h,), cell)[0]
        torch.testing.assert_close(out1[:, t], h)


def test_jordan_teacher_forcing_feeds_targets_back():
    torch.manual_seed(0)
    layer = rnnkit.JordanRNN(4, input_size=3, output_size=2, return_sequences=True).double()
    x, y = torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 5, 2, dtype=torch.float64)
    cell = layer.cells()[0][0]
    forced = layer(x, targets=y)
    state = cell.init_state(2, dtype=torch.float64)
    for t in range(5):
        out = cell.step(x[:, t], state if t == 0 else (y[:, t - 1],), cell)[0]
        torch.testing.assert_close(forced[:, t], out)
    layer.eval()  # generation: its own outputs are fed back
    free = layer(x, targets=y)
    torch.testing.assert_close(free, layer(x))
    assert not torch.allclose(free, forced)


@pytest.mark.parametrize("cls,options", [(rnnkit.LSTM, {}), (rnnkit.GRU, {}), (rnnkit.LSTM, {"peephole": True}),
                                         (rnnkit.MinGRU, {})], ids=["lstm-torch", "gru-torch", "lstm-native", "mingru"])
def test_under_bf16_autocast_the_state_keeps_the_input_dtype_and_native_kernels_stay_exact(cls, options):
    torch.manual_seed(0)
    layer = cls(8, input_size=3, num_layers=2, return_sequences=True, return_state=True, **options)
    x = torch.randn(2, 5, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        seq, state = layer(x)
        seq2, state2 = layer(x, state)        # a carried state goes back in (fused LSTM hands out bf16)
    assert all(s.dtype == torch.float32 for s in state + state2)
    if layer.backend in ("native", "scan"):   # compiled kernels compute in fp32 whatever the autocast
        torch.testing.assert_close(seq, layer(x)[0])


def backends_for(cls):
    found = ["reference", "torch"] if cls is not rnnkit.LayerNormLSTM else ["reference"]
    return found + (["native"] if rnnkit.kernels.native_supports(rnnkit.cells.LSTMCell(1, 1)) else [])


@pytest.mark.parametrize("backend", backends_for(rnnkit.LSTM))
@pytest.mark.parametrize("num_layers", [1, 2])
def test_dropout_is_keras_dropout_on_each_layers_inputs(backend, num_layers):
    """dropout=p drops the first layer's inputs too (Keras), in training mode only, on every backend."""
    torch.manual_seed(0)
    layer = rnnkit.LSTM(6, input_size=4, num_layers=num_layers, dropout=0.5, return_sequences=True,
                        backend=backend)
    x = torch.randn(3, 5, 4)
    torch.manual_seed(1)
    a = layer(x)
    torch.manual_seed(2)
    b = layer(x)
    assert not torch.allclose(a, b)   # the inputs are dropped afresh at every call
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))
    if num_layers == 1:   # a one-layer layer in training mode == the layer on dropped inputs
        layer.train()
        torch.manual_seed(3)
        a = layer(x)
        torch.manual_seed(3)
        dropped = rnnkit.kernels.dropout(x, 0.5)
        torch.testing.assert_close(a, layer.eval()(dropped))


@pytest.mark.parametrize("make,match", [
    (lambda: rnnkit.SimpleRNN(32, input_shap=(None, 1)), "unknown keyword argument 'input_shap'"),
    (lambda: rnnkit.GRU(64, activaton="relu"), "unknown keyword argument 'activaton'"),
    (lambda: rnnkit.LSTM(8, kernel_regularizer="l2"), "kernel_regularizer=: .*weight_decay"),
    (lambda: rnnkit.LSTM(8, unit_forget_bias=False), "forget-gate bias at 1"),
    (lambda: rnnkit.GRU(8, time_major=True), "batch_first=False"),
    (lambda: rnnkit.SimpleRNN(8, recurrent_activation="sigmoid"), "recurrent_activation"),
    (lambda: rnnkit.layers.Dense(8, kernel_initializer="he_normal"), "torch.nn.init"),
    (lambda: rnnkit.layers.Dense(8, actvation="relu"), "unknown keyword argument 'actvation'"),
])
def test_unknown_keywords_fail_at_construction_naming_the_argument(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_keras_arguments_that_rnnkit_takes():
    rnn = rnnkit.SimpleRNN(32, input_shape=(None, 1))
    assert rnn.input_size == 1 and rnn(torch.randn(2, 4, 1)).shape == (2, 32)
    assert rnnkit.LSTM(units=4, input_dim=3, unroll=True)(torch.randn(2, 5, 3)).shape == (2, 4)
    gru = rnnkit.GRU(8, activation="relu", input_shape=(None, 3))
    assert gru.backend == "reference"   # a non-standard activation runs on the reference loop
    x = torch.randn(2, 5, 3)
    cell = gru.cells()[0][0]
    h = torch.zeros(2, 8)
    for t in range(5):   # Keras's GRU with relu as the candidate's activation
        xr, xz, xn = (x[:, t] @ cell.weight_ih.T + cell.bias_ih).chunk(3, 1)
        hr, hz, hn = (h @ cell.weight_hh.T + cell.bias_hh).chunk(3, 1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        h = (1 - z) * torch.relu(xn + r * hn) + z * h
    torch.testing.assert_close(gru(x), h)
    standard = rnnkit.LSTM(8, activation="tanh", recurrent_activation="sigmoid", input_size=3)
    assert standard.backend == "torch"
    custom = rnnkit.LSTM(8, recurrent_activation="hard_sigmoid", input_size=3)
    assert custom.backend == "reference"
    custom.load_state_dict(standard.state_dict())
    assert not torch.allclose(custom(x), standard(x))


def test_stateful_carries_the_state_between_calls_until_reset():
    torch.manual_seed(0)
    layer = rnnkit.GRU(5, input_size=2, stateful=True)
    x = torch.randn(3, 8, 2)
    whole = rnnkit.GRU(5, input_size=2)
    whole.load_state_dict(layer.state_dict())
    layer(x[:, :4])
    torch.testing.assert_close(layer(x[:, 4:]), whole(x))   # the second call continues the first
    layer.reset_states()
    torch.testing.assert_close(layer(x[:, 4:]), whole(x[:, 4:]))
    with pytest.raises(ValueError, match="batch size fixed"):
        layer(x[:2])


def test_a_lazy_layer_loads_a_state_dict_before_its_first_call():
    torch.manual_seed(0)
    built = rnnkit.LSTM(6, input_size=3, num_layers=2, bidirectional=True)
    fresh = rnnkit.LSTM(6, num_layers=2, bidirectional=True)
    fresh.load_state_dict(built.state_dict())
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(fresh(x), built(x))
    dense = rnnkit.layers.Dense(2, input_size=6)
    fresh_dense = rnnkit.layers.Dense(2)
    fresh_dense.load_state_dict(dense.state_dict())
    torch.testing.assert_close(fresh_dense(torch.ones(1, 6)), dense(torch.ones(1, 6)))
