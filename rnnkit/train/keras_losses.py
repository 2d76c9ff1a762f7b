"""Keras's losses, per sample (or per step), and Keras's weighted reduction.

A loss here maps (pred, y) to one value per sample, or per (sample, step) for
sequence outputs: Keras averages over the last axis (the classes or features)
first. ``reduce`` then weights them as Keras's "sum_over_batch_size" does:
sum(loss * weight) / count, where weight combines sample_weight, class_weight
and the mask, and count is the number of unmasked values. Losses take the
model's outputs as Keras does: probabilities after a sigmoid / softmax unless
``from_logits=True``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-7   # Keras's epsilon: probabilities are clipped to [EPS, 1 - EPS] before the log


def as_target(y: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """y in pred's shape and dtype when they hold as many numbers ((N,) vs (N, 1))."""
    y = y.to(pred.dtype)
    return y.reshape(pred.shape) if y.numel() == pred.numel() else y


def last_axis_mean(v: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    return v.mean(-1) if pred.dim() > 1 else v


class Loss:
    """A Keras loss: ``loss(pred, y)`` -> per-sample (per-step) values; ``name`` for saving."""

    def __init__(self, name: str, from_logits: bool = False, **options):
        if name not in PER_SAMPLE:
            raise ValueError(f"unknown loss {name!r}; expected one of {sorted(set(PER_SAMPLE) | set(ALIASES))} "
                             "or a callable loss(y_true, y_pred)")
        self.name, self.from_logits, self.options = name, from_logits, options

    def __call__(self, pred, y):
        return PER_SAMPLE[self.name](pred, y, self.from_logits, **self.options)

    def get_config(self) -> dict:
        return {"name": self.name, "from_logits": self.from_logits, **self.options}


def binary_crossentropy(pred, y, logits=False):
    y = as_target(y, pred)
    if logits:
        return last_axis_mean(F.binary_cross_entropy_with_logits(pred, y, reduction="none"), pred)
    return last_axis_mean(F.binary_cross_entropy(pred.clamp(EPS, 1 - EPS), y, reduction="none"), pred)


def categorical_crossentropy(pred, y, logits=False):   # y one-hot (or soft), pred (..., C)
    logp = pred.log_softmax(-1) if logits else pred.clamp(EPS, 1.0).log()
    return -(as_target(y, pred) * logp).sum(-1)


def sparse_categorical_crossentropy(pred, y, logits=False):   # y class ids (...), pred (..., C)
    logp = pred.log_softmax(-1) if logits else pred.clamp(EPS, 1.0).log()
    y = y.reshape(pred.shape[:-1]).long()
    return -logp.gather(-1, y[..., None])[..., 0]


def mse(pred, y, logits=False):
    return last_axis_mean((pred - as_target(y, pred)) ** 2, pred)


def mae(pred, y, logits=False):
    return last_axis_mean((pred - as_target(y, pred)).abs(), pred)


def huber(pred, y, logits=False, delta=1.0):
    return last_axis_mean(F.huber_loss(pred, as_target(y, pred), reduction="none", delta=delta), pred)


PER_SAMPLE = {"binary_crossentropy": binary_crossentropy, "categorical_crossentropy": categorical_crossentropy,
              "sparse_categorical_crossentropy": sparse_categorical_crossentropy, "mse": mse, "mae": mae,
              "huber": huber}
ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "huber_loss": "huber"}


def get_loss(loss):
    """(per-sample loss function, name) from a Keras name, a Loss, or a callable loss(y_true, y_pred)."""
    if isinstance(loss, Loss):
        return loss, loss.name
    if isinstance(loss, str):
        loss = ALIASES.get(loss, loss)
        return Loss(loss), loss
    if callable(loss):
        return (lambda pred, y: loss(y, pred)), "custom"
    raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(set(PER_SAMPLE) | set(ALIASES))} "
                     "or a callable loss(y_true, y_pred)")


def reduce(values: torch.Tensor, weight: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
    """Keras's sum_over_batch_size: sum(values * weight) over the unmasked values / their number.

    values (B,) or (B, T); weight broadcastable ((B,) per sample, (B, T) per step); mask (B, T) bool.
    A scalar (a custom loss that reduced itself) is returned as it is.
    """
    if values.dim() == 0:
        if weight is not None or mask is not None:
            raise ValueError("a custom loss that returns one number cannot take sample_weight, class_weight or a "
                             "mask: return one value per sample (and step)")
        return values
    w = torch.ones_like(values) if weight is None else align(weight, values).to(values.dtype)
    if mask is not None:
        m = align(mask, values)
        # select, don't multiply: a NaN at a masked step must not reach the sum (nor its gradient)
        return torch.where(m, values * w, torch.zeros((), dtype=values.dtype)).sum() / m.sum().clamp(min=1)
    return (values * w).sum() / values.numel()


def align(w: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """(B,) or (B, T) weights to values' shape (a per-sample weight covers every step)."""
    if w.shape == values.shape:
        return w
    if w.dim() > values.dim() and w.numel() == values.numel():
        return w.reshape(values.shape)
    if w.shape[0] == values.shape[0]:
        return w.reshape(w.shape + (1,) * (values.dim() - w.dim())).expand_as(values)
    raise ValueError(f"weights of shape {tuple(w.shape)} do not fit per-sample losses of shape {tuple(values.shape)}")
