"""Two optimizers in a few lines each (NumPy); both update a dict of parameters in place."""
from __future__ import annotations

import numpy as np


class Adagrad:
    """Duchi et al. 2011: each parameter's step shrinks with the sum of its squared gradients.

        G ← G + g²        θ ← θ - lr · g / (√G + ε)
    """

    def __init__(self, params: dict, lr: float = 0.1, eps: float = 1e-8):
        self.params, self.lr, self.eps = params, lr, eps
        self.sum_sq = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: dict) -> None:
        for k, theta in self.params.items():
            self.sum_sq[k] += grads[k] ** 2
            theta -= self.lr * grads[k] / (np.sqrt(self.sum_sq[k]) + self.eps)


class Adam:
    """Kingma & Ba 2015: moving averages of the gradient and its square, corrected for their zero start.

        m ← β1 m + (1-β1) g     v ← β2 v + (1-β2) g²     m̂ = m / (1-β1^t)   v̂ = v / (1-β2^t)
        θ ← θ - lr · m̂ / (√v̂ + ε)
    """

    def __init__(self, params: dict, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, (self.b1, self.b2), self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict) -> None:
        self.t += 1
        for k, theta in self.params.items():
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * grads[k]
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * grads[k] ** 2
            m_hat, v_hat = self.m[k] / (1 - self.b1 ** self.t), self.v[k] / (1 - self.b2 ** self.t)
            theta -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def clip_global_norm(grads: dict, max_norm: float, keys) -> float:
    """Scale the gradients of ``keys`` so their joint norm is at most max_norm (Pascanu et al. 2013);
    returns the norm before clipping."""
    norm = float(np.sqrt(sum((grads[k] ** 2).sum() for k in keys)))
    if norm > max_norm:
        for k in keys:
            grads[k] = grads[k] * (max_norm / norm)
    return norm
