"""Elman (vanilla) RNN cell; weight-compatible with one layer of torch.nn.RNN."""
from __future__ import annotations

import torch
from torch import nn

from .base import Cell, State, activation_name, resolve_activation, lecun_uniform_, orthogonal_blocks_, zeros_


class ElmanCell(Cell):
    """h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act tanh (default) or relu.

    Parameters as torch.nn.RNN: weight_ih (H, I), weight_hh (H, H),
    bias_ih (H), bias_hh (H).
    """

    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, activation="tanh"):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.state_sizes = (hidden_size,)
        self.activation = resolve_activation(activation)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.zeros(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        lecun_uniform_(self.weight_ih)
        orthogonal_blocks_(self.weight_hh, 1)
        zeros_(self.bias_ih, self.bias_hh)

    @staticmethod
    def step(x: torch.Tensor, state: State, p: "ElmanCell", rec_mask=None, record=None) -> State:
        (h,) = state
        h_rec = h if rec_mask is None else h * rec_mask
        h = p.activation(x @ p.weight_ih.T + p.bias_ih + h_rec @ p.weight_hh.T + p.bias_hh)
        if record is not None:
            record.update({"hidden": h})
        return (h,)

    def config(self) -> dict:
        return {"hidden_size": self.hidden_size, "activation": activation_name(self.activation)}
