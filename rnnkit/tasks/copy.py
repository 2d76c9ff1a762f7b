"""The copy (memory) task (Arjovsky, Shah & Bengio 2016): read symbols, wait T steps, write them back.

An input is ``length`` random symbols from 1..``symbols``, then T - 1 blanks
(0), a delimiter (symbols + 1) and ``length`` more blanks; the target is
blank for the first T + length steps and then the symbols, in order. The loss
is the cross-entropy over every step; a model that outputs blanks and then
guesses uniformly scores length · ln(symbols) / (T + 2 · length), the baseline
to beat. Remembering across the delay is all there is to it. Data are generated.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..models.copier import CELLS, Copier, CopierConfig
from ..train import StepOutput, TensorBatches, Trainer, TrainConfig, load_checkpoint, seed_everything
from .contract import TrainOptions, shared
from .options import check_memory, check_out_dir, option, resume_options


@dataclass
class Options(TrainOptions):
    delay: int = option(100, "T: steps between the last symbol and the delimiter, plus one", "data",
                        bounds="[1, 2**20]")
    length: int = option(10, "symbols to remember and copy", "data", bounds="[1, 2**16]")
    symbols: int = option(8, "size of the alphabet (blank and delimiter not counted)", "data", bounds="[2, 2**16]")
    train_size: int = option(10000, "training sequences (generated)", "data", bounds="[1, 2**24]")
    val_size: int = option(1000, "validation sequences (generated)", "data", bounds="[1, 2**24]")
    cell: str = option("lstm", "recurrent cell", "model", choices=tuple(sorted(CELLS)))
    hidden_size: int = option(64, "units per layer", "model", bounds="[1, 2**16]")
    num_layers: int = option(1, "stacked layers", "model", bounds="[1, 64]")
    epochs: int = shared("epochs", 10)
    minutes: float | None = shared("minutes", None)
    batch_size: int = shared("batch_size", 50, "sequences per batch")
    lr: float = shared("lr", 0.001)
    schedule: str = shared("schedule", "none")
    clip_norm: float = shared("clip_norm", 1.0)
    log_grad_norms: bool = option(False, "add per-layer gradient norms and the clipped fraction to the history",
                                  "output", per_run=True)
    out: str = shared("out", "runs/copy")

    def __post_init__(self):
        super().__post_init__()   # validates every declared option (tasks/options.py)


def copy_data(n: int, delay: int, length: int = 10, symbols: int = 8, seed: int = 0):
    """x, y (n, delay + 2 * length) int64: inputs with the delimiter ``symbols + 1``, targets."""
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(1, symbols + 1, (n, length), generator=g)
    x = torch.zeros(n, delay + 2 * length, dtype=torch.long)
    y = torch.zeros_like(x)
    x[:, :length] = seq
    x[:, length + delay - 1] = symbols + 1
    y[:, -length:] = seq
    return x, y


def baseline_loss(delay: int, length: int = 10, symbols: int = 8) -> float:
    """Cross-entropy per step of blanks, then a uniform guess over the symbols."""
    return length * math.log(symbols) / (delay + 2 * length)


def step_fn(model: Copier, length: int):
    """The loss over every step; metrics on the copied part: per-symbol accuracy and whole sequences right."""
    def step(batch, state):
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        right = logits[:, -length:].argmax(-1) == y[:, -length:]
        return StepOutput(loss, None, n=len(y), metrics={"acc": right.float().mean().item(),
                                                          "solved": right.all(1).float().mean().item()})
    return step


def model_from(config: dict) -> Copier:
    return Copier(CopierConfig(**config))


def run(o: Options) -> int:
    resume = check_out_dir(o.out, o.resume, o.overwrite)   # before any work
    config = CopierConfig(input_symbols=o.symbols + 2, output_symbols=o.symbols + 1, cell=o.cell,
                          hidden_size=o.hidden_size, num_layers=o.num_layers)
    if resume is not None:   # the run's own options; the model is rebuilt from the checkpoint's config
        ck = load_checkpoint(resume)
        o = resume_options(o, ck.config.get("options"), str(resume))
        config = CopierConfig(input_symbols=o.symbols + 2, output_symbols=o.symbols + 1, cell=o.cell,
                              hidden_size=o.hidden_size, num_layers=o.num_layers)
    seed_everything(o.seed)
    out = Path(o.out)
    steps = o.delay + 2 * o.length
    check_memory(lambda: Copier(config), o.batch_size * steps * config.num_layers * config.hidden_size * 8,
                 "lower --hidden-size, --num-layers, --batch-size, --delay or --length")
    model = Copier(config)
    train = TensorBatches(*copy_data(o.train_size, o.delay, o.length, o.symbols, o.seed), batch_size=o.batch_size,
                          shuffle=True)
    val = TensorBatches(*copy_data(o.val_size, o.delay, o.length, o.symbols, o.seed + 1), batch_size=500)
    train_config = TrainConfig(epochs=o.epochs, max_steps=o.max_steps, max_minutes=o.minutes, optimizer=o.optimizer,
                               lr=o.lr, schedule=o.schedule, clip_norm=o.clip_norm or None, seed=o.seed,
                               verbose=0 if o.quiet else 1, out_dir=str(out), log_grad_norms=o.log_grad_norms)
    trainer = Trainer(model, step_fn(model, o.length), train_config,
                      task_config={"task": "copy", "model": asdict(config),
                                   "options": {k: v for k, v in asdict(o).items() if k not in ("resume", "overwrite")}})
    history = trainer.fit(train, val, resume=str(resume) if resume else None)
    best = min(range(len(history.rows)), key=lambda i: history.rows[i]["val_loss"])
    row = history.rows[best]
    print(f"copy: best validation loss {row['val_loss']:.4f} (baseline {baseline_loss(o.delay, o.length, o.symbols):.4f}), "
          f"copied symbols right {row['val_acc']:.1%}, whole sequences right {row['val_solved']:.1%}, after "
          f"{trainer.global_step} updates; checkpoints in {out}" + (f"; {trainer.stop_reason}" if trainer.stop_reason else ""))
    return 0
