"""Bidirectional and Stacked: wrappers that compose any sequence layers."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .. import kernels
from ..cells import Cell
from .base import SequenceLayer

MERGE_MODES = {
    "concat": lambda a, b: torch.cat([a, b], -1),
    "sum": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "ave": lambda a, b: (a + b) / 2,
    None: lambda a, b: (a, b),
}


def reversed_copy(layer: SequenceLayer) -> SequenceLayer:
    """A fresh copy of ``layer`` (new parameters) running in the other direction."""
    twin = copy.deepcopy(layer)
    for m in twin.modules():
        if isinstance(m, Cell):
            m.reset_parameters()
        if hasattr(m, "go_backwards"):
            m.go_backwards = not m.go_backwards
    return twin


def split_state(state, sizes: list[int]):
    """Split a slot-layout state (tuple of (N, B, S)) into consecutive groups of ``sizes`` slots."""
    if state is None:
        return [None] * len(sizes)
    parts = [s.split(sizes, 0) for s in state]
    return [tuple(p[i] for p in parts) for i in range(len(sizes))]


def combined_backend(layers) -> str:
    """The backend of layers that ran: one name, or the distinct names joined by '+' (bottom first)."""
    return "+".join(dict.fromkeys(layer.backend for layer in layers))


def run_layer(layer: SequenceLayer, x, state, mask, backend: str | None):
    """``layer.run``, on ``backend`` when one is given (benchmark mode's choice for a whole stack)."""
    return layer.run(x, state, mask) if backend is None else layer.run(x, state, mask, backend=backend)


def join_states(states) -> tuple:
    return tuple(torch.cat(parts, 0) for parts in zip(*states))


class Bidirectional(SequenceLayer):
    """Runs ``layer`` forwards and a fresh copy of it backwards, and merges them.

    merge_mode: "concat" (default), "sum", "mul", "ave", or None for a pair
    (forward, backward). The backward copy starts at each sequence's own last
    valid step; its outputs are aligned with the input steps. The state holds
    the forward slots, then the backward slots (torch.nn's order).
    """

    def __init__(self, layer: SequenceLayer, merge_mode: str | None = "concat"):
        super().__init__(layer.return_sequences, layer.return_state, layer.batch_first)
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"unknown merge_mode {merge_mode!r}; expected one of {list(MERGE_MODES)}")
        if not layer.batch_first:
            raise ValueError("wrap a batch_first layer; set batch_first on the wrapped layer only after wrapping")
        self.merge_mode = merge_mode
        self.forward_layer, self.backward_layer = layer, reversed_copy(layer)

    input_size = property(lambda self: self.forward_layer.input_size)
    state_sizes = property(lambda self: self.forward_layer.state_sizes)
    num_slots = property(lambda self: 2 * self.forward_layer.num_slots)
    backend = property(lambda self: combined_backend([self.forward_layer, self.backward_layer]))
    selected_backend = property(lambda self: self.forward_layer.selected_backend)

    def record_backend(self, name: str) -> None:
        self.forward_layer.record_backend(name)
        self.backward_layer.record_backend(name)

    @property
    def output_size(self) -> int:
        n = self.forward_layer.output_size
        return 2 * n if self.merge_mode == "concat" else n

    def build(self, input_size: int) -> None:
        self.forward_layer.build(input_size)
        self.backward_layer.build(input_size)

    def stream_cells(self) -> list:
        raise ValueError("a Bidirectional layer cannot stream: its backward direction needs the whole "
                         "sequence before its first output")

    def run(self, x, state=None, mask=None, backend: str | None = None):
        sf, sb = split_state(state, [self.forward_layer.num_slots] * 2)
        seq_f, last_f, st_f = run_layer(self.forward_layer, x, sf, mask, backend)
        seq_b, last_b, st_b = run_layer(self.backward_layer, x, sb, mask, backend)
        merge = MERGE_MODES[self.merge_mode]
        return merge(seq_f, seq_b), merge(last_f, last_b), join_states([st_f, st_b])


class Stacked(SequenceLayer):
    """Layers run one after another, with dropout between them (not after the last).

    The state is the layers' slots in order (layer 0 first), as torch.nn's h_n.
    """

    def __init__(self, layers: list[SequenceLayer], dropout: float = 0.0, *, return_sequences=None,
                 return_state=None, batch_first=True):
        last = layers[-1]
        super().__init__(last.return_sequences if return_sequences is None else return_sequences,
                         last.return_state if return_state is None else return_state, batch_first)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        for layer in layers[:-1]:
            if getattr(layer, "merge_mode", "concat") is None:
                raise ValueError("merge_mode=None gives two outputs and can only be used on the last layer")
        self.layers, self.dropout = nn.ModuleList(layers), dropout

    input_size = property(lambda self: self.layers[0].input_size)
    output_size = property(lambda self: self.layers[-1].output_size)
    state_sizes = property(lambda self: self.layers[0].state_sizes)
    num_slots = property(lambda self: sum(layer.num_slots for layer in self.layers))
    backend = property(lambda self: combined_backend(self.layers))
    selected_backend = property(lambda self: self.layers[0].selected_backend)

    def record_backend(self, name: str) -> None:
        """Record that every layer ran on ``name`` (torch's fused op running the whole stack)."""
        for layer in self.layers:
            layer.record_backend(name)

    def build(self, input_size: int) -> None:
        for layer in self.layers:
            if layer.input_size is None:
                layer.build(input_size)
            input_size = layer.output_size

    def stream_cells(self) -> list:
        return [c for layer in self.layers for c in layer.stream_cells()]

    def run(self, x, state=None, mask=None, backend: str | None = None):
        states = []
        parts = split_state(state, [layer.num_slots for layer in self.layers])
        for i, (layer, s) in enumerate(zip(self.layers, parts)):
            if i:
                x = kernels.dropout(x, self.dropout, self.training)
            x, last, s = run_layer(layer, x, s, mask, backend)
            states.append(s)
        return x, last, join_states(states)
