"""The non-recurrent layers of the textbook workflow: Embedding and Dense (Keras's names and arguments)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {None: lambda x: x, "linear": lambda x: x, "relu": torch.relu, "tanh": torch.tanh,
               "sigmoid": torch.sigmoid, "softmax": lambda x: torch.softmax(x, -1), "gelu": F.gelu}


class Embedding(nn.Embedding):
    """Token ids (B, T) -> vectors (B, T, output_dim); ids in [0, input_dim). Keras's Embedding(input_dim, output_dim).

    Initialised uniform in [-0.05, 0.05] as Keras does (torch's N(0, 1) is far larger).
    """

    def __init__(self, input_dim: int, output_dim: int, **kwargs):
        super().__init__(input_dim, output_dim, **kwargs)
        nn.init.uniform_(self.weight, -0.05, 0.05)

    def forward(self, ids):
        ids = torch.as_tensor(ids, device=self.weight.device)
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise ValueError(f"Embedding expects integer token ids, got {ids.dtype}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ValueError(f"token ids must lie in [0, {self.num_embeddings}), got min {int(ids.min())} "
                             f"and max {int(ids.max())}")
        return super().forward(ids.long())


class Dense(nn.Module):
    """y = activation(x W^T + b) on the last dimension, so (B, F) and (B, T, F) both work.

    units: output features. activation: None / "linear", "relu", "tanh",
    "sigmoid", "softmax", "gelu" or a callable. The input size is taken from
    the first call unless ``input_size`` is given.
    """

    def __init__(self, units: int, activation=None, *, use_bias: bool = True, input_size: int | None = None):
        super().__init__()
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        if not callable(activation) and activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of "
                             f"{[a for a in ACTIVATIONS if a]} or a callable")
        self.units, self.use_bias, self.activation_name = units, use_bias, activation
        self.activation = activation if callable(activation) else ACTIVATIONS[activation]
        self.input_size = None
        if input_size is not None:
            self.build(input_size)

    def build(self, input_size: int) -> None:
        self.input_size = input_size
        self.weight = nn.Parameter(torch.empty(self.units, input_size))
        self.bias = nn.Parameter(torch.zeros(self.units)) if self.use_bias else None
        bound = math.sqrt(6.0 / (input_size + self.units))   # Glorot uniform, Keras's default
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is None:
            self.build(x.shape[-1])
            self.to(device=x.device, dtype=x.dtype)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"Dense expects {self.input_size} input features, got {x.shape[-1]} "
                             f"(input shape {tuple(x.shape)})")
        return self.activation(F.linear(x, self.weight, self.bias))

    def extra_repr(self) -> str:
        return f"units={self.units}, input_size={self.input_size}, activation={self.activation_name!r}"
