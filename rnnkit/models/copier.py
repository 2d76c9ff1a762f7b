"""A many-to-many (aligned) sequence model for symbol tasks: one-hot symbols in, a symbol out at every step.

    ids (B, T) -> one-hot (B, T, V) -> RNN stack (B, T, H) -> linear -> logits (B, T, C)

Used by the copy/memory task (tasks/copy.py), where V = C + 1 (the inputs have a delimiter the outputs never use).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import layers

CELLS = layers.BY_CELL


@dataclass
class CopierConfig:
    """Everything needed to rebuild a Copier (saved beside its weights)."""
    input_symbols: int
    output_symbols: int
    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1


class Copier(nn.Module):
    def __init__(self, config: CopierConfig):
        super().__init__()
        if config.cell not in CELLS:
            raise ValueError(f"unknown cell {config.cell!r}; expected one of {sorted(CELLS)}")
        self.config = config
        self.rnn = CELLS[config.cell](config.hidden_size, input_size=config.input_symbols,
                                      num_layers=config.num_layers, return_sequences=True)
        self.head = nn.Linear(self.rnn.output_size, config.output_symbols)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) int64 -> logits (B, T, output_symbols)."""
        return self.head(self.rnn(F.one_hot(ids, self.config.input_symbols).to(self.head.weight.dtype)))
