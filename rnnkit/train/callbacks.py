"""Callbacks: hooks into the training loop, with Keras's callbacks and their defaults.

A callback is any object with some of these methods (all optional):
``on_fit_start(trainer)``, ``on_step_end(trainer, loss)``,
``on_evaluate(trainer, row)`` after each history row (once per epoch in fit),
``on_fit_end(trainer)``. Setting ``trainer.stop_reason`` to a string ends
training after the current batch. A callback with ``state_dict()`` /
``load_state_dict(d)`` (JSON-able) is saved in checkpoints and restored on resume.
``Callback`` adapts Keras's hooks (on_epoch_end(epoch, logs), on_train_batch_end...)
so a Keras user's own callback runs unchanged.
"""
from __future__ import annotations

import copy
import csv
import math
import os
import sys
from pathlib import Path



META = ("epoch", "step", "time")


def improved(value: float, best: float | None, mode: str) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value < best if mode == "min" else value > best


def mode_for(metric: str) -> str:
    """'max' for accuracies, AUC, precision, recall and scores (exact match, BLEU, chrF); 'min' for losses and the
    rest (Keras's "auto")."""
    return "max" if any(k in metric for k in ("acc", "auc", "precision", "recall", "exact", "bleu", "chrf")) else "min"


def logs_of(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in META}


MODES = ("auto", "min", "max")


