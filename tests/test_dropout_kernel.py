"""kernels.dropout: torch's dropout with a cheaper CPU mask (kernels/drop.py), and the fused path that uses it."""
import pytest
import torch

import rnnkit
from rnnkit.kernels import drop, fused

from test_fused import FUSED, FUSED_IDS, run_and_grad, twins


def test_rate_scale_and_expectation():
    torch.manual_seed(0)
    n, p = 1_000_003, 0.2   # odd: the last 64-bit draw is half used
    y = drop.dropout(torch.ones(n), p)
    _, q = drop.keep_threshold(p)
    kept = y != 0
    assert abs((~kept).float().mean().item() - p) < 0.003          # 7 standard deviations
    assert torch.equal(y[kept], torch.full_like(y[kept], 1 / (1 - q)))
    assert abs(y.double().mean().item() - 1.0) < 0.004


def test_both_halves_of_each_64_bit_draw_drop_at_the_rate():
    """The mask takes two 32-bit words from each draw: both must be uniform (a draw whose top bit is always
    0, as random_() on int64 gives, would never drop the odd elements)."""
    torch.manual_seed(1)
    dropped = drop.dropout(torch.ones(400_000), 0.3) == 0
    for half in (dropped[0::2], dropped[1::2]):
        assert abs(half.float().mean().item() - 0.3) < 0.005


def test_elements_and_calls_are_independent():
    torch.manual_seed(2)
    a = (drop.dropout(torch.ones(200_000), 0.5) != 0).float()
    b = (drop.dropout(torch.ones(200_000), 0.5) != 0).float()
    neighbours = torch.corrcoef(torch.stack([a[:-1], a[1:]]))[0, 1]
    across = torch.corrcoef(torch.stack([a, b]))[0, 1]
    assert abs(neighbours.item()) < 0.015 and abs(across.item()) < 0.015


def test_seeded_gradient_dtype_and_training_mode():
    x = torch.randn(4, 50, 8, dtype=torch.bfloat16, requires_grad=True)
    torch.manual_seed(3)
    y = drop.dropout(x, 0.25)
    torch.manual_seed(3)
    assert torch.equal(drop.dropout(x, 0.25), y)          # torch's seed governs the mask
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
    y.float().sum().backward()
    keep = (y != 0).to(x.dtype)
    torch.testing.assert_close(x.grad, keep / 0.75)
    assert drop.dropout(x, 0.25, training=False) is x and drop.dropout(x, 0.0) is x


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_rate_outside_zero_one_is_refused(p):
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\)"):
        drop.dropout(torch.ones(3), p)


def test_rates_next_to_the_ends_stay_valid():
    assert drop.keep_threshold(1 - 2 ** -40)[1] < 1.0
    torch.manual_seed(4)
    y = drop.dropout(torch.ones(1000), 1 - 2 ** -40)
    assert torch.isfinite(y).all()
    assert torch.equal(drop.dropout(torch.ones(1000), 2 ** -40), torch.ones(1000))   # rounds to 0: all kept


STACKS = [{"num_layers": 2}, {"num_layers": 3}, {"num_layers": 2, "bidirectional": True},
          {"num_layers": 2, "go_backwards": True}]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", STACKS, ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()))
@pytest.mark.parametrize("cls,options", FUSED, ids=FUSED_IDS)
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
def test_fused_stack_in_training_equals_reference_with_the_same_masks(cls, options, layout, with_lengths, dtype):
    """With dropout between layers, torch's path runs a fused call per layer and draws rnnkit's masks in the
    layer-by-layer order, so training equals the reference loop, gradients included (float32: oneDNN)."""
    fused, ref = twins(cls, options, dtype, dropout=0.4, **layout)
    fused.train(), ref.train()
    x = torch.randn(3, 6, 4, dtype=dtype)
    lengths = torch.tensor([6, 2, 4]) if with_lengths else None
    state = tuple(0.3 * torch.randn(fused.num_slots, 3, s, dtype=dtype) for s in fused.state_sizes)
    torch.manual_seed(5)
    a = run_and_grad(fused, x, lengths, state)
    torch.manual_seed(5)
    b = run_and_grad(ref, x, lengths, state)
    assert fused.backend == "torch" and ref.backend == "reference"
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    for s, t in zip([*a[:2], *a[2], *a[3]], [*b[:2], *b[2], *b[3]]):
        torch.testing.assert_close(s, t, **tol)
    torch.manual_seed(6)
    assert not torch.allclose(run_and_grad(fused, x, lengths, state)[0], a[0])   # other masks, other output


def test_keras_dropout_layer_uses_the_cpu_mask():
    layer = rnnkit.layers.Dropout(0.3)
    x = torch.randn(2, 9, 5)
    torch.manual_seed(7)
    y = layer(x)
    torch.manual_seed(7)
    assert torch.equal(y, drop.dropout(x, 0.3))
    assert torch.equal(layer.eval()(x), x)


@pytest.mark.parametrize("make", [
    lambda: rnnkit.LSTM(5, input_size=3, num_layers=2, dropout=0.3, backend="torch"),
    lambda: rnnkit.GRU(5, input_size=3, num_layers=2, backend="torch"),
    lambda: rnnkit.LSTM(5, input_size=3, backend="torch"),
    lambda: rnnkit.layers.Recurrent(rnnkit.cells.LSTMCell(3, 5), backend="torch")],
    ids=["lstm-2-dropout", "gru-2", "lstm-1", "recurrent"])
def test_the_fused_op_is_told_training_or_evaluation(monkeypatch, make):
    """cuDNN runs its backward pass only after a forward pass in training mode: the op's train flag must
    follow the layer's mode (it once stayed False in training)."""
    flags, real = [], fused._op

    def recording(cell):
        op = real(cell)

        def call(*args):
            flags.append(args[6])   # (input, hx, weights, bias, layers, dropout, train, ...)
            return op(*args)
        return call

    monkeypatch.setattr(fused, "_op", recording)
    layer = make()
    x = torch.randn(2, 4, 3)
    layer.train()(x)
    assert flags and all(f is True for f in flags)
    flags.clear()
    layer.eval()(x)
    assert flags and all(f is False for f in flags)
