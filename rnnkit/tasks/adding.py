"""The adding problem (Hochreiter & Schmidhuber 1997): read a sequence, output the sum of two marked numbers.

Each step carries a value in [0, 1) and a marker bit; exactly two steps are
marked, one in each half of the sequence. The target is the sum of the two
marked values. Predicting the mean (1.0) scores MSE 1/6 ≈ 0.167, the baseline
to beat; doing better needs memory across the sequence. Data are generated.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..models.regressor import CELLS, RegressorConfig, SequenceRegressor
from ..train import StepOutput, TensorBatches, Trainer, TrainConfig, load_checkpoint, seed_everything
from ..train.optim import OPTIMIZERS, SCHEDULES
from .options import option, resume_path

BASELINE_MSE = 1 / 6   # Var(u1 + u2) for two independent U(0, 1) values


@dataclass
class Options:
    seq_len: int = option(50, "time steps per sequence", "data")
    train_size: int = option(10000, "training sequences (generated)", "data")
    val_size: int = option(1000, "validation sequences (generated)", "data")
    cell: str = option("lstm", "recurrent cell", "model", choices=tuple(sorted(CELLS)))
    hidden_size: int = option(64, "units per layer", "model")
    num_layers: int = option(1, "stacked layers", "model")
    epochs: int = option(10, "passes over the training data", "training")
    minutes: float | None = option(None, "wall-clock budget; stop, evaluate and save when it is spent", "training")
    batch_size: int = option(50, "sequences per batch", "training")
    optimizer: str = option("adam", "optimizer", "training", choices=tuple(sorted(OPTIMIZERS)))
    lr: float = option(0.01, "learning rate", "training")
    schedule: str = option("none", "learning-rate schedule", "training", choices=SCHEDULES)
    clip_norm: float = option(1.0, "clip the global gradient norm to this (0: off)", "training")
    max_steps: int | None = option(None, "stop after this many updates", "training")
    seed: int = option(0, "random seed for data, weights and order", "training")
    out: str = option("runs/adding", "directory for checkpoints and history", "output")
    resume: bool = option(False, "continue from OUT/last.safetensors", "output")
    tensorboard: str | None = option(None, "also write TensorBoard logs (losses, metrics, learning rate, gradient "
                                           "norm, history plot) to this directory", "output", metavar="DIR")
    quiet: bool = option(False, "no progress bar, only the final result", "output")

    def __post_init__(self):
        for name in ("seq_len", "train_size", "val_size", "hidden_size", "num_layers", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"option {name} must be a positive integer, got {getattr(self, name)}")
        if self.seq_len < 2:
            raise UserError(f"option seq_len must be at least 2 (one marker per half), got {self.seq_len}")
        if self.lr <= 0 or self.clip_norm < 0 or (self.minutes is not None and self.minutes <= 0):
            raise UserError("options lr and minutes must be positive and clip_norm not negative")


def adding_data(n: int, seq_len: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x (n, seq_len, 2): value and marker channels; y (n,): the sum of the two marked values."""
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, seq_len, generator=g)
    half = seq_len // 2
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, seq_len, (n,), generator=g)
    markers = torch.zeros(n, seq_len)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    return torch.stack([values, markers], -1), (values * markers).sum(1)


def run(o: Options) -> int:
    seed_everything(o.seed)
    out = Path(o.out)
    resume = resume_path(o.out, o.resume)
    config = RegressorConfig(input_size=2, cell=o.cell, hidden_size=o.hidden_size, num_layers=o.num_layers)
    if resume is not None:   # the model is rebuilt from the checkpoint's own config
        config = RegressorConfig(**load_checkpoint(resume).config["model"])
    model = SequenceRegressor(config)

    def step(batch, state):
        x, y = batch
        return StepOutput(F.mse_loss(model(x).squeeze(-1), y), None, n=len(y))

    train = TensorBatches(*adding_data(o.train_size, o.seq_len, o.seed), batch_size=o.batch_size, shuffle=True)
    val = TensorBatches(*adding_data(o.val_size, o.seq_len, o.seed + 1), batch_size=500)
    train_config = TrainConfig(epochs=o.epochs, max_steps=o.max_steps, max_minutes=o.minutes, optimizer=o.optimizer,
                               lr=o.lr, schedule=o.schedule, clip_norm=o.clip_norm or None, seed=o.seed,
                               verbose=0 if o.quiet else 1, out_dir=str(out), tensorboard=o.tensorboard)
    trainer = Trainer(model, step, train_config, task_config={"task": "adding", "model": asdict(config),
                                                               "options": asdict(o)})
    history = trainer.fit(train, val, resume=str(resume) if resume else None)
    best = min(v for v in history.column("val_loss") if v is not None)
    print(f"adding: best validation MSE {best:.4f} (baseline {BASELINE_MSE:.4f}) after {trainer.global_step} "
          f"updates; checkpoints in {out}" + (f"; {trainer.stop_reason}" if trainer.stop_reason else ""))
    return 0
