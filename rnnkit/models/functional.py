"""Keras's functional ``Model(inputs, outputs)`` for one chain of layers from one Input to one output.

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(20000, 128)(inputs)
    x = layers.Bidirectional(layers.LSTM(64))(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)      # a Sequential of Input, Embedding, Bidirectional, Dense

Each ``layer(x)`` on the Input ran on a one-sample example batch and was recorded
(layers/functional.py); the Model is the Sequential of the recorded chain, so compile, fit,
summary, save and load_model work as for any Sequential (load_model gives a Sequential back).
A graph that is not one chain (several inputs or outputs, a merge such as ``add`` or
``concatenate``, a tensor operation between layers, a layer's extra outputs from
``return_state``, one layer used twice) raises a ValueError that says so.
"""
from __future__ import annotations

import torch

from ..layers import functional
from ..layers.keras_layers import Input
from .sequential import Sequential

NOT_A_CHAIN = ("rnnkit's Model(inputs, outputs) takes one chain of layers from one Input to one output, each layer "
               "called on the previous one's output")


def single(value, what: str):
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"{NOT_A_CHAIN}; got {len(value)} {what}: use a torch.nn.Module for such graphs")
        value = value[0]
    if isinstance(value, dict):
        raise ValueError(f"{NOT_A_CHAIN}; got a dict of {what}")
    return value


def chain(inputs, outputs) -> list:
    """The layers from ``inputs`` (an Input) to ``outputs`` (the tensor they returned), in order."""
    inputs, outputs = single(inputs, "inputs"), single(outputs, "outputs")
    if not isinstance(inputs, Input):
        raise ValueError(f"{NOT_A_CHAIN}; inputs must be keras.Input(shape=...), got {type(inputs).__name__}")
    layers = functional.chain_of(outputs)
    if layers is None or layers[0] is not inputs:
        got = "a tensor no recorded layer returned (a tensor operation between layers, or one of several " \
              "outputs of a layer with return_state=True?)" if isinstance(outputs, torch.Tensor) else \
              type(outputs).__name__
        raise ValueError(f"{NOT_A_CHAIN}; outputs is {got}" if layers is None else
                         f"{NOT_A_CHAIN}; outputs was computed from another Input")
    layers = list(layers[1:])
    if len({id(m) for m in layers}) != len(layers):
        raise ValueError(f"{NOT_A_CHAIN}; a layer is used twice in it (shared layers are not supported)")
    return layers


class Model(Sequential):
    """``Model(inputs, outputs, name=None)``: Keras's functional model for a chain of layers (module docstring).

    Subclassing Keras's Model (a ``call`` method) is not supported: subclass torch.nn.Module, or
    use Sequential, whose compile / fit / evaluate / predict this class has.
    """

    def __init__(self, inputs=None, outputs=None, name: str | None = None, **kwargs):
        if kwargs:
            raise TypeError(f"Model got unknown keyword arguments {sorted(kwargs)}")
        if inputs is None or outputs is None:
            raise TypeError("Model(inputs, outputs): rnnkit supports Keras's functional form; for a subclassed "
                            "model with call(), subclass torch.nn.Module (or use Sequential)")
        layers = chain(inputs, outputs)
        functional.release(single(inputs, "inputs"))
        super().__init__([single(inputs, "inputs"), *layers], name=name)
        self.reset_states()   # the recording call must not leave a stateful layer's state behind
