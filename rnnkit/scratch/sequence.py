"""A sequence through time and back: softmax output, cross-entropy, full and truncated BPTT (NumPy).

The model at every step (many-to-many, aligned):

    state_t = cell(x_t, state_{t-1})            h_t = state_t[0]
    y_t     = W_hy h_t + b_y                     logits, (B, O)
    p_t     = softmax(y_t)
    L       = -(1/B) Σ_b Σ_t log p_t[b, target_{b,t}]      summed over time, averaged over the batch

Backpropagation through time (BPTT, Werbos 1990) walks the unrolled graph
from the last step to the first, adding at each step the gradient that comes
from the output to the gradient that comes from the future.
"""
from __future__ import annotations

import numpy as np

from .cells import check_cell

CELL_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def softmax(y):
    """p = exp(y - max y) / Σ exp(y - max y): the same value, no overflow."""
    e = np.exp(y - y.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def softmax_cross_entropy(y, targets):
    """Loss -Σ log p[target] over the rows of y (B, O), and its gradient dL/dy = p - onehot(target)."""
    p = softmax(y)
    rows = np.arange(len(targets))
    dy = p.copy()
    dy[rows, targets] -= 1.0
    return -np.log(p[rows, targets]).sum(), dy


def zero_state(cell: str, batch: int, hidden_size: int, dtype=np.float64) -> tuple:
    return tuple(np.zeros((batch, hidden_size), dtype) for _ in range(check_cell(cell)[3]))


def forward(p: dict, cell: str, x, state=None):
    """Run the cell over x (B, T, I) from ``state`` (zeros if None).

    Returns hs (B, T, H) (the outputs h_t), the final state, and the per-step caches for backward."""
    step = check_cell(cell)[0]
    B, T, _ = x.shape
    state = zero_state(cell, B, p["weight_hh"].shape[1], x.dtype) if state is None else state
    hs, caches = [], []
    for t in range(T):
        state, cache = step(x[:, t], state, p)
        hs.append(state[0])
        caches.append(cache)
    return np.stack(hs, 1), state, caches


def output_backward(p: dict, hs, targets, first: int = 0):
    """The loss of the output layer on steps ``first``.. and its gradients.

    hs (B, T, H), targets (B, T) ints. Returns loss, dhs (B, T, H) = dL/dh_t from the output
    (zero before ``first``), and the gradients of weight_hy, bias_y."""
    B, T, H = hs.shape
    y = hs @ p["weight_hy"].T + p["bias_y"]                        # (B, T, O)
    loss, dy = softmax_cross_entropy(y[:, first:].reshape(-1, y.shape[-1]), targets[:, first:].reshape(-1))
    dy = dy.reshape(B, T - first, -1) / B
    dhs = np.zeros_like(hs)
    dhs[:, first:] = dy @ p["weight_hy"]
    h = hs[:, first:].reshape(-1, H)
    grads = {"weight_hy": dy.reshape(-1, dy.shape[-1]).T @ h, "bias_y": dy.sum((0, 1))}
    return loss / B, dhs, grads


def backward(p: dict, cell: str, caches, dhs, d_last=None):
    """BPTT proper: from step T-1 down to 0, d_state_t = (output gradient) + (gradient from t+1).

    dhs (B, T, H) is dL/dh_t from the outputs; d_last an optional gradient on the final state.
    Returns the cell's parameter gradients, dL/d(initial state) and dL/dx (B, T, I)."""
    step_back = check_cell(cell)[1]
    g = {k: np.zeros_like(p[k]) for k in CELL_KEYS}
    T = dhs.shape[1]
    d = d_last if d_last is not None else tuple(np.zeros_like(dhs[:, 0]) for _ in range(check_cell(cell)[3]))
    dxs = [None] * T
    for t in reversed(range(T)):
        d = (d[0] + dhs[:, t],) + tuple(d[1:])           # h_t feeds the output and the next step
        d, dxs[t] = step_back(d, caches[t], p, g)
    return g, d, np.stack(dxs, 1)


def bptt(p: dict, cell: str, x, targets, state=None, first: int = 0):
    """Full BPTT over x (B, T, I) with the loss counted on steps ``first``..T-1.

    Returns (loss, grads, final state); grads holds every key of p, "state" (dL/d initial state)
    and "x" (dL/dx, (B, T, I))."""
    hs, last, caches = forward(p, cell, x, state)
    loss, dhs, grads = output_backward(p, hs, targets, first)
    g, d_state, dx = backward(p, cell, caches, dhs)
    return loss, {**g, **grads, "state": d_state, "x": dx}, last


def tbptt(p: dict, cell: str, x, targets, k1: int, k2: int, state=None, update=None):
    """Truncated BPTT (Williams & Peng 1990): every k1 steps, backpropagate through the last k2.

    k2 is a multiple of k1 (as rnnkit's TrainConfig.tbptt). For the chunk [s, s + k1) the window is
    [max(0, s + k1 - k2), s + k1): it is run again from the state saved at its start, the loss
    counts on the chunk only, and the gradient stops at the window's first step.
    ``update(grads)``, if given, is called after each chunk (e.g. an optimizer step that changes
    p in place), as a trainer would. Returns ([(loss, grads) per chunk], final state).
    With k1 = k2 = T it is one chunk: full BPTT.
    """
    if not (1 <= k1 <= k2 and k2 % k1 == 0):
        raise ValueError(f"truncated BPTT needs 1 <= k1 <= k2 with k2 a multiple of k1, got k1={k1}, k2={k2}")
    B, T, _ = x.shape
    starts = {0: zero_state(cell, B, p["weight_hh"].shape[1], x.dtype) if state is None else state}
    results = []
    for s in range(0, T, k1):
        w = max(0, s + k1 - k2)                                    # the window's first step
        loss, grads, end_state = bptt(p, cell, x[:, w:s + k1], targets[:, w:s + k1], starts[w], first=s - w)
        starts[min(s + k1, T)] = end_state                         # carried, detached, to the next chunk
        results.append((loss, grads))
        if update is not None:
            update(grads)
    return results, starts[T]
