"""Jordan RNN cell (Jordan 1986): the recurrence is through the output."""
from __future__ import annotations

import torch
from torch import nn

from .base import Cell, State, activation_name, resolve_activation, lecun_uniform_, orthogonal_blocks_, zeros_


class JordanCell(Cell):
    """The previous *output* y_{t-1}, not the hidden state, is fed back:

        h_t = act(W_ih x_t + W_yh y_{t-1} + b_h)
        y_t = out_act(W_hy h_t + b_y)

    State: (y,), y of size ``output_size`` (default ``hidden_size``).
    Parameters: weight_ih (H, I), weight_yh (H, O), bias_h (H),
    weight_hy (O, H), bias_y (O). Because the state is the output, a layer
    can be teacher-forced: the true previous target replaces y_{t-1}.
    """

    kind = "jordan"

    def __init__(self, input_size: int, hidden_size: int, output_size: int | None = None,
                 activation="tanh", output_activation="tanh"):
        super().__init__()
        output_size = output_size or hidden_size
        self.input_size, self.hidden_size = input_size, hidden_size
        self.state_sizes = (output_size,)
        self.activation = resolve_activation(activation)
        self.output_activation = resolve_activation(output_activation)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_yh = nn.Parameter(torch.empty(hidden_size, output_size))
        self.bias_h = nn.Parameter(torch.zeros(hidden_size))
        self.weight_hy = nn.Parameter(torch.empty(output_size, hidden_size))
        self.bias_y = nn.Parameter(torch.empty(output_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        lecun_uniform_(self.weight_ih)
        lecun_uniform_(self.weight_hy)
        orthogonal_blocks_(self.weight_yh, 1)
        zeros_(self.bias_h, self.bias_y)

    @staticmethod
    def step(x: torch.Tensor, state: State, p: "JordanCell", rec_mask=None, record=None) -> State:
        (y,) = state
        y_rec = y if rec_mask is None else y * rec_mask
        h = p.activation(x @ p.weight_ih.T + y_rec @ p.weight_yh.T + p.bias_h)
        y = p.output_activation(h @ p.weight_hy.T + p.bias_y)
        if record is not None:
            record.update({"output": y, "hidden": h})
        return (y,)

    def config(self) -> dict:
        return {"hidden_size": self.hidden_size, "output_size": self.state_sizes[0],
                "activation": activation_name(self.activation),
                "output_activation": activation_name(self.output_activation)}
