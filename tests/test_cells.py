"""Every cell and option: gradients by finite differences, and the cells against torch.nn cells."""
import pytest
import torch
from torch import nn
from torch.func import functional_call

from rnnkit.cells import ElmanCell, GRUCell, LSTMCell
from rnnkit.kernels.reference import recur

from helpers import CELL_CONFIGS, CELL_IDS, holes_mask, make_cell, random_state


class Loop(nn.Module):
    """recur() as a module, so gradcheck can vary the cell's parameters."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, state, **kw):
        seq, last, final = recur(self.cell, x, state, **kw)
        return (seq, last) + tuple(final)


@pytest.mark.parametrize("cls,options", [c[1:] for c in CELL_CONFIGS], ids=CELL_IDS)
@pytest.mark.parametrize("extra", ["plain", "mask-holes", "recurrent-dropout", "zoneout", "reverse"])
def test_gradcheck(cls, options, extra):
    B, T = 4, 3
    cell = make_cell(cls, options)
    loop = Loop(cell)
    names = [n for n, _ in loop.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in loop.named_parameters()]
    x = torch.randn(B, T, 3, dtype=torch.float64, requires_grad=True)
    state = tuple(s.requires_grad_() for s in random_state(cell, B))
    torch.manual_seed(1)
    kw = {}
    if extra == "mask-holes":
        kw["mask"] = holes_mask(B, T)
    elif extra == "recurrent-dropout":  # a fixed mask, as in training, scaled by 1/keep
        kw["rec_mask"] = torch.bernoulli(torch.full((B, cell.state_sizes[0]), 0.7, dtype=torch.float64)) / 0.7
    elif extra == "zoneout":
        kw["zone"] = tuple(torch.bernoulli(torch.full((B, T, n), 0.3, dtype=torch.float64)) for n in cell.state_sizes)
    elif extra == "reverse":
        kw["reverse"] = True

    def f(x, *flat):
        s, ps = flat[:len(state)], flat[len(state):]
        return functional_call(loop, dict(zip(names, ps)), (x, s), kw)

    assert torch.autograd.gradcheck(f, (x, *state, *params), eps=1e-6, atol=1e-5)


def _copy_into(torch_cell, cell):
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(torch_cell, name).copy_(getattr(cell, name))


@pytest.mark.parametrize("cls,options,torch_cls", [
    (ElmanCell, {}, lambda i, h: nn.RNNCell(i, h, nonlinearity="tanh")),
    (ElmanCell, {"activation": "relu"}, lambda i, h: nn.RNNCell(i, h, nonlinearity="relu")),
    (LSTMCell, {}, nn.LSTMCell),
    (GRUCell, {}, nn.GRUCell),
])
def test_step_equals_torch_cell(cls, options, torch_cls):
    cell = make_cell(cls, options, dtype=torch.float32)
    ref = torch_cls(3, 5)
    _copy_into(ref, cell)
    x = torch.randn(4, 3)
    state = random_state(cell, 4, torch.float32)
    ours = cell(x, state)
    theirs = ref(x, state if cls is LSTMCell else state[0])
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_gru_forms_differ_and_cho_form_matches_equations():
    """The two GRU forms are different functions; the Cho form resets h before the matmul."""
    after = make_cell(GRUCell, {})
    cho = make_cell(GRUCell, {"reset_after": False})
    cho.load_state_dict(after.state_dict())
    x, (h,) = torch.randn(2, 3, dtype=torch.float64), random_state(after, 2)
    assert not torch.allclose(after(x, (h,))[0], cho(x, (h,))[0])
    H = 5
    gi, W, b = x @ cho.weight_ih.T + cho.bias_ih, cho.weight_hh, cho.bias_hh
    r = torch.sigmoid(gi[:, :H] + h @ W[:H].T + b[:H])
    z = torch.sigmoid(gi[:, H:2 * H] + h @ W[H:2 * H].T + b[H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + (r * h) @ W[2 * H:].T + b[2 * H:])
    torch.testing.assert_close(cho(x, (h,))[0], (1 - z) * n + z * h)


def test_initialisation():
    cell = LSTMCell(7, 6)
    H = 6
    for block in cell.weight_hh.detach().chunk(4, 0):  # orthogonal per gate
        torch.testing.assert_close(block @ block.T, torch.eye(H), atol=1e-5, rtol=0)
    assert torch.all(cell.bias_ih[H:2 * H] == 1) and torch.all(cell.bias_hh == 0)
    bound = (3 / 7) ** 0.5
    assert cell.weight_ih.abs().max() <= bound
