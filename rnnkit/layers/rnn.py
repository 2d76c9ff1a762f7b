"""The textbook layers: SimpleRNN, LSTM, GRU, JordanRNN, LayerNormLSTM, MinGRU, MinLSTM.

Each is a stack of ``Recurrent`` layers (each wrapped in ``Bidirectional``
when asked), built at the first call if ``input_size`` is not given. The
first argument is the number of units, as in Keras's ``SimpleRNN(32)``.
When every layer can use torch's fused op, the whole stack runs in one
fused call, as torch.nn.LSTM does (on the CPU in training with dropout, one
fused call per layer with rnnkit's dropout masks between them).
"""
from __future__ import annotations

import inspect

import torch

from .. import backends, kernels
from ..cells import Cell, ElmanCell, GRUCell, JordanCell, LayerNormLSTMCell, LSTMCell, MinGRUCell, MinLSTMCell
from ..cells.activated import ActivatedGRUCell, ActivatedLSTMCell
from . import autotune
from .base import SequenceLayer, right_padded_lengths
from .keras_args import activation as keras_activation, input_size_from, reject_unknown
from .recurrent import Recurrent, tracing
from .weight_drop import check_cells, dropped_recurrent_weights
from .wrappers import MERGE_MODES, Bidirectional, Stacked


