"""``activations(model, text)``: every layer's states and gates over a text, and the next-character predictions.

The states come from the cell's own step (``cell.step``, the reference path)
run in Python one character at a time, recording its gates (``gates.py``),
and the predictions from the model's output layer on them.
The model's own forward pass (its fast path) runs over the first
``CHECKED`` characters as a check: ``max_prob_diff`` is how far the two
paths' next-character probabilities differ there, reported rather than
hidden (a warning above 1e-3). Running the fast path over the whole text
as well would double the time for a check.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..layers import Recurrent
from .gates import is_gate, step_function

CHECKED = 256   # characters on which the fast path checks the reference path


@dataclass
class LayerActivations:
    """One layer: ``quantities[name]`` is (T, units), row t after reading text[t]."""
    quantities: dict[str, torch.Tensor]
    output: str = "hidden"    # the name of the quantity the layer outputs (Jordan: "output")

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.quantities[name]

    @property
    def names(self) -> list[str]:
        return list(self.quantities)

    @property
    def gates(self) -> list[str]:
        """The σ gates (values in [0, 1]), as the saturation plots show them."""
        return [n for n in self.quantities if is_gate(n)]


@dataclass
class Activations:
    """Everything ``rnnkit visualize`` draws, as tensors (rows: characters of ``text``)."""
    text: str
    cell: str
    layers: list[LayerActivations]
    top_chars: list[list[str]]   # top_chars[t]: the k likeliest characters to follow text[:t + 1]
    top_probs: torch.Tensor      # (T, k) their probabilities
    bits_per_char: float         # the model's loss on text[1:] given what precedes, in bits
    max_prob_diff: float = 0.0   # max |p_reference - p_model| over the first CHECKED characters
    unknown: set[str] = field(default_factory=set)   # characters of text the vocabulary lacks (read as UNK)


def recurrent_layers(model) -> list[Recurrent]:
    """The unidirectional ``Recurrent`` layers of a CharLM's stack, bottom first."""
    found = list(model.rnn.stack.layers)
    for layer in found:
        if not isinstance(layer, Recurrent) or layer.go_backwards:
            raise ValueError(f"cannot inspect a {type(layer).__name__} layer: only forward Recurrent layers "
                             "(a character model's stack) have one state per character")
    return found


@torch.no_grad()
def run_layer(layer: Recurrent, x: torch.Tensor) -> LayerActivations:
    """x (T, I) -> the layer's quantities, each (T, units), by the cell's step math in evaluation mode."""
    cell, step, zone = layer.cell, step_function(layer.cell), layer.zoneout
    state = cell.init_state(1, x.device, x.dtype)
    rows: list[dict] = []
    for t in range(x.shape[0]):
        new, q = step(x[t:t + 1], state, cell)
        if zone:   # zoneout in evaluation keeps the expectation: s = p s_prev + (1 - p) s_new (recurrent.py)
            new = tuple(zone * s + (1 - zone) * s_new for s, s_new in zip(state, new))
        output = "output" if "output" in q else "hidden"
        q[output] = new[0]
        if "cell" in q:
            q["cell"] = new[1]
        rows.append(q)
        state = new
    quantities = {name: torch.cat([r[name] for r in rows]) for name in rows[0]}   # (T, units) each
    return LayerActivations(quantities, output)


@torch.no_grad()
def activations(model, text: str, vocab=None, *, top: int = 5) -> Activations:
    """Per layer the states and gates of ``model`` reading ``text``, and its top-``top`` next characters.

    ``model``: a CharLM with its ``vocab`` (rnnkit.tasks.charlm.load_model gives both), or the path of a
    charlm checkpoint (loaded safely: safetensors and JSON). The model is run in evaluation mode.
    """
    if isinstance(model, (str, os.PathLike)):
        from ..tasks.charlm import load_model
        model, vocab = load_model(str(model))
    if vocab is None:
        raise ValueError("pass the model's vocabulary with the model (or a checkpoint path)")
    if not isinstance(text, str) or not text:
        raise ValueError("activations needs a non-empty text")
    was_training = model.training
    model.eval()
    try:
        ids = vocab.encode(text)                                    # (T,)
        x = model.inputs(ids)                                       # (T, E) or one-hot (T, V)
        layers = []
        for layer in recurrent_layers(model):
            acts = run_layer(layer, x)
            layers.append(acts)
            x = acts[acts.output]                                   # evaluation: no dropout between layers
        logits = model.head(x).float()                              # (T, V), as CharLM.forward computes them
        # the check: the model's own forward pass (its fast path) over the first CHECKED characters
        n = min(len(ids), CHECKED)
        fast = model(ids[None, :n])[0][0].float()                   # (n, V)
    finally:
        model.train(was_training)
    probs = logits.softmax(-1)
    diff = float((fast.softmax(-1) - probs[:n]).abs().max())
    if diff > 1e-3:
        warnings.warn(f"rnnkit.inspect: the step-by-step states give next-character probabilities up to "
                      f"{diff:.2g} away from the model's forward pass", RuntimeWarning, stacklevel=2)
    k = min(top, probs.shape[-1])
    top_probs, top_ids = probs.topk(k, -1)                           # (T, k)
    top_chars = [[vocab.chars[int(i)] for i in row] for row in top_ids]
    loss = F.cross_entropy(logits[:-1], ids[1:]).item() if len(ids) > 1 else float("nan")
    return Activations(text, model.config.cell, layers, top_chars, top_probs, loss / math.log(2), diff,
                       vocab.unknown(text))
