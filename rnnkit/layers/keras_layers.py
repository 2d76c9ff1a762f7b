"""Keras's shape and regularisation layers on (batch, time, features): Input, Masking, Dropout,
SpatialDropout1D, TimeDistributed, RepeatVector, Flatten, Activation.

Each takes Keras's arguments and defaults, rejects unknown keywords at construction,
and ``get_config()`` gives its arguments back (model.save stores them as JSON).
"""
from __future__ import annotations

import torch
from torch import nn

from .. import kernels
from . import functional
from .keras_args import activation as keras_activation, reject_unknown
from .masking import masked_fill_steps


class KerasLayer(nn.Module):
    """Stores the constructor's arguments for get_config; checks keywords."""

    def __init__(self, config: dict, kwargs: dict, accepted=("name",)):
        super().__init__()
        reject_unknown(type(self).__name__, kwargs, accepted)
        self.name, self.input_shape = kwargs.get("name"), kwargs.get("input_shape")
        self._config = {**config, **{k: v for k, v in kwargs.items() if k in accepted}}

    def get_config(self) -> dict:
        return dict(self._config)


def check_rate(rate) -> float:
    if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    return float(rate)


DTYPES = {None: torch.get_default_dtype, "float32": lambda: torch.float32, "float64": lambda: torch.float64,
          "int32": lambda: torch.int64, "int64": lambda: torch.int64}


class Input(KerasLayer):
    """Keras's Input(shape=...): the shape of one sample (None for any length), first in a Sequential,
    or the start of a functional chain (``x = layer(inputs)``; ``rnnkit.keras.Model(inputs, outputs)``).

    Sequential builds every layer from it at once (summary works before fit).
    dtype "int32"/"int64" for token ids. At a call it checks the input's shape.
    """

    def __init__(self, shape=None, dtype=None, *, batch_size=None, **kwargs):
        super().__init__({"shape": None if shape is None else list(shape), "dtype": dtype}, kwargs)
        if shape is None or not all(d is None or (isinstance(d, int) and d > 0) for d in shape):
            raise ValueError(f"Input needs shape=(d1, d2, ...) with positive sizes or None, got {shape!r}")
        if dtype not in DTYPES:
            raise ValueError(f"unsupported Input dtype {dtype!r}; expected one of {[d for d in DTYPES if d]}")
        self.shape, self.dtype, self.batch_size = tuple(shape), dtype, batch_size
        functional.watch(self)   # until a Model or a Sequential takes it, layers called on it are recorded

    def forward(self, x):
        x = torch.as_tensor(x)
        ok = x.dim() == len(self.shape) + 1 and all(d is None or d == n for d, n in zip(self.shape, x.shape[1:]))
        if not ok:
            raise ValueError(f"expected input of shape (batch, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")
        return x

    def example(self, time: int = 64) -> torch.Tensor:
        """A zero batch of one sample of this shape (None dimensions get ``time`` steps)."""
        shape = [1] + [time if d is None else d for d in self.shape]
        return torch.ones(shape, dtype=DTYPES[self.dtype]())   # ones: a valid id, never Masking's default value


class Masking(KerasLayer):
    """Masks the steps whose features all equal ``mask_value`` (and sets them to 0, as Keras does)."""

    supports_masking = True

    def __init__(self, mask_value: float = 0.0, **kwargs):
        super().__init__({"mask_value": mask_value}, kwargs, ("name", "input_shape"))
        self.mask_value = mask_value

    def compute_mask(self, x, mask=None):
        own = (x != self.mask_value).any(-1)
        return own if mask is None else own & mask

    def forward(self, x, mask=None):
        return masked_fill_steps(x, self.compute_mask(x, mask), 0.0)


class Dropout(KerasLayer):
    """Zeros each input with probability ``rate`` in training and scales the rest by 1/(1-rate).

    noise_shape: as Keras, e.g. (None, 1, None) drops whole time steps' features
    alike (one mask per sequence); None entries take the input's size.
    """

    supports_masking = True

    def __init__(self, rate: float, noise_shape=None, **kwargs):
        super().__init__({"rate": rate, "noise_shape": None if noise_shape is None else list(noise_shape)}, kwargs,
                         ("name", "input_shape"))
        self.rate, self.noise_shape = check_rate(rate), noise_shape

    def forward(self, x, mask=None):
        if not self.training or not self.rate:
            return x
        if self.noise_shape is None:
            return kernels.dropout(x, self.rate)
        shape = [n if d is None else d for d, n in zip(self.noise_shape, x.shape)]
        keep = torch.bernoulli(x.new_full(shape, 1.0 - self.rate))
        return x * keep / (1.0 - self.rate)


class SpatialDropout1D(Dropout):
    """Dropout of whole feature channels: one mask per sequence and feature, shared by every step."""

    def __init__(self, rate: float, **kwargs):
        super().__init__(rate, **kwargs)
        self._config.pop("noise_shape")
        self.noise_shape = (None, 1, None)


class Activation(KerasLayer):
    """An activation by Keras name ("relu", "softmax", ...) or a callable."""

    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__({"activation": activation}, kwargs, ("name", "input_shape"))
        self.fn = keras_activation(activation)

    def forward(self, x, mask=None):
        return self.fn(x)


class RepeatVector(KerasLayer):
    """(B, F) -> (B, n, F): the vector repeated n times (the decoder's input in seq2seq)."""

    def __init__(self, n: int, **kwargs):
        super().__init__({"n": n}, kwargs)
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"RepeatVector needs a positive number of repeats, got {n!r}")
        self.n = n

    def forward(self, x):
        if x.dim() != 2:
            raise ValueError(f"RepeatVector expects (batch, features), got shape {tuple(x.shape)}")
        return x[:, None, :].expand(-1, self.n, -1)


class Flatten(KerasLayer):
    """(B, d1, d2, ...) -> (B, d1 * d2 * ...)."""

    def __init__(self, **kwargs):
        super().__init__({}, kwargs, ("name", "input_shape"))

    def forward(self, x):
        return x.flatten(1)


class TimeDistributed(KerasLayer):
    """Applies ``layer`` to every time step: (B, T, ...) -> (B, T, ...out); a mask passes through."""

    supports_masking = True

    def __init__(self, layer: nn.Module, **kwargs):
        super().__init__({}, kwargs, ("name", "input_shape"))
        if not isinstance(layer, nn.Module):
            raise TypeError(f"TimeDistributed wraps a layer (an nn.Module), got {type(layer).__name__}")
        self.layer = layer

    def get_config(self) -> dict:   # the wrapped layer is stored by model.save (see models/saving.py)
        return dict(self._config)

    def forward(self, x, mask=None):
        if x.dim() < 3:
            raise ValueError(f"TimeDistributed expects (batch, time, ...), got shape {tuple(x.shape)}")
        B, T = x.shape[:2]
        y = self.layer(x.reshape(B * T, *x.shape[2:]))
        return y.reshape(B, T, *y.shape[1:])
