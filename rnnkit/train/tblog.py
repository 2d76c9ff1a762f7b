"""TensorBoard experiment logs: a trainer callback writing through ``torch.utils.tensorboard``.

Tags (the x axis is the update count, ``trainer.global_step``):

* ``train/loss``       the loss of every update
* ``train/grad_norm``  the global L2 norm of the gradients of every update, after clipping
* ``epoch/<name>``     every number of each history row: training means (loss, metrics,
                       perplexity, bpc), ``val_*``, and ``lr``
* ``history`` (image)  the history plot at the end of training (needs matplotlib)
* ``text`` samples     through ``logger.text(tag, text)``, e.g. a generated sample

TensorBoard is an optional extra: ``pip install "rnnkit[tensorboard]"`` (or ``tensorboard``).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch

from ..errors import UserError

INSTALL = 'TensorBoard logs need the tensorboard package: pip install "rnnkit[tensorboard]"'
SKIP = ("epoch", "step", "time")   # position columns of a history row, not measurements


def require_tensorboard() -> None:
    """Raise UserError (one line: what to install) if torch.utils.tensorboard cannot be used."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise UserError(INSTALL) from None


def check_log_dir(log_dir: str) -> None:
    """The log directory exists or can be made, and is a directory (checked before training starts)."""
    path = Path(log_dir)
    if path.exists() and not path.is_dir():
        raise UserError(f"--tensorboard {log_dir!r} is a file, not a directory")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if not path.exists() and (parent is None or not parent.is_dir()):
        raise UserError(f"--tensorboard {log_dir!r}: cannot create this directory")


def grad_norm(model: torch.nn.Module) -> float:
    norms = [p.grad.detach().float().norm() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


class TensorBoardLogger:
    """Trainer callback: scalars per update and per evaluation, the history plot at the end."""

    def __init__(self, log_dir: str):
        require_tensorboard()
        self.log_dir, self.writer, self.step = str(log_dir), None, 0

    def open(self):
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(self.log_dir)
        return self.writer

    def on_fit_start(self, trainer) -> None:
        self.open()

    def on_step_end(self, trainer, loss: float) -> None:
        self.step = trainer.global_step
        w = self.open()
        w.add_scalar("train/loss", loss, self.step)
        w.add_scalar("train/grad_norm", grad_norm(trainer.model), self.step)

    def on_evaluate(self, trainer, row: dict) -> None:
        w = self.open()
        for name, value in row.items():
            if name not in SKIP and isinstance(value, (int, float)) and math.isfinite(value):
                w.add_scalar(f"epoch/{name}", value, row["step"])
        w.flush()

    def on_fit_end(self, trainer) -> None:
        w = self.open()
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            warnings.warn("matplotlib is not installed: no history plot in TensorBoard (pip install 'rnnkit[plot]')")
        else:
            path = Path(self.log_dir) / "history.png"
            if trainer.history.rows and trainer.history.plot(path):
                w.add_image("history", plt.imread(path)[..., :3], self.step, dataformats="HWC")
        w.flush()

    def text(self, tag: str, text: str) -> None:
        """A text entry (e.g. a generated sample) at the current update."""
        self.open().add_text(tag, text, self.step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
