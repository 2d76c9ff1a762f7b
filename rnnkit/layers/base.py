"""The front door every sequence layer shares: input checks, masks, Keras outputs.

Internally every sequence layer implements ``run(x, state, mask)``:

* ``x``     (B, T, I), batch first
* ``state`` None or a tuple of tensors, each (N, B, S), with N the number of
            (layer, direction) slots, as the h_n / c_n of torch.nn.LSTM
* ``mask``  None or bool (B, T); False steps carry the state unchanged
* returns ``(seq, last, state)``: seq (B, T, F) with zeros at masked steps,
  last (B, F) the output at each row's last valid step in processing order
  (zeros for a row with none), and the final state in the same layout.

``forward`` adds the user-facing conventions on top.
"""
from __future__ import annotations

import torch
from torch import nn


def lengths_to_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True at the first lengths[b] steps."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def match_autocast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` in ``dtype`` when autocast made it the autocast dtype (e.g. a bf16 sequence from torch's fused
    LSTM under bf16 autocast, fed to the next layer), else ``t`` unchanged. Each layer then runs as it
    would under autocast alone: its own matmuls autocast (torch paths) or its kernel runs in the
    parameters' dtype (native, scan)."""
    device = t.device.type
    if (t.dtype != dtype and t.is_floating_point() and torch.is_autocast_enabled(device)
            and t.dtype == torch.get_autocast_dtype(device)):
        return t.to(dtype)
    return t


def right_padded_lengths(mask: torch.Tensor) -> torch.Tensor | None:
    """The lengths of a right-padded mask, or None if the mask has holes or left padding."""
    lengths = mask.sum(1)
    return lengths if torch.equal(lengths_to_mask(lengths, mask.shape[1]), mask) else None


