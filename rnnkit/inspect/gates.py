"""Each cell family's step, keeping what happens inside it: gates, candidates, states.

The math is the cell's own ``step`` (rnnkit/cells), run with a ``record``
dict that it fills with every intermediate quantity by name, each
(B, units); nothing is restated here. tests/test_inspect.py checks that the
recorded gates recombine into the cell's next state by the equations in its
docstring.

    step(x_t, state, cell) -> (next state, {name: (B, units) tensor})

Names: "hidden" is h_t (the layer's output, except Jordan's: "output" y_t),
"cell" the LSTM cell state c_t, "... gate" a gate (σ, values in [0, 1]),
"candidate" the proposed new content (tanh, or minGRU/minLSTM's g).
"""
from __future__ import annotations

import torch

from ..cells import ElmanCell, GRUCell, JordanCell, LayerNormLSTMCell, LSTMCell, MinGRUCell, MinLSTMCell

KNOWN = (LayerNormLSTMCell, LSTMCell, GRUCell, MinGRUCell, MinLSTMCell, JordanCell, ElmanCell)   # and subclasses


def step(x_t: torch.Tensor, state, cell) -> tuple[tuple, dict[str, torch.Tensor]]:
    """x_t (B, I) -> (the cell's next state, what its step computed inside, by name)."""
    inside: dict[str, torch.Tensor] = {}
    new = type(cell).step(x_t, state, cell, None, record=inside)
    return new, inside


def step_function(cell):
    """The inspecting step of ``cell`` (``step``); ValueError for a cell whose insides rnnkit does not know."""
    if isinstance(cell, KNOWN):
        return step
    raise ValueError(f"cannot inspect a {type(cell).__name__}: rnnkit knows the gates of "
                     f"{', '.join(c.__name__ for c in KNOWN)}")


def is_gate(name: str) -> bool:
    """Quantities whose values lie in [0, 1] by construction (σ gates): the ones a saturation plot shows."""
    return name.endswith("gate")
