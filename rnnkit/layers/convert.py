"""Weights both ways between rnnkit layers and torch.nn.RNN / LSTM / GRU."""
from __future__ import annotations

import warnings

import torch
from torch import nn

from .. import kernels
from .rnn import GRU, LSTM, RNN, SimpleRNN


def _torch_names(layer: int, reverse: bool, proj: bool) -> list[str]:
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")
    names = [f"weight_ih{sfx}", f"weight_hh{sfx}", f"bias_ih{sfx}", f"bias_hh{sfx}"]
    return names + [f"weight_hr{sfx}"] if proj else names


_CELL_NAMES = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"]


def from_torch(module: nn.RNNBase, **layer_options) -> RNN:
    """An rnnkit layer computing what ``module`` computes, with copies of its weights.

    ``layer_options`` (return_sequences, return_state, ...) go to the new layer.
    """
    if not isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
        hint = " (a single-step cell; rnnkit converts the sequence modules)" if isinstance(module, nn.RNNCellBase) \
            else ""
        raise ValueError(f"from_torch expects torch.nn.RNN, LSTM or GRU, got {type(module).__name__}{hint}")
    if not module.bias:
        raise ValueError("torch modules with bias=False have no rnnkit counterpart")
    if module.weight_ih_l0.is_meta or not module.weight_ih_l0.is_floating_point():
        raise ValueError(f"from_torch needs floating-point weights with values, got {module.weight_ih_l0.dtype} "
                         f"on {module.weight_ih_l0.device}")
    if module.dropout and "dropout" not in layer_options:
        _warn_dropout(module.dropout)
    opts = dict(input_size=module.input_size, num_layers=module.num_layers, bidirectional=module.bidirectional,
                dropout=module.dropout, batch_first=module.batch_first)
    opts.update(layer_options)
    if isinstance(module, nn.LSTM):
        layer = LSTM(module.hidden_size, proj_size=module.proj_size, **opts)
    elif isinstance(module, nn.GRU):
        layer = GRU(module.hidden_size, **opts)
    else:
        layer = SimpleRNN(module.hidden_size, activation=module.nonlinearity, **opts)
    layer.to(device=module.weight_ih_l0.device, dtype=module.weight_ih_l0.dtype)
    _copy(layer, module, to_torch=False)
    return layer


def to_torch(layer: RNN) -> nn.RNNBase:
    """A torch.nn module computing what ``layer`` computes (built, fused-compatible layers only)."""
    if not isinstance(layer, RNN):
        raise ValueError(f"to_torch expects an rnnkit SimpleRNN, LSTM or GRU layer, got "
                         f"{type(layer).__module__}.{type(layer).__qualname__}")
    if layer.stack is None:
        raise ValueError("the layer is not built yet: pass input_size= or call it once")
    if not isinstance(layer, (SimpleRNN, LSTM, GRU)) or not kernels.fused_supports(layer.cells()[0][0]):
        raise ValueError(f"{type(layer).__name__} with these options has no torch.nn counterpart")
    if layer.bidirectional and layer.num_layers > 1 and layer.merge_mode not in ("concat", None):
        raise ValueError("torch.nn concatenates the directions between layers; merge_mode must be 'concat'")
    if layer.dropout:
        _warn_dropout(layer.dropout)
    cell = layer.cells()[0][0]
    opts = dict(input_size=layer.input_size, hidden_size=layer.hidden_size, num_layers=layer.num_layers,
                bidirectional=layer.bidirectional, dropout=layer.dropout, batch_first=layer.batch_first)
    if isinstance(layer, LSTM):
        module = nn.LSTM(proj_size=cell.proj_size, **opts)
    elif isinstance(layer, GRU):
        module = nn.GRU(**opts)
    else:
        module = nn.RNN(nonlinearity="tanh" if cell.activation is torch.tanh else "relu", **opts)
    module.to(device=cell.weight_ih.device, dtype=cell.weight_ih.dtype)
    _copy(layer, module, to_torch=True)
    return module


def _warn_dropout(rate: float) -> None:
    """The two libraries' ``dropout`` differ in training mode only; say so rather than differ silently."""
    warnings.warn(f"dropout={rate}: torch.nn drops only between layers, rnnkit (as Keras) also drops the first "
                  "layer's inputs, so the two differ in training mode (evaluation is identical); pass dropout= "
                  "to from_torch to choose", UserWarning, stacklevel=3)


def _copy(layer: RNN, module: nn.RNNBase, to_torch: bool) -> None:
    proj = getattr(module, "proj_size", 0) > 0
    with torch.no_grad():
        for i, cells in enumerate(layer.cells()):
            for d, cell in enumerate(cells):
                for ours, theirs in zip(_CELL_NAMES, _torch_names(i, d == 1, proj)):
                    src, dst = getattr(cell, ours), getattr(module, theirs)
                    (dst if to_torch else src).copy_(src if to_torch else dst)
