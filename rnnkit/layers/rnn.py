"""The textbook layers: SimpleRNN, LSTM, GRU, JordanRNN, LayerNormLSTM, MinGRU, MinLSTM.

Each is a stack of ``Recurrent`` layers (each wrapped in ``Bidirectional``
when asked), built at the first call if ``input_size`` is not given. The
first argument is the number of units, as in Keras's ``SimpleRNN(32)``.
When every layer can use torch's fused op, the whole stack runs in one
fused call, as torch.nn.LSTM does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import kernels
from ..cells import Cell, ElmanCell, GRUCell, JordanCell, LayerNormLSTMCell, LSTMCell, MinGRUCell, MinLSTMCell
from .base import SequenceLayer, right_padded_lengths
from .recurrent import Recurrent
from .wrappers import MERGE_MODES, Bidirectional, Stacked


class RNN(SequenceLayer):
    """``num_layers`` cells of ``cell_type`` over a sequence; ``cell_options`` go to each cell.

    dropout: Keras's meaning, on every layer of the stack: each layer's inputs
    are dropped (a fresh Bernoulli mask per element and step, training mode
    only). For the first layer these are the layer's own inputs; for the
    others it is the between-layer dropout of torch.nn.LSTM.
    recurrent_dropout, zoneout: inside each layer (see Recurrent).
    merge_mode: how the two directions of every bidirectional layer are merged (None: the last layer returns a pair).
    The state is a tuple of (num_layers * num_directions, B, S) tensors,
    ordered as torch.nn's h_n (and c_n).
    """

    cell_type: type[Cell] = ElmanCell

    def __init__(self, hidden_size: int, *, input_size: int | None = None, num_layers: int = 1,
                 bidirectional: bool = False, merge_mode: str | None = "concat", dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, go_backwards: bool = False,
                 return_sequences: bool = False, return_state: bool = False, batch_first: bool = True,
                 backend: str = "auto", **cell_options):
        super().__init__(return_sequences, return_state, batch_first)
        if not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"hidden_size (the number of units) must be a positive integer, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"unknown merge_mode {merge_mode!r}; expected one of {list(MERGE_MODES)}")
        if backend not in ("auto",) + kernels.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; expected 'auto' or one of {kernels.BACKENDS}")
        self.hidden_size, self.num_layers, self.bidirectional = hidden_size, num_layers, bidirectional
        self.merge_mode, self.dropout, self.go_backwards = merge_mode, dropout, go_backwards
        self.recurrent_dropout, self.zoneout, self.requested_backend = recurrent_dropout, zoneout, backend
        self.cell_options = cell_options
        self.stack: Stacked | None = None
        if input_size is not None:
            self.build(input_size)

    def build(self, input_size: int) -> None:
        layers, size = [], input_size
        for i in range(self.num_layers):
            layer = Recurrent(self.cell_type(size, self.hidden_size, **self.cell_options),
                              go_backwards=self.go_backwards, recurrent_dropout=self.recurrent_dropout,
                              zoneout=self.zoneout, backend=self.requested_backend)
            if self.bidirectional:
                top = i == self.num_layers - 1
                layer = Bidirectional(layer, self.merge_mode if top else self.merge_mode or "concat")
            layers.append(layer)
            size = layer.output_size
        self.stack = Stacked(layers, self.dropout).train(self.training)  # built lazily after .eval(): stay in eval

    input_size = property(lambda self: None if self.stack is None else self.stack.input_size)
    output_size = property(lambda self: self.stack.output_size)
    state_sizes = property(lambda self: self.stack.state_sizes)
    num_slots = property(lambda self: self.num_layers * (2 if self.bidirectional else 1))

    @property
    def backend(self) -> str | None:
        """The backend the layers run on (None until the layer is built)."""
        return None if self.stack is None else self.stack.backend

    def cells(self) -> list[list[Cell]]:
        """cells()[layer][direction]."""
        grid = []
        for layer in self.stack.layers:
            pair = [layer.forward_layer, layer.backward_layer] if self.bidirectional else [layer]
            grid.append([r.cell for r in pair])
        return grid

    def stream_cells(self) -> list:
        return self.stack.stream_cells()

    def run(self, x, state=None, mask=None):
        x = self.drop_inputs(x)
        if self.backend == "torch" and (self.merge_mode in ("concat", None) or self.num_layers == 1):
            lengths = None if mask is None else right_padded_lengths(mask)
            if mask is None or (lengths is not None and lengths.min() > 0):
                return self.run_fused(x, state, lengths)
        return self.stack.run(x, state, mask)

    def drop_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout on the first layer's inputs (the stack drops the inputs of the others)."""
        return F.dropout(x, self.dropout, True) if self.training and self.dropout else x

    def run_fused(self, x, state, lengths):
        """The whole stack in one fused call (torch.nn.LSTM's path)."""
        if state is None:
            state = tuple(x.new_zeros(self.num_slots, x.shape[0], s) for s in self.state_sizes)
        seq, state = kernels.fused.run(self.cells(), x, state, lengths, reverse=self.go_backwards,
                                       dropout=self.dropout, training=self.training)
        if not self.bidirectional:
            return seq, state[0][-1], state
        merge = MERGE_MODES[self.merge_mode]
        return merge(*seq.chunk(2, -1)), merge(state[0][-2], state[0][-1]), state


class SimpleRNN(RNN):
    """Elman RNN layers; ``activation`` "tanh" (default), "relu" or a callable."""
    cell_type = ElmanCell


class LSTM(RNN):
    """LSTM layers; options ``proj_size`` (as torch) and ``peephole``."""
    cell_type = LSTMCell


class GRU(RNN):
    """GRU layers; ``reset_after=True`` (torch/cuDNN form) or False (Cho et al. 2014)."""
    cell_type = GRUCell


class LayerNormLSTM(RNN):
    """Layer-normalised LSTM layers (Ba, Kiros & Hinton 2016)."""
    cell_type = LayerNormLSTMCell


class MinGRU(RNN):
    """minGRU layers (Feng et al. 2024): trained with a parallel scan over time (backend "scan")."""
    cell_type = MinGRUCell


class MinLSTM(RNN):
    """minLSTM layers (Feng et al. 2024): trained with a parallel scan over time (backend "scan")."""
    cell_type = MinLSTMCell


class JordanRNN(RNN):
    """Jordan RNN layers; options ``output_size``, ``activation``, ``output_activation``.

    Teacher forcing: ``layer(x, targets=y)`` in training mode feeds the true
    previous target y[:, t-1] back instead of the layer's own output
    (one unidirectional layer only; targets (B, T, output_size)).
    """
    cell_type = JordanCell

    def run(self, x, state=None, mask=None, targets=None):
        if targets is None or not self.training:
            return super().run(x, state, mask)
        if self.num_layers != 1 or self.bidirectional or self.go_backwards:
            raise ValueError("teacher forcing needs one forward layer (num_layers=1, not bidirectional)")
        expected = (*x.shape[:2], self.state_sizes[0])
        if not isinstance(targets, torch.Tensor) or tuple(targets.shape) != expected:
            got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
            raise ValueError(f"expected targets of shape {expected} (batch, time, output_size), got {got}")
        return self.stack.layers[0].run(self.drop_inputs(x), state, mask, feedback=targets.to(x.dtype))
