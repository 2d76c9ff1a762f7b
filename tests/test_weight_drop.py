"""Weight dropping on the recurrent matrices (DropConnect, AWD-LSTM): layers/weight_drop.py via RNN(weight_dropout=p)."""
import pytest
import torch
import torch.nn.functional as F

from rnnkit import layers
from rnnkit.kernels import native

P = 0.5
BACKENDS = ["torch", "reference"] + (["native"] if native.load() is not None else [])


def make(layer_type, p, backend, num_layers=2, **kw):
    torch.manual_seed(0)
    return layer_type(6, input_size=4, num_layers=num_layers, weight_dropout=p, backend=backend,
                      return_sequences=True, return_state=True, **kw).double()


def cells(layer):
    return [c for pair in layer.cells() for c in pair]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layer_type", [layers.GRU, layers.LSTM, layers.SimpleRNN])
def test_train_mode_equals_the_reference_with_the_same_dropped_matrix(layer_type, backend):
    dropped = make(layer_type, P, backend)
    x = torch.randn(3, 7, 4, dtype=torch.float64)
    torch.manual_seed(42)
    y, state = dropped.train()(x)
    assert dropped.backend == backend   # the fast path ran on the dropped matrix: backend stays honest
    # the same masks, drawn in the same order (one per cell, at the start of the forward call)
    torch.manual_seed(42)
    masked = [F.dropout(c.weight_hh, P, True).detach() for c in cells(dropped)]
    plain = make(layer_type, 0.0, "reference")
    plain.load_state_dict(dropped.state_dict())
    with torch.no_grad():
        for c, w in zip(cells(plain), masked):
            c.weight_hh.copy_(w)
    assert any((w == 0).any() for w in masked)
    y_ref, state_ref = plain.train()(x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(state, state_ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_eval_mode_is_the_undropped_layer(backend):
    dropped, plain = make(layers.GRU, P, backend), make(layers.GRU, 0.0, backend)
    plain.load_state_dict(dropped.state_dict())
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(dropped.eval()(x)[0], plain.eval()(x)[0], rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_reach_the_raw_weight_through_the_mask(backend):
    layer = make(layers.GRU, P, backend, num_layers=1)
    cell = cells(layer)[0]
    x = torch.randn(3, 6, 4, dtype=torch.float64)
    torch.manual_seed(7)
    layer.train()(x)[0].square().sum().backward()
    torch.manual_seed(7)
    kept = F.dropout(torch.ones_like(cell.weight_hh), P, True) != 0
    g = cell.weight_hh.grad
    assert g is not None and g[kept].abs().sum() > 0
    assert (g[~kept] == 0).all()   # a dropped entry took no part in this batch
    assert isinstance(cell.weight_hh, torch.nn.Parameter)   # the shadow copy is gone after the call
    assert "weight_hh" not in cell.__dict__


def test_each_forward_call_draws_a_new_mask_and_names_stay():
    layer = make(layers.GRU, P, "torch").train()
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    assert not torch.equal(layer(x)[0], layer(x)[0])
    names = set(make(layers.GRU, 0.0, "torch").state_dict())
    assert set(layer.state_dict()) == names
    assert layer.get_config()["weight_dropout"] == P


def test_bad_rates_and_cells_without_a_recurrent_matrix_are_refused():
    with pytest.raises(ValueError, match="weight_dropout must be in"):
        layers.GRU(4, input_size=3, weight_dropout=1.0)
    with pytest.raises(ValueError, match="recurrent matrix"):
        layers.MinGRU(4, input_size=3, weight_dropout=0.2)
