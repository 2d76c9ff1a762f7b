"""The Keras workflow on top of Trainer: compile / fit / evaluate / predict with Keras's defaults.

Used by rnnkit.Sequential; works for any module mapping one input tensor to one
output tensor (a Sequential also hands over its output mask). Losses and their
weighting are in keras_losses.py, optimizers in keras_optim.py, metrics in
rnnkit.metrics, callbacks in callbacks.py. Defaults are Keras's: batch_size 32,
shuffle on, no gradient clipping (pass clip_norm=... or an optimizer's clipnorm).
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch

from .. import backends, metrics as M
from ..errors import UserError
from .batching import TensorBatches, split
from .config import StepOutput, TrainConfig
from .keras_losses import Loss, get_loss, reduce
from .keras_optim import KerasOptimizer, make as make_optimizer
from .trainer import Trainer

NO_EFFECT = ("run_eagerly", "steps_per_execution", "auto_scale_loss")   # speed options in Keras


def benchmarked(run):
    """fit/evaluate/predict in benchmark mode (rnnkit.backends: the fastest backend per shape, measured at
    its first batch) unless compiled with ``jit_compile=False``: Keras's speed switch, "auto" by default."""
    @functools.wraps(run)
    def wrapper(model, *args, **kwargs):
        compiled = args[0] if args and isinstance(args[0], Compiled) else getattr(model, "compiled", None)
        on = getattr(compiled, "jit_compile", "auto") is not False
        with backends.flags(benchmark=True) if on else contextlib.nullcontext():
            return run(model, *args, **kwargs)
    return wrapper


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


def forward(model, x):
    """(pred, mask): the model's output and its output mask (None for a model that has none)."""
    if hasattr(model, "call_with_mask"):
        return model.call_with_mask(x)
    return model(x), None


@torch.no_grad()
def build(model, x: torch.Tensor) -> torch.Tensor:
    """Run one sample through the model so lazily sized layers create their weights; its output."""
    was = model.training
    model.eval()
    try:
        return forward(model, x[:1])[0]
    finally:
        model.train(was)


class KerasHistory:
    """Keras's History: ``history`` maps loss, metrics, then val_loss, val_ metrics to per-epoch values."""

    def __init__(self, rows, params: dict):
        keys = [k for k in rows.keys() if k not in ("epoch", "step", "time", "lr")]
        keys = [k for k in keys if not k.startswith("val_")] + [k for k in keys if k.startswith("val_")]
        self.history = {k: rows.column(k) for k in keys}
        self.epoch = list(range(len(rows.rows)))
        self.params = params


class Compiled:
    """What ``compile`` fixed: the optimizer recipe (made at the first fit, once the weights exist), the loss,
    the metrics (one set for training, one for validation)."""

    def __init__(self, optimizer="rmsprop", loss=None, metrics=None, *, loss_weights=None, weighted_metrics=None,
                 **kwargs):
        for k in kwargs:
            if k not in NO_EFFECT + ("jit_compile",):
                raise TypeError(f"compile got an unknown keyword argument {k!r}")
        self.jit_compile = kwargs.get("jit_compile", "auto")
        if self.jit_compile not in ("auto", True, False):
            raise ValueError(f"jit_compile must be 'auto', True or False, got {self.jit_compile!r}")
        if loss_weights is not None or weighted_metrics is not None:
            raise ValueError("loss_weights and weighted_metrics are for Keras's multi-output models, which "
                             "rnnkit's Sequential is not: weight samples with fit(sample_weight=...)")
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='binary_crossentropy'")
        self.loss_spec, self.metric_specs = loss, list(metrics or [])
        self.loss, self.loss_name = get_loss(loss)
        self.train_metrics = [self.new_metric(m) for m in self.metric_specs]
        self.val_metrics = [self.new_metric(m) for m in self.metric_specs]
        if isinstance(optimizer, str):
            optimizer = KerasOptimizer(optimizer.lower())   # checks the name now
        self.optimizer_spec, self.optimizer = optimizer, None

    def new_metric(self, spec) -> M.Metric:
        m = M.get(spec)
        if isinstance(spec, M.Metric):   # the same object cannot count training and validation at once
            m = M.Metric(spec.kind, spec.name, threshold=spec.threshold, k=spec.k, curve=spec.curve)
        m.loss_name = self.loss_name
        return m

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.train_metrics]

    def get_config(self) -> dict | None:
        """compile's arguments as JSON (for model.save), or None when one of them has no JSON form."""
        opt = self.optimizer_spec
        opt = opt.get_config() if isinstance(opt, KerasOptimizer) else None
        loss = self.loss_spec if isinstance(self.loss_spec, str) else (
            self.loss_spec.get_config() if isinstance(self.loss_spec, Loss) else None)
        if opt is None or loss is None or not all(isinstance(m, str) for m in self.metric_specs):
            return None
        return {"optimizer": opt, "loss": loss, "metrics": list(self.metric_specs)}

    def make_optimizer(self, model) -> torch.optim.Optimizer:
        if self.optimizer is None:
            self.optimizer = make_optimizer(self.optimizer_spec, [p for p in model.parameters() if p.requires_grad])
        return self.optimizer

    def step_fn(self, model):
        def step(batch, state):
            x, y, w = batch if len(batch) == 3 else (*batch, None)
            pred, mask = forward(model, x)
            loss = reduce(self.loss(pred, y), w, mask)
            group = self.train_metrics if model.training else self.val_metrics
            for m in group:
                m.update(pred.detach(), y, mask)
            return StepOutput(loss, None, n=len(x))
        return step

    def results(self, group: list[M.Metric]) -> dict[str, float]:
        out = {m.name: m.result() for m in group}
        for m in group:
            m.reset()
        return out


