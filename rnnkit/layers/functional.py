"""Recording Keras's functional calls: ``x = layer(inputs)``, ``y = other(x)``... on an ``Input``.

While an ``Input`` waits to become part of a model, two global torch module hooks are installed:
a layer called on the Input runs on the Input's one-sample example batch instead (so lazily sized
layers build, as Keras builds them at this call), and every layer called on a recorded tensor tags
its output with the chain of layers so far. ``rnnkit.keras.Model(inputs, outputs)`` reads the chain
(models/functional.py). The hooks are removed once no Input is waiting (each Input leaves the set
when a Model or a Sequential takes it), so other modules' calls pay nothing after that.
"""
from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.nn.modules import module as torch_module

WAITING: "weakref.WeakSet" = weakref.WeakSet()   # the Inputs not yet taken by a Model or a Sequential
HANDLES: list = []
TAG = "_rnnkit_chain"


def chain_of(t) -> tuple | None:
    """The layers that computed ``t`` from an Input, the Input first (None for any other value)."""
    return getattr(t, TAG, None) if isinstance(t, torch.Tensor) else None


def watch(inp) -> None:
    """Record the calls made on ``inp`` (an Input) until ``release(inp)``."""
    WAITING.add(inp)
    if not HANDLES:
        HANDLES.append(torch_module.register_module_forward_pre_hook(_before))
        HANDLES.append(torch_module.register_module_forward_hook(_after))


def release(inp) -> None:
    """``inp`` is taken (by a Model or a Sequential); the hooks go once no Input waits."""
    if inp is not None:
        WAITING.discard(inp)
    if not WAITING:
        while HANDLES:
            HANDLES.pop().remove()


def _before(module, args):
    if not WAITING:   # the Inputs left were garbage-collected without a model: stop recording
        release(None)
        return None
    first = args[0] if args else None
    if isinstance(first, nn.Module) and first is not module and first in WAITING:   # layer(inputs): the example
        x = first.example()
        setattr(x, TAG, (first,))
        return (x, *args[1:])
    return None


def _after(module, args, output):
    chain = chain_of(args[0]) if args else None
    if chain is None or not isinstance(output, torch.Tensor):
        return None
    if output is args[0]:   # a layer that returns its input: a new tensor object, so each keeps its own chain
        output = output.view_as(output)
    setattr(output, TAG, chain + (module,))
    return output