def check_mode(mode: str, monitor: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode_for(monitor) if mode == "auto" else mode


def monitored(row: dict, monitor: str, who: str) -> float:
    if monitor not in row:
        raise ValueError(f"{who} monitors {monitor!r}, which is not among {sorted(logs_of(row))}")
    return row[monitor]


class Callback:
    """Keras's Callback: override on_epoch_end(epoch, logs), on_train_begin(logs), on_train_end(logs),
    on_train_batch_end(batch, logs). ``self.model`` is the model being trained."""

    def on_fit_start(self, trainer):
        self.model, self.trainer = trainer.model, trainer
        self.on_train_begin({})

    def on_step_end(self, trainer, loss):
        self.on_train_batch_end(trainer.batch, {"loss": loss})

    def on_evaluate(self, trainer, row):
        self.on_epoch_end(row["epoch"] - 1, logs_of(row))

    def on_fit_end(self, trainer):
        self.on_train_end({})

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...


class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` evaluations (Keras's
    defaults: val_loss, patience 0): one per epoch, as in Keras, plus one every ``eval_every`` updates where
    that is set. restore_best_weights: put back the best evaluation's weights at the end."""

    def __init__(self, monitor: str = "val_loss", patience: int = 0, *, min_delta: float = 0.0, verbose: int = 0,
                 mode: str | None = "auto", baseline: float | None = None, restore_best_weights: bool = False,
                 start_from_epoch: int = 0):
        # patience second (not min_delta, as in Keras's positional order): a float there is refused below
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 0:
            raise TypeError(f"EarlyStopping's patience must be a whole number of epochs, got {patience!r} "
                            "(pass min_delta= by keyword)")
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(min_delta)
        self.mode = check_mode(mode or "auto", monitor)
        self.baseline, self.restore_best_weights, self.start_from_epoch = baseline, restore_best_weights, start_from_epoch
        self.verbose, self.best, self.wait, self.best_weights = verbose, baseline, 0, None

    def on_evaluate(self, trainer, row: dict) -> None:
        value = monitored(row, self.monitor, "early stopping")
        # the 0-based index of the epoch the evaluation belongs to (Keras's): a row's "epoch" counts the epochs
        # completed, so an end-of-epoch row (the trainer's batch back at 0) belongs to the one before it
        index = row.get("epoch", 1) - (0 if getattr(trainer, "batch", 0) else 1)
        if index < self.start_from_epoch:
            return
        shifted = value + self.min_delta if self.mode == "min" else value - self.min_delta
        if improved(shifted, self.best, self.mode):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = copy.deepcopy(trainer.model.state_dict())
        else:
            self.wait += 1
            if self.wait >= max(self.patience, 1):
                trainer.stop_reason = (f"early stopping: no improvement in {self.monitor} "
                                       f"for {self.wait} evaluations")

    def on_fit_end(self, trainer) -> None:
        if self.restore_best_weights and self.best_weights is not None and trainer.stop_reason:
            trainer.model.load_state_dict(self.best_weights)
            if self.verbose:
                print(f"restored the weights of the best evaluation ({self.monitor} {self.best:.4g})", file=sys.stderr)

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, d: dict) -> None:
        self.best, self.wait = d["best"], d["wait"]


class ModelCheckpoint:
    """Save the model after each epoch (or only when ``monitor`` improves, save_best_only).

    filepath may hold Keras's fields, e.g. "ckpt-{epoch:02d}-{val_loss:.2f}.keras". The file is the
    model's save() format (architecture + weights; save_weights_only: weights only), written atomically.
    """

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto", save_freq="epoch", initial_value_threshold=None):
        if save_freq != "epoch":
            raise ValueError("ModelCheckpoint saves once per epoch in rnnkit (save_freq='epoch')")
        self.filepath, self.monitor, self.verbose = str(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode, self.best = check_mode(mode, monitor), initial_value_threshold
        parent = Path(self.filepath).parent
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"ModelCheckpoint: {parent} is not a directory")

    def on_evaluate(self, trainer, row: dict) -> None:
        if self.save_best_only:
            value = monitored(row, self.monitor, "ModelCheckpoint")
            if not improved(value, self.best, self.mode):
                return
            self.best = value
        path = self.filepath.format(**{**logs_of(row), "epoch": row["epoch"]})
        model = trainer.model
        if self.save_weights_only or not hasattr(model, "save"):
            from .checkpoint import save_checkpoint
            save_checkpoint(path, model.state_dict())
        else:
            model.save(path)
        if self.verbose:
            print(f"epoch {row['epoch']}: saved the model to {path}", file=sys.stderr)


class ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for ``patience`` epochs
    (Keras's defaults: val_loss, factor 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0)."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0):
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau's factor must be in (0, 1), got {factor}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.mode, self.min_delta, self.cooldown, self.min_lr = check_mode(mode, monitor), min_delta, cooldown, min_lr
        self.best, self.wait, self.cooldown_left = None, 0, 0

    def on_evaluate(self, trainer, row: dict) -> None:
        value = monitored(row, self.monitor, "ReduceLROnPlateau")
        if self.cooldown_left:
            self.cooldown_left -= 1
            self.wait = 0
        shifted = value + self.min_delta if self.mode == "min" else value - self.min_delta
        if improved(shifted, self.best, self.mode):
            self.best, self.wait = value, 0
        elif not self.cooldown_left:
            self.wait += 1
            if self.wait >= self.patience:
                for group in trainer.optimizer.param_groups:
                    group["lr"] = max(group["lr"] * self.factor, self.min_lr)
                if self.verbose:
                    print(f"epoch {row['epoch']}: learning rate reduced to "
                          f"{trainer.optimizer.param_groups[0]['lr']:.3g}", file=sys.stderr)
                self.cooldown_left, self.wait = self.cooldown, 0

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait, "cooldown_left": self.cooldown_left}

    def load_state_dict(self, d: dict) -> None:
        self.best, self.wait, self.cooldown_left = d["best"], d["wait"], d["cooldown_left"]


class CSVLogger:
    """One CSV row per epoch: epoch (from 0, as Keras) and every logged value; append=True continues a file."""

    def __init__(self, filename, separator: str = ",", append: bool = False):
        self.filename, self.separator, self.append = str(filename), separator, append
        parent = Path(self.filename).parent
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"CSVLogger: {parent} is not a directory")
        self.keys = None

    def on_fit_start(self, trainer) -> None:
        Path(self.filename).parent.mkdir(parents=True, exist_ok=True)
        self.keys = None
        if not self.append or not os.path.exists(self.filename):
            open(self.filename, "w").close()

    def on_evaluate(self, trainer, row: dict) -> None:
        logs = logs_of(row)
        new_file = os.path.getsize(self.filename) == 0
        if self.keys is None:
            self.keys = ["epoch"] + sorted(logs)
        with open(self.filename, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if new_file:
                writer.writerow(self.keys)
            writer.writerow([row["epoch"] - 1] + [logs.get(k, "NA") for k in self.keys[1:]])


class LearningRateScheduler:
    """Set the learning rate at the start of each epoch to schedule(epoch, lr) (Keras's callback)."""

    def __init__(self, schedule, verbose: int = 0):
        self.schedule, self.verbose = schedule, verbose

    def _set(self, trainer, epoch: int) -> None:
        lr = float(self.schedule(epoch, trainer.optimizer.param_groups[0]["lr"]))
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr

    def on_fit_start(self, trainer) -> None:
        self._set(trainer, trainer.epoch)

    def on_evaluate(self, trainer, row: dict) -> None:
        self._set(trainer, row["epoch"])


class TerminateOnNaN:
    """Stop when a batch's loss is NaN or infinite (the trainer also refuses a non-finite loss)."""

    def on_step_end(self, trainer, loss: float) -> None:
        if not math.isfinite(loss):
            trainer.stop_reason = f"the loss is {loss}"


