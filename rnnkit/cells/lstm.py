"""LSTM cell with optional peepholes and output projection; torch.nn.LSTM layout."""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import Cell, State, lecun_uniform_, orthogonal_blocks_, zeros_


class LSTMCell(Cell):
    """Gate order i, f, g, o (as torch.nn.LSTM):

        i = σ(W_ii x + b_ii + W_hi h + b_hi [+ w_ci ⊙ c_{t-1}])
        f = σ(W_if x + b_if + W_hf h + b_hf [+ w_cf ⊙ c_{t-1}])
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        o = σ(W_io x + b_io + W_ho h + b_ho [+ w_co ⊙ c_t])
        h_t = o ⊙ tanh(c_t)              [h_t = W_hr (o ⊙ tanh(c_t)) with proj_size]

    Bracketed terms are the peepholes of Gers & Schmidhuber (2000).
    State (h, c): h of size proj_size (or hidden_size), c of size hidden_size.
    Parameters: weight_ih (4H, I), weight_hh (4H, P|H), bias_ih, bias_hh (4H),
    weight_hr (P, H) with a projection, weight_c (3, H) rows i, f, o with
    peepholes. The forget-gate bias starts at 1.
    """

    kind = "lstm"

    def __init__(self, input_size: int, hidden_size: int, proj_size: int = 0, peephole: bool = False):
        super().__init__()
        if proj_size < 0 or proj_size >= hidden_size and proj_size:
            raise ValueError(f"proj_size must be in [0, hidden_size={hidden_size}), got {proj_size}")
        H, R = hidden_size, proj_size or hidden_size
        self.input_size, self.hidden_size, self.proj_size, self.peephole = input_size, H, proj_size, peephole
        self.state_sizes = (R, H)
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, R))
        self.bias_ih = nn.Parameter(torch.zeros(4 * H))
        self.bias_hh = nn.Parameter(torch.empty(4 * H))
        self.weight_hr = nn.Parameter(torch.empty(R, H)) if proj_size else None
        self.weight_c = nn.Parameter(torch.empty(3, H)) if peephole else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        H = self.hidden_size
        lecun_uniform_(self.weight_ih)
        orthogonal_blocks_(self.weight_hh, 4)
        zeros_(self.bias_ih, self.bias_hh)
        with torch.no_grad():
            self.bias_ih[H:2 * H] = 1.0  # forget gate
            if self.weight_c is not None:
                self.weight_c.uniform_(-1 / math.sqrt(H), 1 / math.sqrt(H))
        if self.weight_hr is not None:
            lecun_uniform_(self.weight_hr)

    @staticmethod
    def step(x: torch.Tensor, state: State, p: "LSTMCell", rec_mask=None, record=None) -> State:
        h, c = state
        h_rec = h if rec_mask is None else h * rec_mask
        i, f, g, o = (x @ p.weight_ih.T + p.bias_ih + h_rec @ p.weight_hh.T + p.bias_hh).chunk(4, 1)
        if p.weight_c is not None:
            i, f = i + p.weight_c[0] * c, f + p.weight_c[1] * c
        i, f, g = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g)
        c = f * c + i * g
        if p.weight_c is not None:
            o = o + p.weight_c[2] * c
        o = torch.sigmoid(o)
        h = o * torch.tanh(c)
        h = h if p.weight_hr is None else h @ p.weight_hr.T
        if record is not None:
            record.update({"hidden": h, "cell": c, "input gate": i, "forget gate": f, "candidate": g,
                           "output gate": o})
        return (h, c)

    def config(self) -> dict:
        return {"hidden_size": self.hidden_size, "proj_size": self.proj_size, "peephole": self.peephole}
