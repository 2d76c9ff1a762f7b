"""Layer-normalised LSTM (Ba, Kiros & Hinton 2016, eqs. 20-22)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Cell, State, lecun_uniform_, orthogonal_blocks_, zeros_


class LayerNormLSTMCell(Cell):
    """Gate order i, f, g, o; LN(v; γ, β) normalises v over its features:

        (i, f, g, o) = LN(W_ih x; γ_ih) + LN(W_hh h; γ_hh) + b
        c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
        h_t = σ(o) ⊙ tanh(LN(c_t; γ_c, β_c))

    The two gate normalisations have gains only: their shifts would add to b.
    Parameters: weight_ih (4H, I), weight_hh (4H, H), bias (4H),
    ln_ih_weight, ln_hh_weight (4H), ln_c_weight, ln_c_bias (H).
    """

    kind = "lnlstm"
    eps = 1e-5

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        H = hidden_size
        self.input_size, self.hidden_size = input_size, H
        self.state_sizes = (H, H)
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H))
        self.bias = nn.Parameter(torch.empty(4 * H))
        self.ln_ih_weight = nn.Parameter(torch.empty(4 * H))
        self.ln_hh_weight = nn.Parameter(torch.empty(4 * H))
        self.ln_c_weight = nn.Parameter(torch.empty(H))
        self.ln_c_bias = nn.Parameter(torch.empty(H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        H = self.hidden_size
        lecun_uniform_(self.weight_ih)
        orthogonal_blocks_(self.weight_hh, 4)
        zeros_(self.bias, self.ln_c_bias)
        with torch.no_grad():
            self.bias[H:2 * H] = 1.0  # forget gate
            for g in (self.ln_ih_weight, self.ln_hh_weight, self.ln_c_weight):
                g.fill_(1.0)

    @staticmethod
    def step(x: torch.Tensor, state: State, p: "LayerNormLSTMCell", rec_mask=None, record=None) -> State:
        h, c = state
        n4, n1 = (4 * p.hidden_size,), (p.hidden_size,)
        h_rec = h if rec_mask is None else h * rec_mask
        gates = (F.layer_norm(x @ p.weight_ih.T, n4, p.ln_ih_weight, None, p.eps)
                 + F.layer_norm(h_rec @ p.weight_hh.T, n4, p.ln_hh_weight, None, p.eps) + p.bias)
        i, f, g, o = gates.chunk(4, 1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(F.layer_norm(c, n1, p.ln_c_weight, p.ln_c_bias, p.eps))
        if record is not None:
            record.update({"hidden": h, "cell": c, "input gate": i, "forget gate": f, "candidate": g,
                           "output gate": o})
        return (h, c)

    def config(self) -> dict:
        return {"hidden_size": self.hidden_size}
