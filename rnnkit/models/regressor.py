"""A sequence regressor: an RNN stack read at the last step, then a linear layer.

    x (B, T, I) -> RNN stack -> h_T (B, H) -> linear -> (B, O)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import layers

CELLS = layers.BY_CELL


@dataclass
class RegressorConfig:
    """Everything needed to rebuild a SequenceRegressor (saved beside its weights)."""
    input_size: int
    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    output_size: int = 1


class SequenceRegressor(nn.Module):
    def __init__(self, config: RegressorConfig):
        super().__init__()
        if config.cell not in CELLS:
            raise ValueError(f"unknown cell {config.cell!r}; expected one of {sorted(CELLS)}")
        self.config = config
        self.rnn = CELLS[config.cell](config.hidden_size, input_size=config.input_size,
                                      num_layers=config.num_layers)
        self.head = nn.Linear(self.rnn.output_size, config.output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x))   # (B, O)