class RNN(SequenceLayer):
    """``num_layers`` cells of ``cell_type`` over a sequence; ``cell_options`` go to each cell.

    dropout: where Keras puts it, on every layer of the stack: each layer's
    inputs are dropped (training mode only). For the first layer these are the
    layer's own inputs; for the others it is the between-layer dropout of
    torch.nn.LSTM. The mask is torch's kind, fresh for every element and step
    (kernels.dropout); Keras's recurrent layers draw one mask per sequence and
    keep it for every step, which regularises more at the same rate.
    recurrent_dropout, zoneout: inside each layer (see Recurrent).
    weight_dropout: DropConnect on every cell's recurrent matrix weight_hh, one mask per
    forward call (AWD-LSTM; layers/weight_drop.py), training mode only; any backend.
    merge_mode: how the two directions of every bidirectional layer are merged (None: the last layer returns a pair).
    The state is a tuple of (num_layers * num_directions, B, S) tensors,
    ordered as torch.nn's h_n (and c_n).
    """

    cell_type: type[Cell] = ElmanCell

    def __init__(self, units: int | None = None, *, input_size: int | None = None, num_layers: int = 1,
                 bidirectional: bool = False, merge_mode: str | None = "concat", dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, weight_dropout: float = 0.0,
                 go_backwards: bool = False, return_sequences: bool = False, return_state: bool = False, stateful: bool = False,
                 unroll: bool = False, batch_first: bool = True, backend: str = "auto", name: str | None = None,
                 input_shape=None, input_dim: int | None = None, batch_input_shape=None,
                 hidden_size: int | None = None, **cell_options):
        super().__init__(return_sequences, return_state, batch_first)
        if units is not None and hidden_size is not None:
            raise ValueError("give the number of units once (units or hidden_size)")
        units = hidden_size if units is None else units
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(f"units (hidden_size) must be a positive integer, got {units!r}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"unknown merge_mode {merge_mode!r}; expected one of {list(MERGE_MODES)}")
        if backend not in ("auto",) + kernels.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; expected 'auto' or one of {kernels.BACKENDS}")
        for what, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout), ("zoneout", zoneout)):
            if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
                raise ValueError(f"{what} must be in [0, 1), got {rate!r}")
        check_cells([], weight_dropout)
        reject_unknown(type(self).__name__, cell_options, self.cell_option_names())
        input_size = input_size_from(input_shape, input_dim, batch_input_shape, input_size)
        self.hidden_size, self.num_layers, self.bidirectional = units, num_layers, bidirectional
        self.merge_mode, self.dropout, self.go_backwards = merge_mode, dropout, go_backwards
        self.recurrent_dropout, self.zoneout, self.requested_backend = recurrent_dropout, zoneout, backend
        self.weight_dropout = weight_dropout
        self.stateful, self.unroll, self.name = stateful, unroll, name   # unroll: no effect (docs/keras.md)
        self.cell_options = cell_options
        self.input_shape = tuple(input_shape) if input_shape is not None else (
            tuple(batch_input_shape)[1:] if batch_input_shape is not None else None)
        self._config = {"units": units, "num_layers": num_layers, "bidirectional": bidirectional,
                       "merge_mode": merge_mode, "dropout": dropout, "recurrent_dropout": recurrent_dropout,
                       "zoneout": zoneout, "weight_dropout": weight_dropout, "go_backwards": go_backwards,
                       "return_sequences": return_sequences,
                       "return_state": return_state, "stateful": stateful, "unroll": unroll,
                       "batch_first": batch_first, "backend": backend, "name": name, "input_size": input_size,
                       **cell_options}
        self.carried = None   # the state a stateful layer carries to its next call
        self.stack: Stacked | None = None
        if input_size is not None:
            self.build(input_size)

    def get_config(self) -> dict:
        """The constructor's arguments (Keras's get_config): ``type(layer)(**config)`` rebuilds the layer."""
        return dict(self._config)

    @classmethod
    def cell_option_names(cls) -> set[str]:
        """The keywords the cell takes besides its sizes."""
        return set(inspect.signature(cls.cell_type.__init__).parameters) - {"self", "input_size", "hidden_size"}

    def make_cell(self, input_size: int) -> Cell:
        return self.cell_type(input_size, self.hidden_size, **self.cell_options)

    def build(self, input_size: int) -> None:
        layers, size = [], input_size
        for i in range(self.num_layers):
            layer = Recurrent(self.make_cell(size), go_backwards=self.go_backwards,
                              recurrent_dropout=self.recurrent_dropout, zoneout=self.zoneout,
                              backend=self.requested_backend)
            if self.bidirectional:
                top = i == self.num_layers - 1
                layer = Bidirectional(layer, self.merge_mode if top else self.merge_mode or "concat")
            layers.append(layer)
            size = layer.output_size
        self.stack = Stacked(layers, self.dropout).train(self.training)  # built lazily after .eval(): stay in eval
        check_cells([c for pair in self.cells() for c in pair], self.weight_dropout)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A lazily sized layer loads a state_dict before its first call: its size comes from the weights."""
        if self.stack is None:
            first = prefix + "stack.layers.0."
            keys = sorted(k for k in state_dict if k.startswith(first) and k.endswith("weight_ih"))
            if keys:
                self.build(state_dict[keys[0]].shape[1])
                self.to(dtype=state_dict[keys[0]].dtype)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def reset_states(self, states=None) -> None:
        """Forget the state a ``stateful`` layer carries (or set it: a tuple in the layout forward returns)."""
        self.carried = None if states is None else tuple(s.detach() for s in states)

    reset_state = reset_states   # Keras 3's name

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

    def run(self, x, state=None, mask=None, embedded=None, **options):
        """``embedded``: (embedding, ids) when x is embedding(ids) (Sequential passes it; see run_on)."""
        if self.stateful and state is None and self.carried is not None:
            if self.carried[0].shape[1] != x.shape[0]:
                raise ValueError(f"this stateful layer carries the state of {self.carried[0].shape[1]} sequences "
                                 f"but got a batch of {x.shape[0]}: keep the batch size fixed (every batch full) "
                                 "or call reset_states()")
            state = self.carried
        if self.training and self.dropout:   # the dropped inputs are no longer embedding(ids)
            embedded = None
        if embedded is not None:
            options["embedded"] = embedded
        with dropped_recurrent_weights([c for pair in self.cells() for c in pair], self.weight_dropout, self.training):
            seq, last, state = self.run_layers(self.drop_inputs(x), state, mask, **options)
        if self.stateful:
            self.carried = tuple(s.detach() for s in state)
        return seq, last, state

    def run_layers(self, x, state=None, mask=None, embedded=None):
        if embedded is not None and (self.num_layers > 1 or self.bidirectional):
            embedded = None   # only a single forward layer takes the embedding's ids
        return self.run_on(self.call_backend(x, state, mask, embedded), x, state, mask, embedded)

    def call_backend(self, x, state, mask, embedded=None) -> str | None:
        """This call's backend: in benchmark mode (rnnkit.backends) the measured fastest for its shape,
        else None (each layer's static choice, made at construction)."""
        if (not backends.benchmark or self.requested_backend != "auto" or x.device.type != "cpu"
                or tracing()):
            return None
        return autotune.choose(self, x, state, mask, embedded)

    def run_on(self, backend: str | None, x, state=None, mask=None, embedded=None):
        """Run the stack on ``backend`` (None: each layer's selected backend); torch's runs in fused calls.
        With ``embedded`` = (embedding, ids), x == embedding(ids), a single LSTM layer on "native" takes its
        input projection as rows of the embedding's projected table (``fused_embedding`` says it did)."""
        if (backend or self.stack.selected_backend) == "torch" and (
                self.merge_mode in ("concat", None) or self.num_layers == 1):
            lengths = None if mask is None else right_padded_lengths(mask)
            if mask is None or (lengths is not None and lengths.min() > 0):
                return self.run_fused(x, state, lengths)
        if embedded is not None:
            return self.stack.layers[0].run(x, state, mask, backend=backend, embedded=embedded)
        return self.stack.run(x, state, mask, backend=backend)

    @property
    def fused_embedding(self) -> bool:
        """True when the last call took its input projection from the embedding's projected table
        (kernels.native.run_embedded): a single LSTM layer on "native" right after an Embedding."""
        return self.stack is not None and any(getattr(r, "fused_embedding", False) for r in self.recurrent_layers())

    def recurrent_layers(self) -> list[Recurrent]:
        return [m for m in self.stack.modules() if isinstance(m, Recurrent)]

    def drop_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout on the first layer's inputs (the stack drops the inputs of the others)."""
        return kernels.dropout(x, self.dropout, self.training)

    def run_fused(self, x, state, lengths):
        """The whole stack on torch's fused op (torch.nn.LSTM's path; kernels.fused.run)."""
        if state is None:
            state = tuple(x.new_zeros(self.num_slots, x.shape[0], s) for s in self.state_sizes)
        seq, state = kernels.fused.run(self.cells(), x, state, lengths, reverse=self.go_backwards,
                                       dropout=self.dropout, training=self.training)
        self.stack.record_backend("torch")
        if not self.bidirectional:
            return seq, state[0][-1], state
        merge = MERGE_MODES[self.merge_mode]
        return merge(*seq.chunk(2, -1)), merge(state[0][-2], state[0][-1]), state


class SimpleRNN(RNN):
    """Elman RNN layers; ``activation`` "tanh" (default), "relu" (both fast) or any Keras name or callable."""
    cell_type = ElmanCell

    def make_cell(self, input_size: int) -> Cell:
        options = dict(self.cell_options)
        if "activation" in options:
            options["activation"] = keras_activation(options["activation"])
        return ElmanCell(input_size, self.hidden_size, **options)


class GatedRNN(RNN):
    """LSTM and GRU: Keras's ``activation`` (default "tanh") and ``recurrent_activation`` (default "sigmoid").

    The standard pair runs on the fast paths; any other activation (a Keras name
    or a callable) runs the same equations on the reference loop (``backend``
    says "reference").
    """
    activated_type: type[Cell]

    @classmethod
    def cell_option_names(cls) -> set[str]:
        return super().cell_option_names() | {"activation", "recurrent_activation"}

    def make_cell(self, input_size: int) -> Cell:
        options = dict(self.cell_options)
        act = keras_activation(options.pop("activation", "tanh"))
        rec = keras_activation(options.pop("recurrent_activation", "sigmoid"), "recurrent_activation")
        if act is torch.tanh and rec is torch.sigmoid:
            return self.cell_type(input_size, self.hidden_size, **options)
        return self.activated_type(input_size, self.hidden_size, act, rec, **options)


class LSTM(GatedRNN):
    """LSTM layers; options ``proj_size`` (as torch) and ``peephole``.

    With ``return_state=True`` it returns ``(output, (h, c))``, h and c of shape
    (num_layers * num_directions, B, units) as torch.nn.LSTM; Keras's
    ``output, h, c`` is rnnkit.keras.layers.LSTM's convention (docs/keras.md).
    """
    cell_type, activated_type = LSTMCell, ActivatedLSTMCell
    takes_embedded = True   # Sequential hands it an Embedding's ids (run_on)


class GRU(GatedRNN):
    """GRU layers; ``reset_after=True`` (torch/cuDNN form, Keras's default) or False (Cho et al. 2014)."""
    cell_type, activated_type = GRUCell, ActivatedGRUCell


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

    def run_layers(self, x, state=None, mask=None, targets=None):
        if targets is None or not self.training:
            return super().run_layers(x, state, mask)
        if self.num_layers != 1 or self.bidirectional or self.go_backwards:
            raise ValueError("teacher forcing needs one forward layer (num_layers=1, not bidirectional)")
        expected = (*x.shape[:2], self.state_sizes[0])
        if not isinstance(targets, torch.Tensor) or tuple(targets.shape) != expected:
            got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
            raise ValueError(f"expected targets of shape {expected} (batch, time, output_size), got {got}")
        return self.stack.layers[0].run(x, state, mask, feedback=targets.to(x.dtype))