class EpochMetrics:
    """Writes the epoch's metrics (accumulated over all its batches) into each history row."""

    def __init__(self, compiled: Compiled):
        self.compiled = compiled

    def on_fit_start(self, trainer) -> None:
        self.compiled.results(self.compiled.train_metrics + self.compiled.val_metrics)

    def on_evaluate(self, trainer, row: dict) -> None:
        row.update(self.compiled.results(self.compiled.train_metrics))
        if any(m.seen for m in self.compiled.val_metrics):
            row.update({f"val_{k}": v for k, v in self.compiled.results(self.compiled.val_metrics).items()})


def check_labels(loss_name: str, y: torch.Tensor, pred: torch.Tensor) -> None:
    """UserError (a ValueError) naming the problem: NaN labels, class ids out of range, wrong one-hot width."""
    if y.is_floating_point() and torch.isnan(y).any():
        i = int(torch.isnan(y.reshape(len(y), -1)).any(1).nonzero()[0])
        raise UserError(f"the labels contain NaN (first in sample {i}); drop or fill those samples before fit")
    if y.numel() == 0:
        raise UserError("no labels: y is empty")
    classes = pred.shape[-1] if pred.dim() > 1 else 1
    if loss_name == "sparse_categorical_crossentropy":
        if y.is_floating_point() and (y != y.round()).any():
            raise UserError(f"sparse_categorical_crossentropy takes integer class ids, got labels such as "
                            f"{float(y[y != y.round()][0]):g}")
        if y.min() < 0 or y.max() >= classes:
            raise UserError(f"class ids must lie in [0, {classes}) for a model with {classes} outputs, got min "
                            f"{int(y.min())} and max {int(y.max())}")
    elif loss_name == "binary_crossentropy":
        if y.min() < 0 or y.max() > 1:
            raise UserError(f"binary_crossentropy takes labels in [0, 1], got min {float(y.min()):g} and max "
                            f"{float(y.max()):g}")
    elif loss_name == "categorical_crossentropy":
        if y.shape[-1] != classes:
            raise UserError(f"categorical_crossentropy takes one-hot labels with {classes} columns (the model's "
                            f"outputs), got shape {tuple(y.shape)}; for class ids use sparse_categorical_crossentropy")
        if y.min() < 0:
            raise UserError(f"categorical_crossentropy takes one-hot (or probability) labels, got {float(y.min()):g}")


def weights_for(y: torch.Tensor, sample_weight, class_weight) -> torch.Tensor | None:
    """One weight per sample (or step): sample_weight times class_weight[label], as Keras."""
    w = None if sample_weight is None else to_tensor(sample_weight, y.device).to(torch.get_default_dtype())
    if w is not None and (w.shape[0] != y.shape[0] or torch.isnan(w).any() or (w < 0).any()):
        raise UserError(f"sample_weight must hold one non-negative number per sample ({y.shape[0]}), got shape "
                        f"{tuple(w.shape)}" + (" with NaN or negative values" if w.shape[0] == y.shape[0] else ""))
    if class_weight:
        labels = y.argmax(-1) if y.is_floating_point() and y.dim() > 1 and y.shape[-1] > 1 else y.round().long()
        labels = labels.reshape(y.shape[0], -1).squeeze(1) if labels.dim() > 1 and labels.shape[-1] == 1 else labels
        table = torch.ones(int(labels.max()) + 1)
        for k, v in class_weight.items():
            if int(k) < len(table):
                table[int(k)] = float(v)
        cw = table[labels.long().cpu()].to(y.device)
        w = cw if w is None else w.reshape(w.shape + (1,) * (cw.dim() - w.dim())) * cw
    return w


class GeneratorBatches:
    """``steps`` batches per epoch from one Python generator (or any iterator) of (x, y[, w]) tuples."""

    def __init__(self, source, steps: int | None, device):
        self.iterator, self.steps, self.device = iter(source), steps, device
        if steps is None and not hasattr(source, "__len__"):
            raise ValueError("fit on a generator needs steps_per_epoch (and validation_steps for validation data)")
        self.steps = steps or len(source)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            batch = next(self.iterator)
            yield tuple(to_tensor(a, self.device) for a in batch)


