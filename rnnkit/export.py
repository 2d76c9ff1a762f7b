"""ONNX export with the recurrent state as an input and an output.

Two graphs, both in evaluation mode (no dropout, zoneout as its expectation):

* whole sequence: ``x`` (B, T, I) and the initial state -> ``y`` (B, T, F) and
  the final state; B and T are dynamic. Each (layer, direction) is one ONNX
  ``Scan`` whose body is the cell's own step function (``cells/``), so the
  graph holds a real loop over time, not T unrolled copies;
* one step (``step=True``): ``x`` (B, I) and the state -> ``y`` (B, F) and the
  next state, for streaming on any runtime (what ``layer.step`` computes).

The state inputs are ``state_0``, ``state_1`` ... (h, then c for an LSTM), each
(N, B, S) in the layout ``forward`` returns (N = layers x directions); the
outputs are ``y`` and ``state_0_out`` .... A CharLM takes ``ids`` (int64) and
gives ``logits``.

The graph is recorded by ``torch.export`` (``torch.onnx.export(dynamo=True)``),
the time loop through torch's ``scan`` operator, which the ONNX exporter writes
as ``Scan``: whichever backend a layer trains on (fused, native, scan), the
export runs the reference math. Sequences are whole (no ``lengths``/mask input):
variable lengths are served by the step graph or by one call per length.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from .errors import UserError
from .layers import RNN, Bidirectional, Recurrent, SequenceLayer, Stacked
from .layers.wrappers import MERGE_MODES, split_state
from .models.charlm import CharLM
from .tasks.options import check_out_file

INSTALL = 'ONNX export needs onnx, onnxruntime and onnxscript: pip install "rnnkit[export]"'


def require_onnx() -> None:
    """Raise UserError (one line: what to install) if the export extra is missing."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise UserError(INSTALL) from None


def layer_step(cell, zoneout: float, x_t: torch.Tensor, state: tuple) -> tuple:
    """One evaluation-mode step of a Recurrent layer: the cell's math, zoneout as its expectation."""
    new = type(cell).step(x_t, state, cell, None)
    if zoneout:
        new = tuple(zoneout * s + (1 - zoneout) * s_new for s, s_new in zip(state, new))
    return new


def run_recurrent(layer: Recurrent, x: torch.Tensor, state: tuple) -> tuple:
    """x (B, T, I), state tuple of (1, B, S) -> seq (B, T, S0), state; the time loop is torch's scan."""
    from torch._higher_order_ops.scan import scan

    cell, zoneout = layer.cell, layer.zoneout

    def body(carry, x_t):
        new = layer_step(cell, zoneout, x_t, carry)
        return new, new[0].clone()   # (scan's outputs must not alias its carry)

    final, ys = scan(body, tuple(s[0] for s in state), x.transpose(0, 1), reverse=layer.go_backwards)
    return ys.transpose(0, 1), tuple(s[None] for s in final)   # (B, T, S0), (1, B, S) each


def run_sequence(layer: SequenceLayer, x: torch.Tensor, state: tuple) -> tuple:
    """The whole-sequence evaluation-mode computation of any rnnkit sequence layer, torch ops only."""
    if isinstance(layer, RNN):
        return run_sequence(layer.stack, x, state)
    if isinstance(layer, Recurrent):
        return run_recurrent(layer, x, state)
    if isinstance(layer, Bidirectional):
        sf, sb = split_state(state, [layer.forward_layer.num_slots] * 2)
        seq_f, st_f = run_sequence(layer.forward_layer, x, sf)
        seq_b, st_b = run_sequence(layer.backward_layer, x, sb)
        return MERGE_MODES[layer.merge_mode](seq_f, seq_b), join(st_f, st_b)
    if isinstance(layer, Stacked):
        states = []
        for sub, s in zip(layer.layers, split_state(state, [sub.num_slots for sub in layer.layers])):
            x, s = run_sequence(sub, x, s)
            states.append(s)
        return x, join(*states)
    raise UserError(f"ONNX export does not know the layer {type(layer).__name__}; export an rnnkit RNN, "
                    "Recurrent, Bidirectional or Stacked layer (or a CharLM)")


def join(*states: tuple) -> tuple:
    return tuple(torch.cat(parts, 0) for parts in zip(*states))


