"""Callbacks: hooks into the training loop. Early stopping is one.

A callback is any object with some of these methods (all optional):
``on_fit_start(trainer)``, ``on_step_end(trainer, loss)``,
``on_evaluate(trainer, row)`` after each history row, ``on_fit_end(trainer)``.
Setting ``trainer.stop_reason`` to a string ends training after the current
batch. A callback with ``state_dict()`` / ``load_state_dict(d)`` (JSON-able)
is saved in checkpoints and restored on resume.
"""
from __future__ import annotations

import math


def improved(value: float, best: float | None, mode: str) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value < best if mode == "min" else value > best


def mode_for(metric: str) -> str:
    """'max' for accuracies and scores (exact match, BLEU, chrF), 'min' for losses and the rest."""
    return "max" if any(k in metric for k in ("acc", "exact", "bleu", "chrf")) else "min"


class EarlyStopping:
    """Stop when ``monitor`` has not improved for ``patience`` evaluations (Keras's callback)."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, mode: str | None = None,
                 min_delta: float = 0.0):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = mode or mode_for(monitor)
        self.best: float | None = None
        self.wait = 0

    def on_evaluate(self, trainer, row: dict) -> None:
        if self.monitor not in row:
            raise ValueError(f"early stopping monitors {self.monitor!r}, which is not among {sorted(row)}")
        value = row[self.monitor]
        shifted = value + self.min_delta if self.mode == "min" else value - self.min_delta
        if improved(shifted, self.best, self.mode):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop_reason = (f"early stopping: no improvement in {self.monitor} "
                                       f"for {self.patience} evaluations")

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, d: dict) -> None:
        self.best, self.wait = d["best"], d["wait"]
