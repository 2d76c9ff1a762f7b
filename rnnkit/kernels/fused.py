"""torch's fused recurrent ops (oneDNN / cuDNN) called on rnnkit cells' parameters.

The parameters stay in the cells; this module lays them out in the flat
order torch's ops expect (per layer, per direction: w_ih, w_hh, b_ih, b_hh
[, w_hr]) and calls the op that torch.nn.RNN/LSTM/GRU would call.
"""
from __future__ import annotations

import torch
from torch import _VF
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..cells import Cell, ElmanCell, GRUCell, LSTMCell
from .drop import dropout as drop


def elman_mode(cell: ElmanCell) -> str | None:
    if cell.activation is torch.tanh:
        return "rnn_tanh"
    if cell.activation is torch.relu:
        return "rnn_relu"
    return None


def _op(cell: Cell):
    if isinstance(cell, LSTMCell):
        return _VF.lstm
    if isinstance(cell, GRUCell):
        return _VF.gru
    return getattr(_VF, elman_mode(cell))


def flat_weights(grid: list[list[Cell]]) -> list[torch.Tensor]:
    weights = []
    for cells in grid:
        for c in cells:
            weights += [c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh]
            if getattr(c, "weight_hr", None) is not None:
                weights.append(c.weight_hr)
    return weights


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each row's first lengths[b] steps in time, leaving the padding in place."""
    if lengths is None:
        return x.flip(1)
    T = x.shape[1]
    t = torch.arange(T, device=x.device)[None, :]
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (B, T)
    return x.gather(1, idx[:, :, None].expand_as(x))


def run(grid: list[list[Cell]], x: torch.Tensor, state: tuple, lengths: torch.Tensor | None = None, *,
        reverse: bool = False, dropout: float = 0.0, training: bool = False):
    """Run a stack (grid[layer][direction]) with torch's fused op.

    x (B, T, I); state tuple of (L*D, B, S); lengths (B,) all >= 1 or None.
    Returns seq (B, T, D*S0) with zeros at padded steps, and the final state.
    One call for the whole stack, except on the CPU with dropout between layers in training: there, one call
    per layer with rnnkit's dropout (drop.py) between them. These are the masks the layer-by-layer backends
    draw, and they cost less on the CPU than the op's own (benchmarks/dropout.py). On a GPU the stack stays
    one cuDNN call, whose own between-layer dropout is fast (its masks are cuDNN's).
    """
    if not (training and dropout and len(grid) > 1 and x.device.type == "cpu"):
        return one_call(grid, x, state, lengths, reverse=reverse, dropout=dropout, training=training)
    D, layers = len(grid[0]), []
    for i, cells in enumerate(grid):
        if i:
            x = drop(x, dropout)
        x, s = one_call([cells], x, tuple(h[i * D:(i + 1) * D] for h in state), lengths, reverse=reverse,
                        training=True)
        layers.append(s)
    return x, tuple(torch.cat(parts) for parts in zip(*layers))


def one_call(grid: list[list[Cell]], x: torch.Tensor, state: tuple, lengths: torch.Tensor | None = None, *,
             reverse: bool = False, dropout: float = 0.0, training: bool = False):
    """The stack in one call of torch's op, which draws its own between-layer dropout (as torch.nn.LSTM)."""
    cell = grid[0][0]
    L, D = len(grid), len(grid[0])
    hx = state if isinstance(cell, LSTMCell) else state[0]
    weights, op, T = flat_weights(grid), _op(cell), x.shape[1]
    if reverse:
        x = reverse_padded(x, lengths)
    if lengths is None:
        out, *new = op(x, hx, weights, True, L, dropout, training, D == 2, True)
    else:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        order = packed.sorted_indices
        hx = tuple(h.index_select(1, order) for h in hx) if isinstance(hx, tuple) else hx.index_select(1, order)
        data, *new = op(packed.data, packed.batch_sizes, hx, weights, True, L, dropout, training, D == 2)
        out, _ = pad_packed_sequence(PackedSequence(data, packed.batch_sizes, order, packed.unsorted_indices),
                                     batch_first=True, total_length=T)
        new = [h.index_select(1, packed.unsorted_indices) for h in new]
    if reverse:
        out = reverse_padded(out, lengths)
    return out, tuple(new)
