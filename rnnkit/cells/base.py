"""The cell protocol and the initialisation every cell shares.

A cell is an ``nn.Module`` holding parameters, plus a pure step function
``step(x_t, state, p, rec_mask=None, record=None) -> state``:

* ``x_t``      (B, input_size)
* ``state``    a tuple of tensors, each (B, size); ``state[0]`` is the output
               of the step (h for Elman, GRU and LSTM, y for Jordan)
* ``p``        the cell itself (its parameters are read as attributes)
* ``rec_mask`` optional (B, state_sizes[0]) multiplier applied to the
               recurrent input before the recurrent matrix multiply
               (variational recurrent dropout, Gal & Ghahramani 2016)
* ``record``   optional dict that the step fills with what it computed inside,
               by name, each (B, units): "hidden", "cell", the σ gates ("input
               gate", ...), "candidate" (rnnkit.inspect reads them from here)

The sequence runner (``rnnkit.layers``) owns everything that is not the
cell's math: time loop, masks, zoneout, dropout sampling.

Initialisation (all cells): input weights LeCun-uniform,
U(-sqrt(3/fan_in), sqrt(3/fan_in)), variance 1/fan_in, per gate block;
recurrent weights orthogonal per gate block (Saxe et al. 2014), so that the
linear part of the recurrence neither grows nor shrinks a vector; biases
zero, except the LSTM forget gate (1, Jozefowicz et al. 2015).
"""
from __future__ import annotations

import math

import torch
from torch import nn

State = tuple[torch.Tensor, ...]

ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda v: v,
}


def resolve_activation(act) -> callable:
    """A callable from a callable or one of the names in ``ACTIVATIONS``."""
    if callable(act):
        return act
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected a callable or one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[act]


def activation_name(fn) -> str | None:
    """The name of a known activation callable, or None for a custom one."""
    for name, known in ACTIVATIONS.items():
        if fn is known:
            return name
    return None


def lecun_uniform_(w: torch.Tensor) -> None:
    """U(-sqrt(3/fan_in), sqrt(3/fan_in)); fan_in is the number of columns."""
    bound = math.sqrt(3.0 / w.shape[1])
    with torch.no_grad():
        w.uniform_(-bound, bound)


def zeros_(*tensors: torch.Tensor) -> None:
    with torch.no_grad():
        for t in tensors:
            t.zero_()


def orthogonal_blocks_(w: torch.Tensor, blocks: int) -> None:
    """Each of ``blocks`` row blocks of ``w`` (one per gate) orthogonal."""
    with torch.no_grad():
        for chunk in w.chunk(blocks, 0):
            nn.init.orthogonal_(chunk)


class Cell(nn.Module):
    """Base class: sizes, zero initial state and the call of ``step``."""

    input_size: int
    hidden_size: int
    state_sizes: tuple[int, ...]
    # Registry key of the cell family, used in configs and reports.
    kind: str = ""

    @property
    def output_size(self) -> int:
        return self.state_sizes[0]

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        return tuple(torch.zeros(batch, n, device=device, dtype=dtype) for n in self.state_sizes)

    def forward(self, x_t: torch.Tensor, state: State, rec_mask: torch.Tensor | None = None) -> State:
        return type(self).step(x_t, state, self, rec_mask)

    def reset_parameters(self) -> None:
        """Draw fresh initial values for every parameter."""
        raise NotImplementedError

    def config(self) -> dict:
        """JSON-serialisable constructor arguments (without input_size)."""
        raise NotImplementedError