class SequenceLayer(nn.Module):
    """Base of Recurrent, Bidirectional, Stacked and the textbook layers.

    Subclasses define ``input_size`` (None until built), ``output_size``,
    ``state_sizes``, ``num_slots`` (N above) and ``run``.
    """

    def __init__(self, return_sequences: bool = False, return_state: bool = False, batch_first: bool = True):
        super().__init__()
        self.return_sequences, self.return_state, self.batch_first = return_sequences, return_state, batch_first

    def build(self, input_size: int) -> None:
        """Create parameters for ``input_size`` features (layers built eagerly do nothing)."""

    def forward(self, x: torch.Tensor, state=None, *, lengths=None, mask=None, **options):
        """Run over x; ``options`` are layer-specific (JordanRNN's ``targets``)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or not x.is_floating_point():
            got = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            layout = "(batch, time, features)" if self.batch_first else "(time, batch, features)"
            raise ValueError(f"expected a 3-D floating-point input tensor {layout}, got {got}")
        if not self.batch_first:
            x = x.transpose(0, 1)
        if self.input_size is None:
            self.build(x.shape[-1])
            self.to(device=x.device, dtype=x.dtype)
        param = next(self.parameters(), None)
        if param is not None:  # under autocast, a lower-precision input from the layer before
            x = match_autocast(x, param.dtype)
            if isinstance(state, (tuple, list)):
                state = tuple(match_autocast(s, param.dtype) if isinstance(s, torch.Tensor) else s for s in state)
        mask = self.check_inputs(x, state, lengths, mask)
        seq, last, state = self.run(x, state, mask, **options)
        # under bf16 autocast torch's fused LSTM returns a bf16 state: the carried state keeps x's dtype
        state = tuple(s.to(x.dtype) if isinstance(s, torch.Tensor) else s for s in state)
        out = seq if self.return_sequences else last
        if self.return_sequences and not self.batch_first:
            out = out.transpose(0, 1) if isinstance(out, torch.Tensor) else tuple(o.transpose(0, 1) for o in out)
        return (out, state) if self.return_state else out

    def step(self, x_t: torch.Tensor, state=None):
        """One time step of streaming inference: ``(y_t, state)``, equal to running the sequence at once.

        x_t (B, I), or (I,) for one sample; state None (zeros) or a tuple of (N, B, S)
        tensors ((N, S) for one sample), the layout ``forward`` returns. Inference only:
        no gradients, no dropout, zoneout as its expectation, so a layer with dropout,
        recurrent dropout or zoneout must be in eval mode. Bidirectional and go_backwards
        layers cannot stream (ValueError). kernels/stream.py runs it; ``stream_backend``
        names the path after the first call. The step always uses the layer's current
        parameters, however they were changed or replaced.
        """
        stream = self.__dict__.get("_stream")
        # a cell may have been replaced only if a module was registered somewhere since the last step:
        # one integer compare inline (a method call per step cost ~1% of a small native step)
        if stream is None or (stream.generation != stream.registrations[0] and not stream.serves(self.stream_cells)):
            if self.input_size is None and isinstance(x_t, torch.Tensor):
                self.build(x_t.shape[-1])
                self.to(device=x_t.device, dtype=x_t.dtype)
            stream = self._start_stream()
        if stream.random and self.training:
            raise ValueError(f"{type(self).__name__} has dropout, recurrent dropout or zoneout: "
                             "call .eval() before streaming with step()")
        return stream.step(x_t, state)

    def stream_cells(self) -> list:
        """[(cell, zoneout)] per layer, bottom first, for streaming; ValueError if the layer cannot stream."""
        raise ValueError(f"{type(self).__name__} cannot run one step at a time")

    @property
    def stream_backend(self) -> str | None:
        """"native" or "reference" once ``step`` has run, else None."""
        stream = self.__dict__.get("_stream")
        return None if stream is None else stream.backend

    def _start_stream(self):
        from ..kernels import stream
        s = stream.Stream(self.stream_cells())
        s.random = any(isinstance(v, (int, float)) and v > 0 for m in self.modules()
                       for v in (getattr(m, a, 0) for a in ("dropout", "recurrent_dropout", "zoneout")))
        self.__dict__["_stream"] = s
        return s

    def _apply(self, fn, *args, **kwargs):  # .to(), .double(), ...: the stepper is rebuilt at the next step
        self.__dict__.pop("_stream", None)
        return super()._apply(fn, *args, **kwargs)

    def __getstate__(self):  # deepcopy and pickle skip the compiled stepper
        state = self.__dict__.copy()
        state.pop("_stream", None)
        return state

    def check_inputs(self, x, state, lengths, mask) -> torch.Tensor | None:
        """Raise ValueError for anything that does not fit; return the (B, T) mask or None."""
        B, T, I = x.shape
        if T == 0 or B == 0:
            raise ValueError(f"expected at least one sequence of at least one step, got input shape {tuple(x.shape)}")
        if I != self.input_size:
            raise ValueError(f"expected input with {self.input_size} features, got {I} (input shape {tuple(x.shape)})")
        param = next(self.parameters(), None)
        if param is not None and (param.dtype != x.dtype or param.device != x.device):
            raise ValueError(f"input is {x.dtype} on {x.device} but the layer's parameters are "
                             f"{param.dtype} on {param.device}; convert one to match (e.g. layer.to(x))")
        if state is not None:
            self.check_state(state, x)
        if lengths is not None and mask is not None:
            raise ValueError("pass either lengths= or mask=, not both")
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
            if lengths.shape != (B,) or lengths.is_floating_point():
                raise ValueError(f"expected lengths as {B} integers (one per sequence), got shape "
                                 f"{tuple(lengths.shape)} and dtype {lengths.dtype}")
            if lengths.min() < 0 or lengths.max() > T:
                raise ValueError(f"lengths must lie in [0, {T}] (the time dimension), got "
                                 f"min {int(lengths.min())} and max {int(lengths.max())}")
            return lengths_to_mask(lengths, T)
        if mask is not None:
            mask = torch.as_tensor(mask, device=x.device)
            if mask.shape != (B, T) or mask.dtype != torch.bool:
                raise ValueError(f"expected mask as a bool tensor of shape ({B}, {T}), got shape "
                                 f"{tuple(mask.shape)} and dtype {mask.dtype}")
        return mask

    def check_state(self, state, x: torch.Tensor) -> None:
        expected = [(self.num_slots, x.shape[0], s) for s in self.state_sizes]
        if not isinstance(state, (tuple, list)) or len(state) != len(expected):
            raise ValueError(f"expected the state as a tuple of {len(expected)} tensors of shapes {expected}, "
                             f"got {type(state).__name__}" + (f" of length {len(state)}" if isinstance(state, (tuple, list)) else ""))
        for s, shape in zip(state, expected):
            if not isinstance(s, torch.Tensor) or tuple(s.shape) != shape:
                got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise ValueError(f"expected state tensors of shapes {expected}, got {got}")
            if s.dtype != x.dtype or s.device != x.device:
                raise ValueError(f"state is {s.dtype} on {s.device} but the input is {x.dtype} on {x.device}")
