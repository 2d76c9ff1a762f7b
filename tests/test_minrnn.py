"""minGRU / minLSTM: the parallel scan equals the step-by-step specification."""
from types import SimpleNamespace

import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.cells import CELLS, LSTMCell, MinGRUCell, MinLSTMCell
from rnnkit.cells.minrnn import g, log_g
from rnnkit.kernels import scan
from rnnkit.kernels.reference import recur
from rnnkit.layers import Recurrent

from helpers import holes_mask, make_cell, random_state

MIN_CELLS = [MinGRUCell, MinLSTMCell]
IDS = ["mingru", "minlstm"]


@pytest.fixture(params=["native", "logcumsumexp"])
def scan_path(request, monkeypatch):
    """Each test on the compiled recurrence and on the logcumsumexp scan (as on a GPU or without a compiler)."""
    if request.param == "logcumsumexp":
        monkeypatch.setattr(scan, "native_module", lambda: None)
    elif scan.native_module() is None:
        pytest.skip("csrc/scan.cpp cannot be built here")
    return request.param


def test_registered_and_dispatched_to_the_scan():
    assert CELLS["mingru"] is MinGRUCell and CELLS["minlstm"] is MinLSTMCell
    assert Recurrent(MinGRUCell(3, 4)).backend == "scan"
    assert rnnkit.MinLSTM(4, input_size=3).backend == "scan"
    assert Recurrent(MinGRUCell(3, 4), zoneout=0.1).backend == "reference"
    assert Recurrent(MinLSTMCell(3, 4), backend="reference").backend == "reference"
    with pytest.raises(ValueError, match="scan"):
        Recurrent(LSTMCell(3, 4), backend="scan")
    with pytest.raises(ValueError, match="scan"):
        Recurrent(MinGRUCell(3, 4), zoneout=0.2, backend="scan")
    assert Recurrent(MinGRUCell(3, 4), recurrent_dropout=0.2).backend == "scan"


def test_g_is_positive_continuous_and_log_g_is_its_logarithm():
    v = torch.linspace(-30, 30, 2001, dtype=torch.float64)
    assert torch.all(g(v) > 0)
    torch.testing.assert_close(log_g(v), torch.log(g(v)))
    assert abs(float(g(torch.tensor(0.0)) - g(torch.tensor(-1e-9)))) < 1e-6


@pytest.mark.parametrize("cls", MIN_CELLS, ids=IDS)
def test_log_coefficients_match_the_step(cls):
    """h_t = a_t h_{t-1} + b_t with the scan's a, b reproduces one step."""
    cell = make_cell(cls, {})
    x, (h,) = torch.randn(4, 3, dtype=torch.float64), random_state(cell, 4)
    log_a, log_b = cell.log_coefficients(x, cell)
    torch.testing.assert_close(log_a.exp() * h + log_b.exp(), cell.step(x, (h,), cell)[0])


@pytest.mark.parametrize("cls", MIN_CELLS, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "holes"])
@pytest.mark.parametrize("chunk", [scan.CHUNK, 3], ids=["one-chunk", "chunks-of-3"])
def test_scan_equals_step_loop_values_and_gradients(scan_path, cls, dtype, reverse, masked, chunk):
    cell = make_cell(cls, {}, dtype=dtype)
    B, T = 5, 8
    x = torch.randn(B, T, 3, dtype=dtype, requires_grad=True)
    h0 = random_state(cell, B, dtype)[0].requires_grad_()
    mask = holes_mask(B, T) if masked else None
    ref = recur(cell, x, (h0,), mask=mask, reverse=reverse)
    got = scan.run(cell, x, (h0,), mask=mask, reverse=reverse, chunk=chunk)
    assert scan.path(x) == scan_path
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {}
    for r, o in zip(ref[:2] + ref[2], got[:2] + got[2]):
        torch.testing.assert_close(o, r, **tol)
    weights = [torch.randn_like(t) for t in ref[:2] + ref[2]]
    inputs = [x, h0, *cell.parameters()]
    loss = lambda out: sum((w * t).sum() for w, t in zip(weights, out[:2] + out[2]))
    for gr, go in zip(torch.autograd.grad(loss(ref), inputs), torch.autograd.grad(loss(got), inputs)):
        # a gradient is a sum over steps: float32 error is relative to its largest entry
        scale = {"atol": 1e-5 * float(gr.abs().max())} if dtype == torch.float32 else {}
        torch.testing.assert_close(go, gr, **tol | scale)


