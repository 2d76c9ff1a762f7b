"""Keras's 1-D convolution and pooling on (batch, time, channels): Conv1D, MaxPooling1D,
GlobalMaxPooling1D, GlobalAveragePooling1D.

Conv1D and MaxPooling1D change the time axis, so like Keras they do not take a
mask (a Sequential raises if one reaches them). The global poolings consume
a mask: masked steps never win the max and do not count in the mean.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .keras_args import activation as keras_activation, input_size_from
from .keras_layers import KerasLayer

PADDINGS = ("valid", "same", "causal")


def pad_amounts(T: int, kernel: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """(left, right) zeros Keras adds on the time axis for this padding."""
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span - 1, 0
    total = max((math.ceil(T / stride) - 1) * stride + span - T, 0)   # "same": output length ceil(T / stride)
    return total // 2, total - total // 2


def positive(name: str, v) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return v


def one(v):   # Keras takes kernel_size=5 or (5,)
    return v[0] if isinstance(v, (tuple, list)) and len(v) == 1 else v


class Conv1D(KerasLayer):
    """y[:, t] = activation(sum_k W_k x[:, t*stride + k*dilation] + b): (B, T, C) -> (B, T', filters).

    padding "valid" (default), "same" (T' = ceil(T / strides)) or "causal" (zeros
    on the left only). Weights Glorot-uniform, bias zeros, as Keras. The input
    channels are taken from the first call (or input_shape).
    """

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", dilation_rate=1,
                 activation=None, use_bias: bool = True, **kwargs):
        super().__init__({"filters": filters, "kernel_size": one(kernel_size), "strides": one(strides),
                          "padding": padding, "dilation_rate": one(dilation_rate), "activation": activation,
                          "use_bias": use_bias}, kwargs, ("name", "input_shape", "input_dim"))
        self.filters, self.kernel_size = positive("filters", filters), positive("kernel_size", one(kernel_size))
        self.strides, self.dilation = positive("strides", one(strides)), positive("dilation_rate", one(dilation_rate))
        if padding not in PADDINGS:
            raise ValueError(f"unknown padding {padding!r}; expected one of {PADDINGS}")
        if padding == "causal" and self.strides != 1:
            raise ValueError("causal padding needs strides=1")
        self.padding, self.use_bias, self.activation = padding, use_bias, keras_activation(activation)
        self.input_size = None
        size = input_size_from(kwargs.get("input_shape"), kwargs.get("input_dim"))
        if size is not None:
            self.build(size)

    def build(self, input_size: int) -> None:
        self.input_size = input_size
        self.weight = nn.Parameter(torch.empty(self.filters, input_size, self.kernel_size))   # torch's layout
        self.bias = nn.Parameter(torch.zeros(self.filters)) if self.use_bias else None
        fan_in, fan_out = input_size * self.kernel_size, self.filters * self.kernel_size
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        nn.init.uniform_(self.weight, -bound, bound)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.input_size is None and prefix + "weight" in state_dict:
            self.build(state_dict[prefix + "weight"].shape[1])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"Conv1D expects (batch, time, channels), got shape {tuple(x.shape)}")
        if self.input_size is None:
            self.build(x.shape[-1])
            self.to(device=x.device, dtype=x.dtype)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"Conv1D expects {self.input_size} channels, got {x.shape[-1]}")
        left, right = pad_amounts(x.shape[1], self.kernel_size, self.strides, self.dilation, self.padding)
        h = F.pad(x.transpose(1, 2), (left, right))   # (B, C, T + pad)
        if h.shape[-1] < (self.kernel_size - 1) * self.dilation + 1:
            raise ValueError(f"Conv1D with kernel_size {self.kernel_size} needs at least "
                             f"{(self.kernel_size - 1) * self.dilation + 1} steps, got {x.shape[1]}")
        y = F.conv1d(h, self.weight, self.bias, self.strides, 0, self.dilation)
        return self.activation(y.transpose(1, 2))


class MaxPooling1D(KerasLayer):
    """The max over windows of ``pool_size`` steps every ``strides`` (default pool_size) steps."""

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", **kwargs):
        super().__init__({"pool_size": one(pool_size), "strides": one(strides), "padding": padding}, kwargs,
                         ("name", "input_shape"))
        self.pool_size = positive("pool_size", one(pool_size))
        self.strides = self.pool_size if strides is None else positive("strides", one(strides))
        if padding not in ("valid", "same"):
            raise ValueError(f"unknown padding {padding!r}; expected 'valid' or 'same'")
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"MaxPooling1D expects (batch, time, channels), got shape {tuple(x.shape)}")
        left, right = pad_amounts(x.shape[1], self.pool_size, self.strides, 1, self.padding)
        h = F.pad(x.transpose(1, 2), (left, right), value=float("-inf"))
        if h.shape[-1] < self.pool_size:
            raise ValueError(f"MaxPooling1D with pool_size {self.pool_size} needs at least that many steps, "
                             f"got {x.shape[1]}")
        return F.max_pool1d(h, self.pool_size, self.strides).transpose(1, 2)


class GlobalMaxPooling1D(KerasLayer):
    """(B, T, C) -> (B, C), the max over the (unmasked) steps; a row with no step gives 0."""

    supports_masking = True

    def __init__(self, **kwargs):
        super().__init__({}, kwargs, ("name", "input_shape"))

    def forward(self, x, mask=None):
        if mask is None:
            return x.amax(1)
        out = torch.where(mask[:, :, None], x, torch.as_tensor(float("-inf"), dtype=x.dtype)).amax(1)
        return torch.where(mask.any(1, keepdim=True), out, torch.zeros_like(out))

    def compute_mask(self, x, mask=None):
        return None


class GlobalAveragePooling1D(GlobalMaxPooling1D):
    """(B, T, C) -> (B, C), the mean over the (unmasked) steps."""

    def forward(self, x, mask=None):
        if mask is None:
            return x.mean(1)
        m = mask[:, :, None].to(x.dtype)
        return torch.where(mask[:, :, None], x, torch.zeros((), dtype=x.dtype)).sum(1) / m.sum(1).clamp(min=1)
