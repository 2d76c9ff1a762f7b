"""Each cell family's step, keeping what happens inside it: gates, candidates, states.

``cell.step`` (rnnkit/cells) returns only the next state; these functions
compute the same equations (each cell's docstring) and also return every
intermediate quantity by name, each (B, units). They are the reference
step written out once more, so tests/test_inspect.py checks each against
``cell.step`` and checks that the gates recombine into the state by the
cell's equations.

    step(xw_t, state, cell) -> (next state, {name: (B, units) tensor})

``xw_t`` is the input's projection W_ih x_t (no bias): ``project`` computes
it for every step of a sequence in one matrix product, so the loop over
time does only the recurrent part (half the work of a stacked layer).

Names: "hidden" is h_t (the layer's output, except Jordan's: "output" y_t),
"cell" the LSTM cell state c_t, "... gate" a gate (σ, values in [0, 1]),
"candidate" the proposed new content (tanh, or minGRU/minLSTM's g).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..cells import ElmanCell, GRUCell, JordanCell, LayerNormLSTMCell, LSTMCell, MinGRUCell, MinLSTMCell
from ..cells.minrnn import g as min_g


def elman(xw, state, p: ElmanCell):
    """h_t = act(W_ih x + b_ih + W_hh h + b_hh)."""
    (h,) = state
    h = p.activation(xw + p.bias_ih + h @ p.weight_hh.T + p.bias_hh)
    return (h,), {"hidden": h}


def jordan(xw, state, p: JordanCell):
    """h_t = act(W_ih x + W_yh y + b_h); y_t = out_act(W_hy h_t + b_y); the state is y."""
    (y,) = state
    h = p.activation(xw + y @ p.weight_yh.T + p.bias_h)
    y = p.output_activation(h @ p.weight_hy.T + p.bias_y)
    return (y,), {"output": y, "hidden": h}


def lstm(xw, state, p: LSTMCell):
    """Gate order i, f, g, o; peepholes and projection as LSTMCell (ActivatedLSTMCell's activations too)."""
    h, c = state
    act, ra = getattr(p, "activation", torch.tanh), getattr(p, "recurrent_activation", torch.sigmoid)
    ki, kf, kg, ko = (xw + p.bias_ih + h @ p.weight_hh.T + p.bias_hh).chunk(4, 1)
    if p.weight_c is not None:
        ki, kf = ki + p.weight_c[0] * c, kf + p.weight_c[1] * c
    i, f, g = ra(ki), ra(kf), act(kg)
    c = f * c + i * g
    if p.weight_c is not None:
        ko = ko + p.weight_c[2] * c
    o = ra(ko)
    h = o * act(c)
    h = h if p.weight_hr is None else h @ p.weight_hr.T
    return (h, c), {"hidden": h, "cell": c, "input gate": i, "forget gate": f, "candidate": g, "output gate": o}


def layernorm_lstm(xw, state, p: LayerNormLSTMCell):
    """Gate order i, f, g, o over LN(W_ih x) + LN(W_hh h) + b; h_t = o ⊙ tanh(LN(c_t))."""
    h, c = state
    n4, n1 = (4 * p.hidden_size,), (p.hidden_size,)
    k = (F.layer_norm(xw, n4, p.ln_ih_weight, None, p.eps)
         + F.layer_norm(h @ p.weight_hh.T, n4, p.ln_hh_weight, None, p.eps) + p.bias)
    ki, kf, kg, ko = k.chunk(4, 1)
    i, f, g, o = torch.sigmoid(ki), torch.sigmoid(kf), torch.tanh(kg), torch.sigmoid(ko)
    c = f * c + i * g
    h = o * torch.tanh(F.layer_norm(c, n1, p.ln_c_weight, p.ln_c_bias, p.eps))
    return (h, c), {"hidden": h, "cell": c, "input gate": i, "forget gate": f, "candidate": g, "output gate": o}


def gru(xw, state, p: GRUCell):
    """Gate order r, z, n; h_t = (1 - z) ⊙ n + z ⊙ h (both reset_after forms; ActivatedGRUCell too)."""
    (h,) = state
    H = p.hidden_size
    act, ra = getattr(p, "activation", torch.tanh), getattr(p, "recurrent_activation", torch.sigmoid)
    xr, xz, xn = (xw + p.bias_ih).chunk(3, 1)
    if p.reset_after:
        hr, hz, hn = (h @ p.weight_hh.T + p.bias_hh).chunk(3, 1)
        r, z = ra(xr + hr), ra(xz + hz)
        n = act(xn + r * hn)
    else:
        hr, hz = (h @ p.weight_hh[:2 * H].T + p.bias_hh[:2 * H]).chunk(2, 1)
        r, z = ra(xr + hr), ra(xz + hz)
        n = act(xn + (r * h) @ p.weight_hh[2 * H:].T + p.bias_hh[2 * H:])
    h = (1 - z) * n + z * h
    return (h,), {"hidden": h, "reset gate": r, "update gate": z, "candidate": n}


def mingru(xw, state, p: MinGRUCell):
    """z = σ(W_iz x + b); h̃ = g(W_ih x + b); h_t = (1 - z) ⊙ h + z ⊙ h̃."""
    (h,) = state
    k_z, k_h = (xw + p.bias_ih).chunk(2, -1)
    z, cand = torch.sigmoid(k_z), min_g(k_h)
    h = (1 - z) * h + z * cand
    return (h,), {"hidden": h, "update gate": z, "candidate": cand}


def minlstm(xw, state, p: MinLSTMCell):
    """f, i = σ(...); f' = f / (f + i), i' = i / (f + i); h_t = f' ⊙ h + i' ⊙ h̃."""
    (h,) = state
    k_f, k_i, k_h = (xw + p.bias_ih).chunk(3, -1)
    f, i, cand = torch.sigmoid(k_f), torch.sigmoid(k_i), min_g(k_h)
    fn, in_ = f / (f + i), i / (f + i)
    h = fn * h + in_ * cand
    return (h,), {"hidden": h, "forget gate": f, "input gate": i, "forget share f'": fn, "input share i'": in_,
                  "candidate": cand}


def project(x: torch.Tensor, cell) -> torch.Tensor:
    """x (T, I) -> W_ih x_t for every t, (T, gates * H): the input half of every step at once."""
    return x @ cell.weight_ih.T


# Most specific class first: ActivatedLSTMCell is an LSTMCell, ActivatedGRUCell a GRUCell.
STEPS = [(LayerNormLSTMCell, layernorm_lstm), (LSTMCell, lstm), (GRUCell, gru), (MinGRUCell, mingru),
         (MinLSTMCell, minlstm), (JordanCell, jordan), (ElmanCell, elman)]


def step_function(cell):
    """The inspecting step of ``cell``'s family; ValueError for a cell rnnkit does not know."""
    for cls, fn in STEPS:
        if isinstance(cell, cls):
            return fn
    raise ValueError(f"cannot inspect a {type(cell).__name__}: rnnkit knows the gates of "
                     f"{', '.join(c.__name__ for c, _ in STEPS)}")


def is_gate(name: str) -> bool:
    """Quantities whose values lie in [0, 1] by construction (σ gates): the ones a saturation plot shows."""
    return name.endswith("gate")
