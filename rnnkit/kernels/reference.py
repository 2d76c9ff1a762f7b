"""The reference time loop: the specification every fast path is tested against."""
from __future__ import annotations

import torch

from ..cells import Cell, State


def recur(cell: Cell, x: torch.Tensor, state: State, *, mask=None, rec_mask=None, zone=None,
          reverse: bool = False, feedback=None):
    """Run ``cell`` over x one step at a time.

    x (B, T, I); state tuple of (B, S); mask (B, T) bool or None.
    rec_mask (B, S0): recurrent-dropout multiplier, one per sequence (Gal & Ghahramani 2016).
    zone: None or one (B, T, S) tensor per state tensor, the weight kept on the
      previous value: s_t = z ⊙ s_{t-1} + (1 - z) ⊙ s̃_t (Krueger et al. 2016;
      a 0/1 sample in training, the rate p itself in evaluation).
    feedback (B, T, S0): teacher forcing; before step t > 0, state[0] is
      replaced by feedback[:, t-1] (for cells whose state is their output).
    Returns seq (B, T, S0), last (B, S0), final state.

    A masked step contributes nothing, NaN included: its input is replaced by zeros (a
    select, not a product with zero) before the cell reads it, and its new state is
    discarded with a select, so no gradient ever multiplies a NaN by zero.
    """
    B, T, _ = x.shape
    if mask is not None:
        x = torch.where(mask[:, :, None], x, 0.0)
    steps = range(T - 1, -1, -1) if reverse else range(T)
    outputs = [None] * T
    last = torch.zeros_like(state[0])
    for n, t in enumerate(steps):
        if feedback is not None and n > 0:
            state = (feedback[:, t - 1],) + tuple(state[1:])
        new = cell.step(x[:, t], state, cell, rec_mask)
        if zone is not None:
            new = tuple(z[:, t] * s + (1 - z[:, t]) * s_new for z, s, s_new in zip(zone, state, new))
        if mask is not None:
            m = mask[:, t, None]
            new = tuple(torch.where(m, s_new, s) for s_new, s in zip(new, state))
            outputs[t] = torch.where(m, new[0], 0.0)
            last = torch.where(m, new[0], last)
        else:
            outputs[t] = last = new[0]
        state = new
    return torch.stack(outputs, 1), last, state
