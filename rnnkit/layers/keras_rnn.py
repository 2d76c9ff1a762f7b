"""The recurrent layers with Keras's state convention (what ``rnnkit.keras.layers`` exports).

rnnkit's own layers follow torch.nn: ``output, state = layer(x, state)`` with
state a tuple of (num_layers * num_directions, B, units) tensors, the layout
truncated BPTT and streaming carry. Keras returns the states flat:
``output, h, c = LSTM(32, return_state=True)(x)`` with h, c of shape (B, units),
and takes them back as ``layer(x, initial_state=[h, c])``. These subclasses do
exactly that and nothing else; for several slots (Bidirectional, num_layers)
the tensors come slot by slot, as Keras's Bidirectional returns
``output, h_fw, c_fw, h_bw, c_bw``.
"""
from __future__ import annotations

import torch

from . import rnn, wrappers


class KerasStates:
    """Mixin: Keras's ``initial_state=[...]`` in and ``output, *states`` out."""

    def forward(self, x, initial_state=None, *, mask=None, lengths=None, **options):
        state = None if initial_state is None else self.state_from_keras(initial_state)
        out = super().forward(x, state, mask=mask, lengths=lengths, **options)
        if not self.return_state:
            return out
        out, state = out
        return (out, *[s[i] for i in range(self.num_slots) for s in state])

    def state_from_keras(self, tensors) -> tuple:
        if isinstance(tensors, torch.Tensor):
            tensors = [tensors]
        per_slot = len(self.state_sizes) if self.input_size is not None else None
        if per_slot is None:
            raise ValueError("call the layer once (or give input_shape) before passing initial_state")
        if len(tensors) != per_slot * self.num_slots:
            raise ValueError(f"{type(self).__name__} takes initial_state as a list of {per_slot * self.num_slots} "
                             f"tensors (batch, units), got {len(tensors)}")
        return tuple(torch.stack([tensors[i * per_slot + j] for i in range(self.num_slots)])
                     for j in range(per_slot))


class SimpleRNN(KerasStates, rnn.SimpleRNN):
    __doc__ = rnn.SimpleRNN.__doc__ + "\n    Keras's return_state / initial_state convention (layers/keras_rnn.py)."


class LSTM(KerasStates, rnn.LSTM):
    __doc__ = "LSTM layers with Keras's convention: ``output, h, c = LSTM(32, return_state=True)(x)``."


class GRU(KerasStates, rnn.GRU):
    __doc__ = "GRU layers with Keras's convention: ``output, h = GRU(32, return_state=True)(x)``."


class Bidirectional(KerasStates, wrappers.Bidirectional):
    """Keras's Bidirectional(layer, merge_mode="concat"): ``output, *forward_states, *backward_states``."""

    def __init__(self, layer, merge_mode: str | None = "concat", **kwargs):
        from .keras_args import reject_unknown
        reject_unknown("Bidirectional", kwargs, ("name", "input_shape"))
        super().__init__(layer, merge_mode)
        self.name, self.input_shape = kwargs.get("name"), kwargs.get("input_shape")
