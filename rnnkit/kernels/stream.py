"""Streaming inference: one time step of a stack of layers, with as little overhead as possible.

``stepper(layers)`` turns a stack, given as ``(cell, zoneout)`` per layer
(bottom first), into a function ``step(x_t, state) -> (y_t, state)``:

* x_t (B, I), or (I,) for one sample; state None (zeros) or a tuple of
  (N, B, S) tensors ((N, S) for one sample), N the number of layers, the
  layout ``forward`` returns; y_t (B, O) is the top layer's output.
* evaluation-mode math: no dropout, zoneout as its expectation
  (s = p s_prev + (1 - p) s_new), no autograd graph.

For the cells in ``NATIVE_KINDS`` the step runs in ``csrc/stream.cpp``
(one call from Python for the whole stack: matrix-vector products and gates
in hand-written loops). Otherwise, or if it cannot be built, the cells' own
Python ``step`` runs (``"reference"``).

The step always reads the cells' current parameters. The compiled object
looks each parameter up in its cell's ``_parameters`` at every step and
re-derives its weight layout when one was changed in place (its version
counter), given new storage, or replaced by another tensor
(``load_state_dict(..., assign=True)``, a new ``nn.Parameter``, swap_tensors).
A cell replaced in a layer (a new submodule) is caught by ``Stream.serves``:
``GENERATION`` counts every module registered anywhere in the process (a
global torch hook, one integer increment), and only when it moved does the
layer compare its current cells with the stream's.
"""
from __future__ import annotations

import torch

from ..cells import (Cell, ElmanCell, GRUCell, JordanCell, LayerNormLSTMCell, LSTMCell, MinGRUCell,
                     MinLSTMCell)
from ..cells.base import activation_name
from . import build

# Layer kinds, numbered as the Kind enum of csrc/stream.cpp.
NATIVE_KINDS = {ElmanCell: 0, JordanCell: 1, LSTMCell: 2, GRUCell: 3, LayerNormLSTMCell: 4, MinGRUCell: 5,
                MinLSTMCell: 6}
ACTS = {"tanh": 0, "relu": 1, "sigmoid": 2, "identity": 3}   # the Act enum


def native_module():
    """The compiled step module, or None (one warning) if it cannot be built."""
    return build.load("rnnkit_stream", ("stream.cpp",))


GENERATION = [0]  # modules registered (assigned as submodules) since the first stream started
_hook = None


def _count_registration(module, name, submodule):
    GENERATION[0] += 1


def watch_modules() -> None:
    """Install the global registration hook (once): a replaced cell moves GENERATION."""
    global _hook
    if _hook is None:
        _hook = torch.nn.modules.module.register_module_module_registration_hook(_count_registration)


class Stream:
    """A stepper for one stack of cells: ``step(x_t, state)``, the backend it runs on, what it serves."""

    def __init__(self, layers: list[tuple[Cell, float]], native: bool = True):
        watch_modules()
        self.layers, self.generation = list(layers), GENERATION[0]
        self.registrations = GENERATION  # the shared counter, read by the layer's step without a call
        self.step, self.backend = stepper(self.layers, native)

    def serves(self, current) -> bool:
        """True if this stream still computes ``current()`` (a callable listing the layer's (cell, zoneout))."""
        if self.generation == GENERATION[0]:
            return True
        layers = current()
        same = len(layers) == len(self.layers) and all(
            c is c0 and z == z0 for (c, z), (c0, z0) in zip(layers, self.layers))
        if same:
            self.generation = GENERATION[0]
        return same


def native_spec(cell: Cell) -> tuple[int, list[int], list[str]] | None:
    """(kind, flags, parameter names) for csrc/stream.cpp, or None if the native step does not cover ``cell``."""
    kind = NATIVE_KINDS.get(type(cell))
    params = [p for p in cell.parameters()]
    if kind is None or any(p.device.type != "cpu" or p.dtype not in (torch.float32, torch.float64) for p in params):
        return None
    acts = [activation_name(getattr(cell, a, torch.tanh)) for a in ("activation", "output_activation")]
    if None in acts:  # a custom activation callable
        return None
    names = [name for name, _ in cell.named_parameters(recurse=False)]
    if type(cell) is LSTMCell:  # weight_c and weight_hr are optional: pass those present, in this order
        names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        names += [n for n in ("weight_c", "weight_hr") if getattr(cell, n) is not None]
    flags = [ACTS[acts[0]], ACTS[acts[1]], int(getattr(cell, "reset_after", True)),
             int(bool(getattr(cell, "peephole", False))), int(bool(getattr(cell, "proj_size", 0))),
             cell.input_size, cell.hidden_size]
    return kind, flags, names


def stepper(layers: list[tuple[Cell, float]], native: bool = True):
    """(step function, backend name) for the stack ``layers``; see the module docstring."""
    specs = [native_spec(cell) for cell, _ in layers]
    module = native_module() if native and None not in specs else None
    if module is None:
        return python_stepper(layers), "reference"
    compiled = module.Stepper()
    for (cell, zoneout), (kind, flags, names) in zip(layers, specs):
        compiled.add_layer(kind, flags, list(cell.state_sizes), float(zoneout), float(getattr(cell, "eps", 0.0)),
                           cell._parameters, names)
    return compiled.step, "native"


def python_stepper(layers: list[tuple[Cell, float]]):
    """The same step through the cells' Python step functions (any cell, any device)."""
    first = layers[0][0]

    @torch.no_grad()
    def step(x: torch.Tensor, state=None):
        single = isinstance(x, torch.Tensor) and x.dim() == 1
        if not isinstance(x, torch.Tensor) or x.dim() not in (1, 2) or x.shape[-1] != first.input_size:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected x_t of shape (batch, {first.input_size}) or ({first.input_size},) "
                             f"for one sample, got {got}")
        x = x[None] if single else x
        shapes = [(len(layers), x.shape[0], n) for n in first.state_sizes]
        if state is None:
            state = tuple(x.new_zeros(shape) for shape in shapes)
        else:
            if not isinstance(state, (tuple, list)) or len(state) != len(shapes):
                raise ValueError(f"expected the state as a tuple of {len(shapes)} tensors of shapes "
                                 f"{[s[:1] + s[2:] if single else s for s in shapes]}")
            state = tuple(s[:, None] if single else s for s in state)
            for s, shape in zip(state, shapes):
                if tuple(s.shape) != shape:
                    raise ValueError(f"expected state tensors of shapes {shapes}, got {tuple(s.shape)}")
        new = []
        for n, (cell, zoneout) in enumerate(layers):
            prev = tuple(s[n] for s in state)
            out = cell.step(x, prev, cell)
            if zoneout:
                out = tuple(zoneout * s + (1 - zoneout) * o for s, o in zip(prev, out))
            new.append(out)
            x = out[0]
        state = tuple(torch.stack(parts) for parts in zip(*new))
        return (x[0], tuple(s[:, 0] for s in state)) if single else (x, state)

    return step
