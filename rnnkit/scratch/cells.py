"""One time step of the Elman RNN, the LSTM and the GRU, and the step backwards (NumPy).

Every cell has the same three functions:

    <cell>_step(x, state, p)            -> new_state, cache     forward, x (B, I)
    <cell>_step_back(d_new, cache, p, g) -> d_state, dx          backward; adds parameter gradients into g

``p`` is a dict with torch's names and layout (as rnnkit's cells and torch.nn.RNN/LSTM/GRU):
weight_ih (G*H, I), weight_hh (G*H, H), bias_ih (G*H,), bias_hh (G*H,), with G gate blocks
in torch's order: RNN 1, LSTM 4 (i, f, g, o), GRU 3 (r, z, n).
In the backward step ``d_new`` is dL/d(new state), the sum of what flows back from
the output at this step and from the next step; ``d_state`` is dL/d(previous state).
"""
from __future__ import annotations

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def affine_back(da_x, da_h, x, h, p, g):
    """Gradients of a = x W_ih^T + b_ih + h W_hh^T + b_hh, given dL/da for each half.

    da_x is dL/d(input part) and da_h dL/d(recurrent part), each (B, G*H); they differ only in the GRU.
    dW_ih = da_x^T x, dW_hh = da_h^T h, db = column sums; returns (dh, dx) = (da_h W_hh, da_x W_ih).
    """
    g["weight_ih"] += da_x.T @ x
    g["weight_hh"] += da_h.T @ h
    g["bias_ih"] += da_x.sum(0)
    g["bias_hh"] += da_h.sum(0)
    return da_h @ p["weight_hh"], da_x @ p["weight_ih"]


# ---- Elman RNN --------------------------------------------------------------------------------------
def rnn_step(x, state, p):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
    (h,) = state
    h_new = np.tanh(x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"])
    return (h_new,), (x, h, h_new)


def rnn_step_back(d_new, cache, p, g):
    """da = dh_t ⊙ (1 - h_t²)   (tanh' = 1 - tanh²); then the affine map backwards."""
    x, h, h_new = cache
    da = d_new[0] * (1.0 - h_new ** 2)
    dh, dx = affine_back(da, da, x, h, p, g)
    return (dh,), dx


# ---- LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000) ------------------
def lstm_step(x, state, p):
    """Gates in torch's order i, f, g, o:

        [a_i, a_f, a_g, a_o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
        i = σ(a_i)  f = σ(a_f)  g = tanh(a_g)  o = σ(a_o)
        c_t = f ⊙ c_{t-1} + i ⊙ g           the cell state: a sum, not a product, through time
        h_t = o ⊙ tanh(c_t)
    """
    h, c = state
    a = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    ai, af, ag, ao = np.split(a, 4, axis=1)
    i, f, gg, o = sigmoid(ai), sigmoid(af), np.tanh(ag), sigmoid(ao)
    c_new = f * c + i * gg
    tc = np.tanh(c_new)
    return (o * tc, c_new), (x, h, c, i, f, gg, o, tc)


def lstm_step_back(d_new, cache, p, g):
    """dc = dc_t + dh_t ⊙ o ⊙ (1 - tanh²c_t);  do = dh_t ⊙ tanh c_t;  df = dc ⊙ c_{t-1};
    di = dc ⊙ g;  dg = dc ⊙ i;  dc_{t-1} = dc ⊙ f   (the cell state's gradient is only scaled by f);
    then through the nonlinearities: σ' = σ(1 - σ), tanh' = 1 - tanh²."""
    x, h, c, i, f, gg, o, tc = cache
    dh_new, dc_new = d_new
    dc = dc_new + dh_new * o * (1.0 - tc ** 2)
    da = np.concatenate([dc * gg * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - gg ** 2),
                         dh_new * tc * o * (1 - o)], axis=1)
    dh, dx = affine_back(da, da, x, h, p, g)
    return (dh, dc * f), dx


# ---- GRU (Cho et al. 2014, in torch's "reset after" form) --------------------------------------------
def gru_step(x, state, p):
    """Gates in torch's order r, z, n:

        [x_r, x_z, x_n] = W_ih x_t + b_ih        [h_r, h_z, h_n] = W_hh h_{t-1} + b_hh
        r = σ(x_r + h_r)   z = σ(x_z + h_z)   n = tanh(x_n + r ⊙ h_n)
        h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}           z near 1 copies the state forward
    """
    (h,) = state
    xr, xz, xn = np.split(x @ p["weight_ih"].T + p["bias_ih"], 3, axis=1)
    hr, hz, hn = np.split(h @ p["weight_hh"].T + p["bias_hh"], 3, axis=1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return ((1 - z) * n + z * h,), (x, h, r, z, n, hn)


def gru_step_back(d_new, cache, p, g):
    """dn = dh_t ⊙ (1 - z);  dz = dh_t ⊙ (h_{t-1} - n);  direct dh_{t-1} = dh_t ⊙ z;
    da_n = dn ⊙ (1 - n²) feeds x_n directly and h_n through r;  dr = da_n ⊙ h_n."""
    x, h, r, z, n, hn = cache
    (dh_new,) = d_new
    dan = dh_new * (1 - z) * (1 - n ** 2)
    dar = dan * hn * r * (1 - r)
    daz = dh_new * (h - n) * z * (1 - z)
    dh, dx = affine_back(np.concatenate([dar, daz, dan], 1), np.concatenate([dar, daz, dan * r], 1), x, h, p, g)
    return (dh + dh_new * z,), dx


# name -> (step, step_back, gate blocks, state tensors)
CELLS = {
    "rnn": (rnn_step, rnn_step_back, 1, 1),
    "lstm": (lstm_step, lstm_step_back, 4, 2),
    "gru": (gru_step, gru_step_back, 3, 1),
}


def check_cell(cell: str):
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; the NumPy versions are {sorted(CELLS)}")
    return CELLS[cell]


def init_params(cell: str, input_size: int, hidden_size: int, output_size: int | None = None, seed: int = 0,
                dtype=np.float64) -> dict:
    """Random parameters: weights U(-1/√H, 1/√H) as torch.nn.RNN; with ``output_size`` also the
    output layer y_t = W_hy h_t + b_y (weight_hy (O, H), bias_y (O,))."""
    _, _, G, _ = check_cell(cell)
    rng = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(hidden_size)
    shapes = {"weight_ih": (G * hidden_size, input_size), "weight_hh": (G * hidden_size, hidden_size),
              "bias_ih": (G * hidden_size,), "bias_hh": (G * hidden_size,)}
    if output_size:
        shapes.update(weight_hy=(output_size, hidden_size), bias_y=(output_size,))
    return {name: rng.uniform(-k, k, shape).astype(dtype) for name, shape in shapes.items()}


def params_from(module, dtype=np.float64) -> dict:
    """A dict of NumPy copies of a module's parameters (an rnnkit cell: the names already match).

    Works on anything with ``named_parameters()`` (no torch import needed here)."""
    return {name: np.array(value.detach().cpu().numpy(), dtype=dtype) for name, value in module.named_parameters()}
