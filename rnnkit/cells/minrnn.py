"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?", arXiv:2410.01201).

Neither gate reads h_{t-1}, so a layer is the linear recurrence
h_t = a_t ⊙ h_{t-1} + b_t with a_t, b_t computed from x_t alone. ``step`` is
the sequential form (the specification, used for streaming);
``log_coefficients`` gives log a_t and log b_t for the parallel scan in
``rnnkit.kernels.scan``. Both use the paper's log-space variant (its
section 3.1 and appendix B): the candidate goes through g, which is
positive, so that b_t has a logarithm.

Recurrent dropout: ``rec_mask`` (one (B, H) mask per sequence, 0 or 1/keep)
multiplies the candidate term b_t, not the carried state h_{t-1}
(Semeniuta et al. 2016, "Recurrent dropout without memory loss"). Dropping
the carried state and rescaling it by 1/keep at every step would multiply a
unit by up to (1/keep)^T; dropping the update keeps h_t a convex combination
of h_{t-1} and the (rescaled) candidate, so it stays bounded, and the
recurrence stays linear, so the parallel scan computes it too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Cell, State, lecun_uniform_, zeros_


def g(v: torch.Tensor) -> torch.Tensor:
    """g(v) = v + 0.5 for v >= 0, σ(v) otherwise: continuous, positive, linear growth."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v: torch.Tensor) -> torch.Tensor:
    """log g(v), computed without forming g(v) for v < 0 (log σ(v) = -softplus(-v))."""
    return torch.where(v >= 0, torch.log(torch.relu(v) + 0.5), -F.softplus(-v))


class _MinCell(Cell):
    """Shared parameters: one input projection, ``gates`` blocks of H rows."""

    gates = 0

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.state_sizes = (hidden_size,)
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(self.gates * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        lecun_uniform_(self.weight_ih)
        zeros_(self.bias_ih)

    def config(self) -> dict:
        return {"hidden_size": self.hidden_size}


class MinGRUCell(_MinCell):
    """Gate order z, h (weight_ih (2H, I), bias_ih (2H)):

        z_t = σ(W_iz x_t + b_iz)
        h̃_t = g(W_ih x_t + b_ih)
        h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t [⊙ m]

    so a_t = 1 - z_t and b_t = z_t ⊙ h̃_t; m is the recurrent-dropout mask.
    """

    kind = "mingru"
    gates = 2

    @staticmethod
    def step(x: torch.Tensor, state: State, p: "MinGRUCell", rec_mask=None, record=None) -> State:
        (h,) = state
        k_z, k_h = (x @ p.weight_ih.T + p.bias_ih).chunk(2, -1)
        z, cand = torch.sigmoid(k_z), g(k_h)
        update = z * cand
        h = (1 - z) * h + (update if rec_mask is None else update * rec_mask)
        if record is not None:
            record.update({"hidden": h, "update gate": z, "candidate": cand})
        return (h,)

    @staticmethod
    def log_coefficients(x: torch.Tensor, p: "MinGRUCell") -> tuple[torch.Tensor, torch.Tensor]:
        """x (..., I) -> log a, log b, each (..., H): log(1 - σ(k)) = -softplus(k)."""
        k_z, k_h = (x @ p.weight_ih.T + p.bias_ih).chunk(2, -1)
        return -F.softplus(k_z), -F.softplus(-k_z) + log_g(k_h)


class MinLSTMCell(_MinCell):
    """Gate order f, i, h (weight_ih (3H, I), bias_ih (3H)), with the paper's normalised gates:

        f_t = σ(W_if x_t + b_if),  i_t = σ(W_ii x_t + b_ii)
        f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)
        h̃_t = g(W_ih x_t + b_ih)
        h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t [⊙ m]

    (m: the recurrent-dropout mask). The normalisation makes the state time-independent in scale (f' + i' = 1).
    """

    kind = "minlstm"
    gates = 3

    @staticmethod
    def step(x: torch.Tensor, state: State, p: "MinLSTMCell", rec_mask=None, record=None) -> State:
        (h,) = state
        k_f, k_i, k_h = (x @ p.weight_ih.T + p.bias_ih).chunk(3, -1)
        f, i, cand = torch.sigmoid(k_f), torch.sigmoid(k_i), g(k_h)
        f_share, i_share = f / (f + i), i / (f + i)
        update = i_share * cand
        h = f_share * h + (update if rec_mask is None else update * rec_mask)
        if record is not None:
            record.update({"hidden": h, "forget gate": f, "input gate": i, "forget share f'": f_share,
                           "input share i'": i_share, "candidate": cand})
        return (h,)

    @staticmethod
    def log_coefficients(x: torch.Tensor, p: "MinLSTMCell") -> tuple[torch.Tensor, torch.Tensor]:
        """x (..., I) -> log f', log(i' ⊙ h̃), each (..., H).

        With d = log i - log f = softplus(-k_f) - softplus(-k_i):
        f' = 1 / (1 + e^d) = σ(-d) and i' = σ(d) (appendix B of the paper).
        """
        k_f, k_i, k_h = (x @ p.weight_ih.T + p.bias_ih).chunk(3, -1)
        d = F.softplus(-k_f) - F.softplus(-k_i)
        return -F.softplus(d), -F.softplus(-d) + log_g(k_h)
