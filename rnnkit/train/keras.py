"""The Keras workflow on top of Trainer: losses and metrics by Keras's names, fit / evaluate / predict.

Used by rnnkit.Sequential; works for any module mapping one input tensor to
one output tensor. Losses take the model's outputs as Keras does (probabilities
after a sigmoid / softmax, not logits).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .batching import TensorBatches, split
from .config import StepOutput, TrainConfig
from .history import History
from .optim import make_optimizer
from .trainer import Trainer

EPS = 1e-7   # Keras's epsilon: probabilities are clipped to [EPS, 1 - EPS] before the log


def as_target(y: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """y in pred's shape and dtype when they hold as many numbers ((N,) vs (N, 1))."""
    y = y.to(pred.dtype)
    return y.reshape(pred.shape) if y.numel() == pred.numel() else y


def binary_crossentropy(pred, y):
    return F.binary_cross_entropy(pred.clamp(EPS, 1 - EPS), as_target(y, pred))


def categorical_crossentropy(pred, y):   # y one-hot (or soft), pred (..., C)
    return -(as_target(y, pred) * pred.clamp(EPS, 1.0).log()).sum(-1).mean()


def sparse_categorical_crossentropy(pred, y):   # y class ids (...), pred (..., C)
    return F.nll_loss(pred.clamp(EPS, 1.0).log().flatten(0, -2), y.long().flatten())


def mse(pred, y):
    return F.mse_loss(pred, as_target(y, pred))


def mae(pred, y):
    return F.l1_loss(pred, as_target(y, pred))


LOSSES = {"binary_crossentropy": binary_crossentropy, "categorical_crossentropy": categorical_crossentropy,
          "sparse_categorical_crossentropy": sparse_categorical_crossentropy, "mse": mse, "mae": mae,
          "mean_squared_error": mse, "mean_absolute_error": mae}


@torch.no_grad()
def accuracy(loss_name: str, pred: torch.Tensor, y: torch.Tensor) -> float:
    """Keras picks the accuracy by the loss: class ids, one-hot, or a 0.5 threshold."""
    if loss_name == "sparse_categorical_crossentropy":
        hits = pred.argmax(-1) == y.reshape(pred.shape[:-1])
    elif loss_name == "categorical_crossentropy":
        hits = pred.argmax(-1) == y.argmax(-1)
    else:
        hits = (pred > 0.5) == (as_target(y, pred) > 0.5)
    return hits.float().mean().item()


def get_loss(loss):
    """A loss by Keras name, or a callable loss(y_true, y_pred) as in Keras."""
    if callable(loss):
        return lambda pred, y: loss(y, pred)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)} or a callable")
    return LOSSES[loss]


def to_tensor(a, device=None) -> torch.Tensor:
    """NumPy arrays, lists or tensors -> a tensor: floats as torch's default dtype, ints as int64."""
    t = torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else torch.as_tensor(a)
    if t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    elif t.dtype == torch.bool:
        t = t.float()
    else:
        t = t.long()
    return t.to(device) if device is not None else t


def device_of(model) -> torch.device | None:
    p = next(model.parameters(), None)
    return None if p is None else p.device


def build(model, x: torch.Tensor) -> None:
    """Run one sample through the model so lazily sized layers create their weights."""
    was = model.training
    model.eval()
    with torch.no_grad():
        model(x[:1])
    model.train(was)


class KerasHistory:
    """Keras's History: ``history`` maps each metric (loss, acc, val_loss...) to its per-epoch values."""

    def __init__(self, rows: History, params: dict):
        keep = [k for k in rows.keys() if k not in ("epoch", "step", "time", "lr")]
        self.history = {k: rows.column(k) for k in keep}
        self.epoch = list(range(len(rows.rows)))
        self.params = params


class Compiled:
    """What ``compile`` fixed: the optimizer (made at the first fit, once the weights exist), loss, metrics."""

    def __init__(self, optimizer="rmsprop", loss=None, metrics=None):
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='binary_crossentropy'")
        self.loss_name = loss if isinstance(loss, str) else "custom"
        self.loss = get_loss(loss)
        self.metrics = list(metrics or [])
        for m in self.metrics:
            if m not in ("acc", "accuracy"):
                raise ValueError(f"unknown metric {m!r}; expected 'acc' or 'accuracy'")
        if isinstance(optimizer, str):
            make_optimizer(optimizer, [torch.zeros(1, requires_grad=True)])   # check the name now
        self.optimizer_spec, self.optimizer = optimizer, None

    def make_optimizer(self, model) -> torch.optim.Optimizer:
        if self.optimizer is None:
            spec = self.optimizer_spec
            if isinstance(spec, torch.optim.Optimizer):
                self.optimizer = spec
            elif isinstance(spec, str):
                self.optimizer = make_optimizer(spec, model.parameters())
            else:
                self.optimizer = spec(model.parameters())
        return self.optimizer

    def step_fn(self, model):
        def step(batch, state):
            x, y = batch
            pred = model(x)
            loss = self.loss(pred, y)
            metrics = {m: accuracy(self.loss_name, pred, y) for m in self.metrics}
            return StepOutput(loss, None, n=len(x), metrics=metrics)
        return step


def fit(model, compiled: Compiled, x, y, *, epochs=1, batch_size=32, validation_split=0.0, validation_data=None,
        verbose=1, callbacks=(), shuffle=True, **train_options) -> KerasHistory:
    """Keras's fit on Trainer. ``train_options`` go to TrainConfig (e.g. clip_norm, max_minutes)."""
    device = device_of(model)
    x, y = to_tensor(x, device), to_tensor(y, device)
    build(model, x)
    if validation_data is None and validation_split:
        (x, y), validation_data = split((x, y), validation_split)
    val = None
    if validation_data is not None:
        vx, vy = (to_tensor(a, device_of(model)) for a in validation_data[:2])
        val = TensorBatches(vx, vy, batch_size=batch_size)
    config = TrainConfig(epochs=epochs, verbose=verbose, seed=None, **train_options)
    trainer = Trainer(model, compiled.step_fn(model), config, optimizer=compiled.make_optimizer(model),
                      callbacks=callbacks)
    rows = trainer.fit(TensorBatches(x, y, batch_size=batch_size, shuffle=shuffle), val)
    return KerasHistory(rows, {"epochs": epochs, "batch_size": batch_size, "samples": len(x)})


def evaluate(model, compiled: Compiled, x, y, *, batch_size=32, verbose=0):
    """The loss, or [loss, metric...] when compiled with metrics (Keras's return)."""
    device = device_of(model)
    x, y = to_tensor(x, device), to_tensor(y, device)
    build(model, x)
    trainer = Trainer(model, compiled.step_fn(model), TrainConfig(verbose=verbose, seed=None),
                      optimizer=compiled.make_optimizer(model))
    result = trainer.evaluate(TensorBatches(x, y, batch_size=batch_size))
    return result["loss"] if not compiled.metrics else [result["loss"]] + [result[m] for m in compiled.metrics]


@torch.no_grad()
def predict(model, x, *, batch_size=32):
    """Outputs for x in eval mode, batch by batch; a NumPy array for NumPy input, else a tensor."""
    t = to_tensor(x, device_of(model))
    build(model, t)
    was = model.training
    model.eval()
    try:
        out = torch.cat([model(t[i:i + batch_size]) for i in range(0, len(t), batch_size)])
    finally:
        model.train(was)
    return out.cpu().numpy() if isinstance(x, np.ndarray) else out