@pytest.mark.parametrize("cls", MIN_CELLS, ids=IDS)
def test_scan_gradcheck_float64(scan_path, cls):
    cell = make_cell(cls, {})
    x = torch.randn(3, 5, 3, dtype=torch.float64, requires_grad=True)
    h0 = random_state(cell, 3)[0].requires_grad_()
    mask = holes_mask(3, 5)

    def f(x, h0, w, b):  # the cell's math on w, b: scan.run only reads these attributes
        p = SimpleNamespace(weight_ih=w, bias_ih=b, log_coefficients=cls.log_coefficients)
        seq, last, (h,) = scan.run(p, x, (h0,), mask=mask, reverse=True, chunk=2)
        return seq, last, h

    w, b = cell.weight_ih.detach().clone().requires_grad_(), cell.bias_ih.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (x, h0, w, b))


@pytest.mark.parametrize("cls", [rnnkit.MinGRU, rnnkit.MinLSTM], ids=IDS)
@pytest.mark.parametrize("layout", [{}, {"num_layers": 2}, {"bidirectional": True, "num_layers": 2}],
                         ids=["one", "stacked", "bidirectional"])
def test_layer_on_scan_equals_layer_on_reference(scan_path, cls, layout):
    torch.manual_seed(0)
    fast = cls(6, input_size=3, return_sequences=True, return_state=True, **layout).double()
    slow = cls(6, input_size=3, return_sequences=True, return_state=True, backend="reference", **layout).double()
    slow.load_state_dict(fast.state_dict())
    assert fast.backend == "scan" and slow.backend == "reference"
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    state = tuple(torch.randn(fast.num_slots, 4, 6, dtype=torch.float64) for _ in fast.state_sizes)
    lengths = torch.tensor([7, 3, 1, 5])
    (seq_f, st_f), (seq_s, st_s) = fast(x, state, lengths=lengths), slow(x, state, lengths=lengths)
    torch.testing.assert_close(seq_f, seq_s)
    for a, b in zip(st_f, st_s):
        torch.testing.assert_close(a, b)
    gf = torch.autograd.grad(seq_f.square().sum(), list(fast.parameters()))
    gs = torch.autograd.grad(seq_s.square().sum(), list(slow.parameters()))
    for a, b in zip(gf, gs):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cls", MIN_CELLS, ids=IDS)
def test_long_sequence_stays_finite_and_accurate(scan_path, cls):
    """T = 4096 in float32 against the float64 step loop: no overflow, small error."""
    cell = make_cell(cls, {}, input_size=4, hidden_size=8, dtype=torch.float64)
    x = 3 * torch.randn(2, 4096, 4, dtype=torch.float64)
    h0 = random_state(cell, 2)
    seq64, _, (h64,) = recur(cell, x, h0)
    cell32 = cell.float()
    xf = x.float().requires_grad_()
    seq, _, (h,) = scan.run(cell32, xf, tuple(s.float() for s in h0))
    grads = torch.autograd.grad(seq.sum(), [xf, *cell32.parameters()])
    assert torch.isfinite(seq).all() and all(torch.isfinite(gr).all() for gr in grads)
    torch.testing.assert_close(seq.double(), seq64, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(h.double(), h64, rtol=1e-4, atol=1e-5)


def test_dispatcher_lists_the_scan_backend():
    assert "scan" in kernels.BACKENDS
    assert kernels.select_backend(MinGRUCell(2, 3)) == "scan"


def dropout_mask(B, H, rate, dtype, seed=4):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((B, H), 1 - rate, dtype=dtype), generator=g) / (1 - rate)


@pytest.mark.parametrize("cls", [rnnkit.MinGRU, rnnkit.MinLSTM], ids=IDS)
def test_recurrent_dropout_keeps_long_sequences_bounded(scan_path, cls):
    """T = 200 at rate 0.5 in training: h_t is a convex combination of h_{t-1} and the dropped,
    rescaled candidate, so |h_t| <= max(|h_0|, max_t 2 g(k_h)); a mask on the carried state
    rescaled by 2 at every step overflows to inf."""
    torch.manual_seed(0)
    layer = cls(16, input_size=4, recurrent_dropout=0.5, return_sequences=True).train()
    assert layer.backend == "scan"
    x = torch.randn(8, 200, 4)
    seq = layer(x)
    cell = layer.cells()[0][0]
    k_h = (x @ cell.weight_ih.T + cell.bias_ih).chunk(cell.gates, -1)[-1]
    bound = 2 * float(g(k_h).max().detach())
    assert torch.isfinite(seq).all() and float(seq.abs().max().detach()) <= bound * (1 + 1e-5)
    grads = torch.autograd.grad(seq.square().mean(), list(layer.parameters()))
    assert all(torch.isfinite(gr).all() for gr in grads)
    assert not torch.equal(seq, layer(x)), "training calls must draw new masks"
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))


