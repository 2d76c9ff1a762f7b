"""Shared test helpers: cell configurations and a seeded random setup."""
from __future__ import annotations

import torch

from rnnkit.cells import ElmanCell, GRUCell, JordanCell, LayerNormLSTMCell, LSTMCell

# (id, cell class, options): every cell family and option of the core issue.
CELL_CONFIGS = [
    ("elman-tanh", ElmanCell, {}),
    ("elman-relu", ElmanCell, {"activation": "relu"}),
    ("jordan", JordanCell, {}),
    ("jordan-out3-sigmoid", JordanCell, {"output_size": 3, "output_activation": "sigmoid"}),
    ("lstm", LSTMCell, {}),
    ("lstm-peephole", LSTMCell, {"peephole": True}),
    ("lstm-proj", LSTMCell, {"proj_size": 3}),
    ("lstm-peephole-proj", LSTMCell, {"peephole": True, "proj_size": 3}),
    ("gru-reset-after", GRUCell, {}),
    ("gru-cho", GRUCell, {"reset_after": False}),
    ("lnlstm", LayerNormLSTMCell, {}),
]
CELL_IDS = [c[0] for c in CELL_CONFIGS]


def make_cell(cls, options, input_size=3, hidden_size=5, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    cell = cls(input_size, hidden_size, **options).to(dtype)
    with torch.no_grad():  # move every parameter off its structured initial value
        for p in cell.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return cell


def random_state(cell, batch, dtype=torch.float64):
    return tuple(0.5 * torch.randn(batch, n, dtype=dtype) for n in cell.state_sizes)


def run_and_grad(fn, cell, x, state, **options):
    """Outputs of ``fn`` (native.run or reference.recur) and the gradients of a weighted sum of them."""
    x = x.clone().requires_grad_()
    state = tuple(s.clone().requires_grad_() for s in state)
    seq, last, final = fn(cell, x, state, **options)
    g = torch.Generator().manual_seed(7)
    weights = [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in (seq, last, *final)]
    loss = sum((t * w).sum() for t, w in zip((seq, last, *final), weights))
    grads = torch.autograd.grad(loss, [x, *state, *cell.parameters()])
    return [seq, last, *final, *grads]


def assert_native_equals_reference(cell, B, T, variant):
    """native.run equals reference.recur in outputs and every gradient on a seeded float64 batch (B, T, 3) from a
    random state; variant "all": every option at once (random_options), "plain": none."""
    from rnnkit.kernels import native, reference
    torch.manual_seed(1)
    x, state = torch.randn(B, T, 3, dtype=torch.float64), random_state(cell, B)
    opts = random_options(cell, B, T) if variant == "all" else {}
    got = run_and_grad(native.run, cell, x, state, **opts)
    want = run_and_grad(reference.recur, cell, x, state, **opts)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def random_options(cell, B, T, dtype=torch.float64):
    """Every option of a sequence kernel at once, seeded: a random mask, reverse, recurrent dropout, zoneout."""
    g = torch.Generator().manual_seed(3)
    return {"mask": torch.rand(B, T, generator=g) > 0.3, "reverse": True,
            "rec_mask": torch.bernoulli(torch.full((B, cell.state_sizes[0]), 0.7, dtype=dtype), generator=g) / 0.7,
            "zone": tuple(torch.bernoulli(torch.full((B, T, s), 0.3, dtype=dtype), generator=g)
                          for s in cell.state_sizes)}


def holes_mask(B, T):
    """A mask with every pattern: full, right padding, left padding, holes, empty."""
    rows = [[1] * T, [1] * (T - 2) + [0] * 2, [0] * 2 + [1] * (T - 2), [1, 0] * (T // 2) + [1] * (T % 2), [0] * T]
    return torch.tensor(rows[:B], dtype=torch.bool)


def error_of(capsys, argv) -> str:
    """Run the CLI on argv: it must exit 2 with exactly one ``rnnkit: error:`` line on stderr, returned."""
    from rnnkit.cli import main
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), err
    return lines[0]
