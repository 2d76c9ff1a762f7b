"""The fused torch path equals the reference loop, and rnnkit equals torch.nn both ways."""
import pytest
import torch
from torch import nn

import rnnkit

FUSED = [(rnnkit.SimpleRNN, {}), (rnnkit.SimpleRNN, {"activation": "relu"}), (rnnkit.LSTM, {}),
         (rnnkit.LSTM, {"proj_size": 3}), (rnnkit.GRU, {})]
FUSED_IDS = ["rnn-tanh", "rnn-relu", "lstm", "lstm-proj", "gru"]
LAYOUTS = [{}, {"num_layers": 2}, {"bidirectional": True}, {"num_layers": 2, "bidirectional": True},
           {"go_backwards": True}, {"num_layers": 2, "bidirectional": True, "merge_mode": "sum"}]


def twins(cls, options, dtype, **layout):
    torch.manual_seed(0)
    fused = cls(5, input_size=4, return_sequences=True, return_state=True, backend="torch", **options, **layout)
    ref = cls(5, input_size=4, return_sequences=True, return_state=True, backend="reference", **options, **layout)
    ref.load_state_dict(fused.state_dict())
    return fused.to(dtype), ref.to(dtype)


def run_and_grad(layer, x, lengths, state):
    x = x.clone().requires_grad_()
    state = tuple(s.clone().requires_grad_() for s in state)  # the initial state's gradient is compared too
    seq, final = layer(x, state, lengths=lengths)
    last = layer.run(x, state, None if lengths is None else rnnkit.layers.lengths_to_mask(lengths, x.shape[1]))[1]
    loss = (seq * torch.linspace(-1, 1, seq.shape[-1], dtype=x.dtype)).sum() + sum((s ** 2).sum() for s in final)
    loss = loss + last.sum()
    grads = torch.autograd.grad(loss, [x, *state] + list(layer.parameters()))
    return seq, last, final, grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()) or "single")
@pytest.mark.parametrize("cls,options", FUSED, ids=FUSED_IDS)
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
def test_fused_equals_reference(cls, options, layout, dtype, with_lengths):
    fused, ref = twins(cls, options, dtype, **layout)
    assert fused.backend == "torch" and ref.backend == "reference"
    x = torch.randn(3, 6, 4, dtype=dtype)
    lengths = torch.tensor([6, 2, 4]) if with_lengths else None
    state = tuple(0.3 * torch.randn(fused.num_slots, 3, s, dtype=dtype) for s in fused.state_sizes)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    a, b = run_and_grad(fused, x, lengths, state), run_and_grad(ref, x, lengths, state)
    for s, t in zip(a[:2], b[:2]):  # sequence, last output
        torch.testing.assert_close(s, t, **tol)
    for s, t in zip(a[2], b[2]):
        torch.testing.assert_close(s, t, **tol)
    assert len(a[3]) == 1 + len(state) + len(list(fused.parameters()))
    for g, h in zip(a[3], b[3]):
        torch.testing.assert_close(g, h, **tol)


def test_mask_with_holes_falls_back_and_agrees():
    fused, ref = twins(rnnkit.LSTM, {}, torch.float64, bidirectional=True)
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    mask = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 1, 1, 1]], dtype=torch.bool)
    for a, b in zip(fused(x, mask=mask), ref(x, mask=mask)):
        for s, t in zip(a if isinstance(a, tuple) else [a], b if isinstance(b, tuple) else [b]):
            torch.testing.assert_close(s, t)


TORCH = [(nn.RNN, {}, rnnkit.SimpleRNN), (nn.RNN, {"nonlinearity": "relu"}, rnnkit.SimpleRNN),
         (nn.LSTM, {}, rnnkit.LSTM), (nn.LSTM, {"proj_size": 3}, rnnkit.LSTM), (nn.GRU, {}, rnnkit.GRU)]


@pytest.mark.parametrize("torch_cls,options,ours", TORCH, ids=FUSED_IDS)
@pytest.mark.parametrize("layout", [{}, {"num_layers": 2, "bidirectional": True}], ids=["single", "stacked-bidir"])
@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_weights_convert_both_ways(torch_cls, options, ours, layout, backend):
    torch.manual_seed(0)
    module = torch_cls(4, 5, batch_first=True, **options, **layout)
    x = torch.randn(3, 7, 4)
    expected, h = module(x)
    layer = rnnkit.from_torch(module, return_sequences=True, return_state=True, backend=backend)
    assert isinstance(layer, ours) and layer.backend == backend
    seq, state = layer(x)
    torch.testing.assert_close(seq, expected, rtol=1e-5, atol=1e-5)
    for s, t in zip(state, h if isinstance(h, tuple) else (h,)):
        torch.testing.assert_close(s, t, rtol=1e-5, atol=1e-5)
    # and back: a fresh rnnkit layer exported to torch.nn
    fresh = ours(5, input_size=4, return_sequences=True, **{k: v for k, v in options.items() if k != "nonlinearity"},
                 **({"activation": options["nonlinearity"]} if "nonlinearity" in options else {}), **layout)
    exported = rnnkit.to_torch(fresh)
    assert type(exported) is torch_cls
    torch.testing.assert_close(exported(x)[0], fresh(x), rtol=1e-5, atol=1e-5)


def test_layers_without_torch_counterpart_refuse_export():
    with pytest.raises(ValueError, match="no torch.nn counterpart"):
        rnnkit.to_torch(rnnkit.LSTM(4, input_size=3, peephole=True))
    with pytest.raises(ValueError, match="no fused torch op"):
        rnnkit.GRU(4, input_size=3, reset_after=False, backend="torch")


def test_dropout_meaning_differs_and_conversion_says_so():
    """torch.nn drops only between layers; rnnkit's dropout also drops the first layer's inputs."""
    torch_lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    with pytest.warns(UserWarning, match="between layers"):
        layer = rnnkit.from_torch(torch_lstm)
    assert layer.dropout == 0.5
    with pytest.warns(UserWarning, match="between layers"):
        rnnkit.to_torch(layer)
    # an explicit dropout= is the user's choice: no warning, and it is used
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rnnkit.from_torch(torch_lstm, dropout=0.0).dropout == 0.0
        rnnkit.from_torch(nn.LSTM(3, 4, num_layers=2))
        rnnkit.to_torch(rnnkit.LSTM(4, input_size=3, num_layers=2))