def run_step(layer: SequenceLayer, x_t: torch.Tensor, state: tuple) -> tuple:
    """One time step through every layer, bottom first: x_t (B, I), state (N, B, S) -> y (B, F), state."""
    slots = []
    for n, (cell, zoneout) in enumerate(layer.stream_cells()):   # ValueError for a layer that cannot stream
        new = layer_step(cell, zoneout, x_t, tuple(s[n] for s in state))
        slots.append(new)
        x_t = new[0]
    return x_t, tuple(torch.stack(parts, 0) for parts in zip(*slots))


class Graph(nn.Module):
    """What is exported: a sequence layer or a CharLM, whole-sequence or one step, state in and out."""

    def __init__(self, model: nn.Module, step: bool):
        super().__init__()
        self.model, self.step = model, step
        self.layer = model.rnn if isinstance(model, CharLM) else model

    def forward(self, x, *state):
        if isinstance(self.model, CharLM):
            x = self.model.inputs(x)
        y, state = (run_step if self.step else run_sequence)(self.layer, x, state)
        if isinstance(self.model, CharLM):
            y = self.model.head(y)
        return (y, *state)


def check(model: nn.Module, path: Path, overwrite: bool, step: bool) -> SequenceLayer:
    layer = model.rnn if isinstance(model, CharLM) else model
    if not isinstance(layer, SequenceLayer):
        raise UserError(f"export_onnx takes an rnnkit sequence layer or a CharLM, got {type(model).__name__}")
    if layer.input_size is None:
        raise UserError(f"{type(layer).__name__} is not built yet: give input_size= or run it once before export")
    if any(isinstance(m, Bidirectional) and m.merge_mode is None for m in layer.modules()):
        raise UserError("merge_mode=None gives a pair of outputs; export a layer with merge_mode 'concat', "
                        "'sum', 'mul' or 'ave'")
    if step:
        try:
            layer.stream_cells()
        except ValueError as e:
            raise UserError(f"no step graph: {e}") from None
    check_out_file(path, (".onnx",), overwrite, "path", "pass overwrite=True")
    return layer


@contextlib.contextmanager
def exporter_quiet():
    """Without the exporter's notes that say nothing about the user's model (torchvision absent, deprecations
    inside torch.export, a renamed axis): real problems still raise or warn."""
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec", category=FutureWarning)
            warnings.filterwarnings("ignore", message=r"# The axis name", category=UserWarning)
            yield
    finally:
        registry.setLevel(level)


def export_onnx(model: nn.Module, path, *, step: bool = False, overwrite: bool = False, opset: int = 18,
                example_batch: int = 2, example_steps: int = 3, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` (an rnnkit sequence layer or a CharLM) to ``path`` as ONNX; return the path.

    step=False: the whole-sequence graph, dynamic batch and time; step=True: one time step
    (not for bidirectional or go_backwards layers). The graph is the model in evaluation
    mode, whatever its mode (which is restored). The file is written atomically; an existing
    file is replaced only with overwrite=True. ``metadata`` (str -> str) is stored in the
    model's metadata_props (the CLI stores a CharLM's vocabulary and config there).
    """
    require_onnx()
    path = Path(path)
    layer = check(model, path, overwrite, step)
    param = next(model.parameters())
    B, T, I = example_batch, example_steps, layer.input_size
    if isinstance(model, CharLM):
        x = torch.zeros((B,) if step else (B, T), dtype=torch.long, device=param.device)
        names = ["ids"], ["logits"]
    else:
        x = torch.zeros((B, I) if step else (B, T, I), dtype=param.dtype, device=param.device)
        names = ["x"], ["y"]
    state = tuple(torch.zeros(layer.num_slots, B, s, dtype=param.dtype, device=param.device)
                  for s in layer.state_sizes)
    inputs = names[0] + [f"state_{i}" for i in range(len(state))]
    outputs = names[1] + [f"state_{i}_out" for i in range(len(state))]
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    shapes = ({0: batch} if step else {0: batch, 1: time}, tuple({1: batch} for _ in state))  # (x, *state)
    training = model.training
    model.eval()
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with torch.no_grad(), exporter_quiet():   # inference graph: (with gradients on, tracing scan also traces its backward)
            torch.onnx.export(Graph(model, step).eval(), (x, *state), tmp, dynamo=True, opset_version=opset,
                              input_names=inputs, output_names=outputs, dynamic_shapes=shapes, verbose=False,
                              external_data=False)
        if metadata:
            import onnx
            proto = onnx.load(tmp)
            for key, value in metadata.items():
                proto.metadata_props.add(key=str(key), value=str(value))
            onnx.save(proto, tmp)
        os.replace(tmp, path)
    finally:
        model.train(training)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
