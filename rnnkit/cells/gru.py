"""GRU cell in both published forms."""
from __future__ import annotations

import torch
from torch import nn

from .base import Cell, State, lecun_uniform_, orthogonal_blocks_, zeros_


class GRUCell(Cell):
    """Gate order r, z, n (as torch.nn.GRU):

        r = σ(W_ir x + b_ir + W_hr h + b_hr)
        z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))      reset_after=True
        n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)      reset_after=False
        h_t = (1 - z) ⊙ n + z ⊙ h

    ``reset_after=True`` is the cuDNN / torch.nn.GRU form (Keras's default
    name for it); ``reset_after=False`` is the original of Cho et al. 2014,
    where the reset gate scales h_{t-1} before the candidate's matmul.
    Parameters: weight_ih (3H, I), weight_hh (3H, H), bias_ih, bias_hh (3H).
    """

    kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, reset_after: bool = True):
        super().__init__()
        H = hidden_size
        self.input_size, self.hidden_size, self.reset_after = input_size, H, reset_after
        self.state_sizes = (H,)
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H))
        self.bias_ih = nn.Parameter(torch.zeros(3 * H))
        self.bias_hh = nn.Parameter(torch.empty(3 * H))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        lecun_uniform_(self.weight_ih)
        orthogonal_blocks_(self.weight_hh, 3)
        zeros_(self.bias_ih, self.bias_hh)

    @staticmethod
    def step(x: torch.Tensor, state: State, p: "GRUCell", rec_mask=None, record=None) -> State:
        (h,) = state
        H = p.hidden_size
        h_rec = h if rec_mask is None else h * rec_mask
        xr, xz, xn = (x @ p.weight_ih.T + p.bias_ih).chunk(3, 1)
        if p.reset_after:
            hr, hz, hn = (h_rec @ p.weight_hh.T + p.bias_hh).chunk(3, 1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
        else:
            hr, hz = (h_rec @ p.weight_hh[:2 * H].T + p.bias_hh[:2 * H]).chunk(2, 1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + (r * h_rec) @ p.weight_hh[2 * H:].T + p.bias_hh[2 * H:])
        h = (1 - z) * n + z * h
        if record is not None:
            record.update({"hidden": h, "reset gate": r, "update gate": z, "candidate": n})
        return (h,)

    def config(self) -> dict:
        return {"hidden_size": self.hidden_size, "reset_after": self.reset_after}
