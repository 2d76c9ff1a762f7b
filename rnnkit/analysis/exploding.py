"""Exploding gradients, and what clipping does about them.

Scale an Elman RNN's recurrent weight W_hh above 1: along a trajectory the
step Jacobians diag(act'(a_t)) W_hh then have singular values above 1, and
the gradient k steps back grows like scale^k (Pascanu et al. 2013). One
gradient step of that size throws the weights far away: the loss jumps, and
with relu units soon overflows to inf or NaN. Clipping the global gradient
norm to c bounds every update to lr·c, whatever the gradient, so training
stays finite and can bring the recurrence back under control.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..layers import SimpleRNN
from ..tasks.adding import adding_data
from ..train.optim import clip_gradients


@dataclass
class ExplodingRun:
    """losses and gradient norms (before clipping) of each update; diverged_at: the first update whose
    loss was not finite (None: all finite); weight_hh_norm: the recurrent weight's norm at the end."""
    clip_norm: float | None
    losses: list[float]
    grad_norms: list[float]
    diverged_at: int | None
    weight_hh_norm: float

    @property
    def finite(self) -> bool:
        return self.diverged_at is None


def exploding_demo(scale: float = 1.5, clip_norm: float | None = None, steps: int = 50, seq_len: int = 50,
                   activation: str = "relu", lr: float = 0.01, hidden_size: int = 32, batch_size: int = 20,
                   seed: int = 0) -> ExplodingRun:
    """Train an Elman RNN whose orthogonal W_hh is multiplied by ``scale`` on the adding problem
    (plain SGD), with the global gradient norm clipped to ``clip_norm`` (None: no clipping)."""
    torch.manual_seed(seed)
    x, y = adding_data(batch_size * steps, seq_len, seed)
    rnn = SimpleRNN(hidden_size, input_size=2, activation=activation, backend="reference")
    head = torch.nn.Linear(hidden_size, 1)
    with torch.no_grad():
        rnn.cells()[0][0].weight_hh.mul_(scale)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=lr)
    losses, norms, diverged = [], [], None
    for step in range(steps):
        xb, yb = x[step * batch_size:(step + 1) * batch_size], y[step * batch_size:(step + 1) * batch_size]
        loss = F.mse_loss(head(rnn(xb)).squeeze(-1), yb)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            diverged = step
            break
        opt.zero_grad()
        loss.backward()
        norms.append(clip_gradients(params, clip_norm))   # the norm before clipping
        opt.step()
    return ExplodingRun(clip_norm, losses, norms, diverged, float(rnn.cells()[0][0].weight_hh.detach().norm()))
