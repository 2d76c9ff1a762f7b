"""Keras's keyword arguments at the door: the ones rnnkit takes, and a clear error for the rest.

Every Keras-named layer checks its keywords in its constructor, so a misspelt or
unsupported argument fails where it is written, not at the first call.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Keras activation names -> torch callables (Keras 3 definitions: hard_sigmoid = relu6(x + 3) / 6).
ACTIVATIONS = {None: lambda x: x, "linear": lambda x: x, "relu": torch.relu, "tanh": torch.tanh,
               "sigmoid": torch.sigmoid, "softmax": lambda x: torch.softmax(x, -1), "gelu": F.gelu,
               "elu": F.elu, "selu": F.selu, "softplus": F.softplus, "softsign": F.softsign,
               "swish": F.silu, "silu": F.silu, "hard_sigmoid": F.hardsigmoid, "exponential": torch.exp,
               "leaky_relu": F.leaky_relu, "log_softmax": lambda x: torch.log_softmax(x, -1)}


def activation(fn, what: str = "activation"):
    """A callable from a Keras activation name or a callable."""
    if callable(fn):
        return fn
    if fn not in ACTIVATIONS:
        raise ValueError(f"unknown {what} {fn!r}; expected one of {[a for a in ACTIVATIONS if a]} or a callable")
    return ACTIVATIONS[fn]


_INIT = ("rnnkit initialises weights itself (input weights LeCun-uniform, recurrent weights orthogonal, "
         "Dense/Conv1D Glorot-uniform); re-initialise the parameters with torch.nn.init after building")
_REG = "rnnkit has no per-layer regularizers: use weight_decay in the optimizer (optimizers.Adam(weight_decay=...))"
_CONSTRAINT = "rnnkit has no weight constraints: apply one after each update in a callback's on_step_end"

# Keras arguments rnnkit does not take, with the rnnkit way to get the same effect.
KERAS_HINTS = {
    "kernel_initializer": _INIT, "recurrent_initializer": _INIT, "bias_initializer": _INIT,
    "embeddings_initializer": _INIT, "depthwise_initializer": _INIT,
    "kernel_regularizer": _REG, "recurrent_regularizer": _REG, "bias_regularizer": _REG,
    "activity_regularizer": _REG, "embeddings_regularizer": _REG,
    "kernel_constraint": _CONSTRAINT, "recurrent_constraint": _CONSTRAINT, "bias_constraint": _CONSTRAINT,
    "embeddings_constraint": _CONSTRAINT,
    "unit_forget_bias": "rnnkit always starts the LSTM forget-gate bias at 1 (Keras's unit_forget_bias=True)",
    "time_major": "use batch_first=False for (time, batch, features) inputs",
    "seed": "seed torch's generator instead: torch.manual_seed(seed)",
    "dtype": "convert the layer after building, e.g. layer.to(torch.float64)",
    "trainable": "freeze a layer with layer.requires_grad_(False)",
    "implementation": "rnnkit picks the implementation itself; layer.backend names it (backend= forces one)",
    "use_cudnn": "rnnkit picks the implementation itself; layer.backend names it (backend= forces one)",
    "cell": "pass a cell to rnnkit.Recurrent(cell) instead of RNN(cell)",
    "sparse": "rnnkit's Embedding takes dense integer ids",
    "lora_rank": "rnnkit has no LoRA layers",
}


def input_size_from(input_shape=None, input_dim=None, batch_input_shape=None, input_size=None):
    """The feature size named by Keras's input_shape / input_dim / batch_input_shape, or input_size."""
    given = {k: v for k, v in (("input_shape", input_shape), ("input_dim", input_dim),
                                ("batch_input_shape", batch_input_shape), ("input_size", input_size)) if v is not None}
    if len(given) > 1:
        raise ValueError(f"give the input size once, got {sorted(given)}")
    if input_shape is not None or batch_input_shape is not None:
        shape = tuple(input_shape if input_shape is not None else batch_input_shape)
        if not shape or not isinstance(shape[-1], int) or shape[-1] < 1:
            raise ValueError(f"input_shape must end with the number of features, got {shape}")
        return shape[-1]
    return input_dim if input_dim is not None else input_size


def reject_unknown(layer: str, kwargs: dict, accepted=()) -> None:
    """TypeError naming the first keyword that ``layer`` does not take, with the rnnkit way where Keras has it."""
    for name in kwargs:
        if name in accepted:
            continue
        hint = KERAS_HINTS.get(name)
        if hint:
            raise TypeError(f"{layer} does not take Keras's {name}=: {hint}")
        known = f"; it takes {', '.join(sorted(accepted))}" if accepted else ""
        raise TypeError(f"{layer} got an unknown keyword argument {name!r}{known}")
