"""The non-recurrent layers of the textbook workflow: Embedding and Dense (Keras's names and arguments).

Masks (docs/keras.md): a layer with ``compute_mask(x, mask)`` says which steps of
its output are real; a layer with ``supports_masking = True`` takes ``mask=``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .keras_args import ACTIVATIONS, activation as keras_activation, input_size_from, reject_unknown


class Embedding(nn.Embedding):
    """Token ids (B, T) -> vectors (B, T, output_dim); ids in [0, input_dim). Keras's Embedding(input_dim, output_dim).

    mask_zero: id 0 is padding; the mask (ids != 0) flows to the next layers of
    a Sequential, so recurrent layers skip those steps and losses ignore them
    (input_dim must then count the 0). Initialised uniform in [-0.05, 0.05] as
    Keras does (torch's N(0, 1) is far larger). input_length / input_shape are
    accepted for Keras code and only checked against the input.
    """

    supports_masking = True

    def __init__(self, input_dim: int, output_dim: int, *, mask_zero: bool = False, input_length: int | None = None,
                 input_shape=None, name: str | None = None, **kwargs):
        reject_unknown("Embedding", kwargs, ("padding_idx", "max_norm", "norm_type", "scale_grad_by_freq"))
        for what, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Embedding's {what} must be a positive integer, got {v!r}")
        super().__init__(input_dim, output_dim, **kwargs)
        nn.init.uniform_(self.weight, -0.05, 0.05)
        self.mask_zero, self.name = mask_zero, name
        self.input_length = input_length if input_shape is None else tuple(input_shape)[0]
        self.input_shape = None if self.input_length is None else (self.input_length,)
        self._config = {"input_dim": input_dim, "output_dim": output_dim, "mask_zero": mask_zero,
                        "input_length": self.input_length, "name": name, **kwargs}

    def get_config(self) -> dict:
        return dict(self._config)

    def forward(self, ids, mask=None):
        ids = torch.as_tensor(ids, device=self.weight.device)
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise ValueError(f"Embedding expects integer token ids, got {ids.dtype}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ValueError(f"token ids must lie in [0, {self.num_embeddings}), got min {int(ids.min())} "
                             f"and max {int(ids.max())}")
        return super().forward(ids.long())

    def compute_mask(self, ids, mask=None):
        """(B, T) True where the id is not 0 (mask_zero), else the incoming mask."""
        if not self.mask_zero:
            return mask
        return torch.as_tensor(ids, device=self.weight.device) != 0


class Dense(nn.Module):
    """y = activation(x W^T + b) on the last dimension, so (B, F) and (B, T, F) both work.

    units: output features. activation: a Keras name ("relu", "tanh",
    "sigmoid", "softmax", ...) or a callable. The input size is taken from the
    first call unless ``input_size`` (or Keras's input_shape / input_dim) is
    given. Weights Glorot-uniform, bias zeros (Keras's defaults). A mask on a
    (B, T, F) input passes through unchanged.
    """

    supports_masking = True

    def __init__(self, units: int, activation=None, *, use_bias: bool = True, input_size: int | None = None,
                 name: str | None = None, **kwargs):
        super().__init__()
        reject_unknown("Dense", kwargs, ("input_shape", "input_dim"))
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        self.units, self.use_bias, self.activation_name, self.name = units, use_bias, activation, name
        self.input_shape = kwargs.get("input_shape")
        self.activation = keras_activation(activation)
        self.input_size = None
        self._config = {"units": units, "activation": activation, "use_bias": use_bias, "name": name,
                        **{k: v for k, v in kwargs.items() if v is not None}}
        input_size = input_size_from(kwargs.get("input_shape"), kwargs.get("input_dim"), None, input_size)
        if input_size is not None:
            self.build(input_size)

    def get_config(self) -> dict:
        return dict(self._config)

    def build(self, input_size: int) -> None:
        self.input_size = input_size
        self.weight = nn.Parameter(torch.empty(self.units, input_size))
        self.bias = nn.Parameter(torch.zeros(self.units)) if self.use_bias else None
        bound = math.sqrt(6.0 / (input_size + self.units))   # Glorot uniform, Keras's default
        nn.init.uniform_(self.weight, -bound, bound)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.input_size is None and prefix + "weight" in state_dict:   # lazily sized: size from the weights
            self.build(state_dict[prefix + "weight"].shape[1])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor, mask=None) -> torch.Tensor:
        if self.input_size is None:
            self.build(x.shape[-1])
            self.to(device=x.device, dtype=x.dtype)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"Dense expects {self.input_size} input features, got {x.shape[-1]} "
                             f"(input shape {tuple(x.shape)})")
        return self.activation(F.linear(x, self.weight, self.bias))

    def extra_repr(self) -> str:
        return f"units={self.units}, input_size={self.input_size}, activation={self.activation_name!r}"


__all__ = ["Embedding", "Dense", "ACTIVATIONS"]
