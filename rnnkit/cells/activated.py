"""LSTM and GRU with other activations than tanh / sigmoid (Keras's ``activation`` and
``recurrent_activation``). Only the reference loop computes them; the standard pair
(tanh, sigmoid) uses LSTMCell / GRUCell and their fast paths.
"""
from __future__ import annotations

import torch

from .base import State
from .gru import GRUCell
from .lstm import LSTMCell


class ActivatedLSTMCell(LSTMCell):
    """LSTMCell's equations with σ -> ``recurrent_activation`` (gates i, f, o) and
    tanh -> ``activation`` (candidate g and the output's squashing of c):

        c_t = ra(f) ⊙ c_{t-1} + ra(i) ⊙ act(g),   h_t = ra(o) ⊙ act(c_t)
    """

    def __init__(self, input_size: int, hidden_size: int, activation=torch.tanh,
                 recurrent_activation=torch.sigmoid, proj_size: int = 0, peephole: bool = False):
        super().__init__(input_size, hidden_size, proj_size, peephole)
        self.activation, self.recurrent_activation = activation, recurrent_activation

    @staticmethod
    def step(x: torch.Tensor, state: State, p: "ActivatedLSTMCell", rec_mask=None, record=None) -> State:
        h, c = state
        act, ra = p.activation, p.recurrent_activation
        h_rec = h if rec_mask is None else h * rec_mask
        i, f, g, o = (x @ p.weight_ih.T + p.bias_ih + h_rec @ p.weight_hh.T + p.bias_hh).chunk(4, 1)
        if p.weight_c is not None:
            i, f = i + p.weight_c[0] * c, f + p.weight_c[1] * c
        i, f, g = ra(i), ra(f), act(g)
        c = f * c + i * g
        if p.weight_c is not None:
            o = o + p.weight_c[2] * c
        o = ra(o)
        h = o * act(c)
        h = h if p.weight_hr is None else h @ p.weight_hr.T
        if record is not None:
            record.update({"hidden": h, "cell": c, "input gate": i, "forget gate": f, "candidate": g,
                           "output gate": o})
        return (h, c)


class ActivatedGRUCell(GRUCell):
    """GRUCell's equations with σ -> ``recurrent_activation`` (r, z) and tanh -> ``activation`` (n)."""

    def __init__(self, input_size: int, hidden_size: int, activation=torch.tanh,
                 recurrent_activation=torch.sigmoid, reset_after: bool = True):
        super().__init__(input_size, hidden_size, reset_after)
        self.activation, self.recurrent_activation = activation, recurrent_activation

    @staticmethod
    def step(x: torch.Tensor, state: State, p: "ActivatedGRUCell", rec_mask=None, record=None) -> State:
        (h,) = state
        H, act, ra = p.hidden_size, p.activation, p.recurrent_activation
        h_rec = h if rec_mask is None else h * rec_mask
        xr, xz, xn = (x @ p.weight_ih.T + p.bias_ih).chunk(3, 1)
        if p.reset_after:
            hr, hz, hn = (h_rec @ p.weight_hh.T + p.bias_hh).chunk(3, 1)
            r, z = ra(xr + hr), ra(xz + hz)
            n = act(xn + r * hn)
        else:
            hr, hz = (h_rec @ p.weight_hh[:2 * H].T + p.bias_hh[:2 * H]).chunk(2, 1)
            r, z = ra(xr + hr), ra(xz + hz)
            n = act(xn + (r * h_rec) @ p.weight_hh[2 * H:].T + p.bias_hh[2 * H:])
        h = (1 - z) * n + z * h
        if record is not None:
            record.update({"hidden": h, "reset gate": r, "update gate": z, "candidate": n})
        return (h,)
