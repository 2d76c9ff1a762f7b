"""The adding problem (Hochreiter & Schmidhuber 1997): read a sequence, output the sum of two marked numbers.

Each step carries a value in [0, 1) and a marker bit; exactly two steps are
marked, one in each half of the sequence. The target is the sum of the two
marked values. Predicting the mean (1.0) scores MSE 1/6 ≈ 0.167, the baseline
to beat; doing better needs memory across the sequence. Data are generated.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..models.regressor import CELLS, RegressorConfig, SequenceRegressor
from ..train import StepOutput, TensorBatches, Trainer, TrainConfig, load_checkpoint, seed_everything
from .contract import TrainOptions, shared
from .options import check_declared, check_memory, check_out_dir, option, resume_options

BASELINE_MSE = 1 / 6   # Var(u1 + u2) for two independent U(0, 1) values


@dataclass
class Options(TrainOptions):
    seq_len: int = option(50, "time steps per sequence", "data", bounds="[2, 2**20]")
    train_size: int = option(10000, "training sequences (generated)", "data", bounds="[1, 2**31]")
    val_size: int = option(1000, "validation sequences (generated)", "data", bounds="[1, 2**31]")
    cell: str = option("lstm", "recurrent cell", "model", choices=tuple(sorted(CELLS)))
    hidden_size: int = option(64, "units per layer", "model", bounds="[1, 2**16]")
    num_layers: int = option(1, "stacked layers", "model", bounds="[1, 64]")
    epochs: int = shared("epochs", 10)
    minutes: float | None = shared("minutes", None)
    batch_size: int = shared("batch_size", 50, "sequences per batch")
    lr: float = shared("lr", 0.01)
    schedule: str = shared("schedule", "none")
    clip_norm: float = shared("clip_norm", 1.0)
    out: str = shared("out", "runs/adding")
    tensorboard: str | None = option(None, "also write TensorBoard logs (losses, metrics, learning rate, gradient "
                                           "norm, history plot) to this directory", "output", metavar="DIR",
                                     per_run=True)

    def __post_init__(self):
        super().__post_init__()   # validates every declared option (tasks/options.py)


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
    resume = check_out_dir(o.out, o.resume, o.overwrite)   # before any work
    config = RegressorConfig(input_size=2, cell=o.cell, hidden_size=o.hidden_size, num_layers=o.num_layers)
    if resume is not None:   # the run's own options; the model is rebuilt from the checkpoint's config
        ck = load_checkpoint(resume)
        config = header_model(ck)
        o = resume_options(o, ck.config.get("options"), str(resume))
    seed_everything(o.seed)
    out = Path(o.out)
    check_memory(lambda: SequenceRegressor(config), o.batch_size * o.seq_len * config.num_layers
                 * config.hidden_size * 8, "lower --hidden-size, --num-layers, --batch-size or --seq-len")
    model = SequenceRegressor(config)

    def step(batch, state):
        x, y = batch
        return StepOutput(F.mse_loss(model(x).squeeze(-1), y), None, n=len(y))

    train = TensorBatches(*adding_data(o.train_size, o.seq_len, o.seed), batch_size=o.batch_size, shuffle=True)
    val = TensorBatches(*adding_data(o.val_size, o.seq_len, o.seed + 1), batch_size=500)
    train_config = TrainConfig(epochs=o.epochs, max_steps=o.max_steps, max_minutes=o.minutes, optimizer=o.optimizer,
                               lr=o.lr, schedule=o.schedule, clip_norm=o.clip_norm or None, seed=o.seed,
                               verbose=0 if o.quiet else 1, out_dir=str(out), tensorboard=o.tensorboard)
    options = {k: v for k, v in asdict(o).items() if k not in ("resume", "overwrite")}
    trainer = Trainer(model, step, train_config, task_config={"task": "adding", "model": asdict(config),
                                                               "options": options})
    history = trainer.fit(train, val, resume=str(resume) if resume else None)
    best = min(v for v in history.column("val_loss") if v is not None)
    print(f"adding: best validation MSE {best:.4f} (baseline {BASELINE_MSE:.4f}) after {trainer.global_step} "
          f"updates; checkpoints in {out}" + (f"; {trainer.stop_reason}" if trainer.stop_reason else ""))
    return 0


def header_model(ck) -> RegressorConfig:
    """The model config of an adding checkpoint, checked with the options' declarations (UserError)."""
    path, header = ck.path, ck.config
    if not isinstance(header, dict) or header.get("task") != "adding":
        task = header.get("task") if isinstance(header, dict) else None
        raise UserError(f"{path} is a checkpoint of task {task!r}, not of the adding task")
    model, known = header.get("model"), {f.name for f in fields(RegressorConfig)}
    if not isinstance(model, dict) or set(model) - known or model.get("input_size") != 2 \
            or model.get("output_size", 1) != 1:
        raise UserError(f"checkpoint {path} has a malformed adding model config: {model!r}")
    check_declared(Options, model, f"in checkpoint {path}")
    return RegressorConfig(**model)