@pytest.mark.parametrize("cls", MIN_CELLS, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_scan_with_recurrent_dropout_equals_step_loop(scan_path, cls, dtype, reverse):
    """The same dropout mask on both: values and every gradient agree (holes in the mask included)."""
    cell = make_cell(cls, {}, dtype=dtype)
    B, T = 5, 9
    x = torch.randn(B, T, 3, dtype=dtype, requires_grad=True)
    h0 = random_state(cell, B, dtype)[0].requires_grad_()
    rec_mask, mask = dropout_mask(B, cell.hidden_size, 0.5, dtype), holes_mask(B, T)
    assert 0 < int((rec_mask == 0).sum()) < rec_mask.numel()
    ref = recur(cell, x, (h0,), mask=mask, rec_mask=rec_mask, reverse=reverse)
    got = scan.run(cell, x, (h0,), mask=mask, rec_mask=rec_mask, reverse=reverse, chunk=4)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {}
    for r, o in zip(ref[:2] + ref[2], got[:2] + got[2]):
        torch.testing.assert_close(o, r, **tol)
    inputs = [x, h0, *cell.parameters()]
    loss = lambda out: (out[0] * torch.linspace(-1, 1, out[0].shape[-1], dtype=dtype)).sum() + out[2][0].sum()
    for gr, go in zip(torch.autograd.grad(loss(ref), inputs), torch.autograd.grad(loss(got), inputs)):
        scale = {"atol": 1e-5 * float(gr.abs().max())} if dtype == torch.float32 else {}
        torch.testing.assert_close(go, gr, **tol | scale)


@pytest.mark.parametrize("cls", [rnnkit.MinGRU, rnnkit.MinLSTM], ids=IDS)
def test_layer_with_recurrent_dropout_scan_equals_reference(scan_path, cls):
    """Training mode, the same seed: the scan layer and the reference layer draw the same masks."""
    torch.manual_seed(0)
    fast = cls(6, input_size=3, recurrent_dropout=0.3, num_layers=2, return_sequences=True).double()
    slow = cls(6, input_size=3, recurrent_dropout=0.3, num_layers=2, return_sequences=True,
               backend="reference").double()
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    torch.manual_seed(1)
    a = fast(x)
    torch.manual_seed(1)
    b = slow(x)
    torch.testing.assert_close(a, b)


def test_compiled_scan_refuses_double_backward():
    """FusedMinScan's backward is not differentiable: a second derivative raises instead of being zero."""
    if scan.native_module() is None:
        pytest.skip("csrc/scan.cpp cannot be built here")
    cell = make_cell(MinGRUCell, {})
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    seq, _, _ = scan.run(cell, x, random_state(cell, 2))
    (gx,) = torch.autograd.grad(seq.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        gx.square().sum().backward()  # without the guard: runs, missing the terms through the kernel


@pytest.mark.parametrize("cls", MIN_CELLS, ids=IDS)
def test_scan_equals_step_loop_on_two_threads(scan_path, cls):
    """The compiled scan splits the batch rows over threads: the same values and gradients on two."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cell = make_cell(cls, {})
        x = torch.randn(6, 9, 3, dtype=torch.float64, requires_grad=True)
        h0 = random_state(cell, 6)[0]
        rec_mask, mask = dropout_mask(6, cell.hidden_size, 0.4, torch.float64), holes_mask(5, 9)
        mask = torch.cat([mask, mask[:1]])
        ref = recur(cell, x, (h0,), mask=mask, rec_mask=rec_mask)
        got = scan.run(cell, x, (h0,), mask=mask, rec_mask=rec_mask)
        torch.testing.assert_close(got[0], ref[0])
        for a, b in zip(torch.autograd.grad(got[0].sum(), [x, *cell.parameters()]),
                        torch.autograd.grad(ref[0].sum(), [x, *cell.parameters()])):
            torch.testing.assert_close(a, b)
    finally:
        torch.set_num_threads(before)
