"""Weight dropping on the recurrent matrices: DropConnect (Wan et al. 2013) on W_hh, as in AWD-LSTM.

Merity, Keskar & Socher 2018 (“Regularizing and Optimizing LSTM Language
Models”) drop entries of each layer's hidden-to-hidden matrix, once per
forward pass: every time step of the batch sees the same dropped matrix, so
the recurrence stays one matrix product per step and any fast path (torch's
fused op, the native kernels) runs unchanged on the dropped copy.

    W̃_hh = W_hh ⊙ M / (1 - p),   M_ij ~ Bernoulli(1 - p), one M per cell per forward

In evaluation mode W̃_hh = W_hh (its expectation). The parameter stays the
cell's own ``weight_hh`` (same name in state_dict, same tensor in the
optimizer); the gradient reaches it through the mask.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch.nn.functional as F
from torch import nn

from ..cells import Cell

NAME = "weight_hh"


def check_cells(cells: list[Cell], rate: float) -> None:
    """ValueError unless ``rate`` is in [0, 1) and, when positive, every cell has a recurrent matrix."""
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate < 1.0:
        raise ValueError(f"weight_dropout must be in [0, 1), got {rate!r}")
    if rate:
        lacking = sorted({type(c).__name__ for c in cells if not isinstance(c._parameters.get(NAME), nn.Parameter)})
        if lacking:
            raise ValueError(f"weight_dropout drops entries of the recurrent matrix {NAME}, which {', '.join(lacking)} "
                             "does not have (minGRU/minLSTM have no recurrent matrix)")


@contextmanager
def dropped_recurrent_weights(cells: list[Cell], rate: float, training: bool):
    """Within the block, each cell's ``weight_hh`` reads as its dropped copy (training mode, rate > 0).

    One mask per cell, sampled on entry: one forward pass over a batch uses one
    dropped matrix at every step. The copy shadows the parameter through the
    cell's instance dictionary (attribute lookup finds it before nn.Module's
    parameter table), so the parameter itself, its name and its optimizer
    state are untouched; on exit the shadow is removed, even after an error.
    """
    if not training or not rate:
        yield
        return
    try:
        for cell in cells:
            cell.__dict__[NAME] = F.dropout(cell._parameters[NAME], rate, True)   # (G*H, H), scaled 1/(1-p)
        yield
    finally:
        for cell in cells:
            cell.__dict__.pop(NAME, None)