def batches(x, y, w, batch_size, shuffle, device, steps=None):
    if y is None and not isinstance(x, (np.ndarray, torch.Tensor, list)):
        return GeneratorBatches(x, steps, device), None
    tensors = (x, y) if w is None else (x, y, w)
    return TensorBatches(*tensors, batch_size=batch_size, shuffle=shuffle), tensors


@benchmarked
def fit(model, compiled: Compiled, x, y=None, *, batch_size=None, epochs=1, verbose=1, callbacks=(),
        validation_split=0.0, validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
        initial_epoch=0, steps_per_epoch=None, validation_steps=None, **train_options) -> KerasHistory:
    """Keras's fit on Trainer. ``train_options`` go to TrainConfig (e.g. clip_norm, max_minutes); the optimizer
    and its settings are compile()'s, so TrainConfig's optimizer fields are refused here, not ignored."""
    optimizer_fields = sorted(set(train_options) & {"optimizer", "lr", "weight_decay", "momentum", "beta_2"})
    if optimizer_fields:
        raise UserError(f"fit() does not take {', '.join(optimizer_fields)}: the optimizer is compile()'s; pass "
                        "e.g. compile(optimizer=optimizers.Adam(learning_rate=1e-3, beta_2=0.99), ...)")
    batch_size = 32 if batch_size is None else batch_size
    if verbose == "auto":
        verbose = 1
    device = device_of(model)
    generator = y is None
    if generator:
        if validation_split:
            raise ValueError("validation_split needs arrays; give generator data validation_data=")
        data, _ = batches(x, None, None, batch_size, shuffle, device, steps_per_epoch)
        first = next(iter(GeneratorBatches(iter([next(data.iterator)]), 1, device)))
        data.iterator = _chain(first, data.iterator)
        check_labels(compiled.loss_name, first[1], build(model, first[0]))
    else:
        x, y = to_tensor(x, device), to_tensor(y, device)
        if len(x) != len(y):
            raise UserError(f"x and y hold different numbers of samples: {len(x)} and {len(y)}")
        check_labels(compiled.loss_name, y, build(model, x))
        w = weights_for(y, sample_weight, class_weight)
        tensors = (x, y) if w is None else (x, y, w)
        if validation_data is None and validation_split:
            tensors, validation_data = split(tensors, validation_split)
        data = TensorBatches(*tensors, batch_size=batch_size, shuffle=shuffle)
    val = None
    if validation_data is not None:
        if isinstance(validation_data, (tuple, list)):
            parts = [to_tensor(a, device) for a in validation_data if a is not None]
            check_labels(compiled.loss_name, parts[1], build(model, parts[0]))
            val = TensorBatches(*parts, batch_size=batch_size)
        else:
            val = GeneratorBatches(validation_data, validation_steps, device)
    options = {"clip_norm": None, **train_options}   # Keras clips nothing unless asked
    config = TrainConfig(epochs=epochs - initial_epoch, verbose=verbose, seed=None, **options)
    trainer = Trainer(model, compiled.step_fn(model), config, optimizer=compiled.make_optimizer(model),
                      callbacks=[EpochMetrics(compiled), *callbacks])
    rows = trainer.fit(data, val)
    model.stop_training = trainer.stop_reason is not None
    return KerasHistory(rows, {"epochs": epochs, "batch_size": batch_size, "steps": len(data)})


def _chain(first, rest):
    yield first
    for item in rest:   # not "yield from": closing this wrapper must not close the user's generator
        yield item


@benchmarked
def evaluate(model, compiled: Compiled, x, y=None, *, batch_size=None, verbose=0, sample_weight=None,
             return_dict=False, steps=None):
    """The loss, or [loss, metric...] when compiled with metrics (Keras's return); a dict with return_dict."""
    device = device_of(model)
    if y is None:
        data = GeneratorBatches(x, steps, device)
    else:
        x, y = to_tensor(x, device), to_tensor(y, device)
        check_labels(compiled.loss_name, y, build(model, x))
        w = weights_for(y, sample_weight, None)
        data = TensorBatches(*((x, y) if w is None else (x, y, w)), batch_size=32 if batch_size is None else batch_size)
    trainer = Trainer(model, compiled.step_fn(model), TrainConfig(verbose=verbose, seed=None, clip_norm=None),
                      optimizer=compiled.make_optimizer(model))
    compiled.results(compiled.val_metrics)
    result = {"loss": trainer.evaluate(data)["loss"], **compiled.results(compiled.val_metrics)}
    if return_dict:
        return result
    return result["loss"] if not compiled.metric_specs else list(result.values())


@benchmarked
@torch.no_grad()
def predict(model, x, *, batch_size=None):
    """Outputs for x in eval mode, batch by batch; a NumPy array for NumPy input, else a tensor."""
    batch_size = 32 if batch_size is None else batch_size
    t = to_tensor(x, device_of(model))
    build(model, t)
    was = model.training
    model.eval()
    try:
        out = torch.cat([model(t[i:i + batch_size]) for i in range(0, len(t), batch_size)])
    finally:
        model.train(was)
    return out.cpu().numpy() if isinstance(x, np.ndarray) else out
