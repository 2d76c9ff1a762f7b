"""The training loop: full or truncated BPTT, clipping, schedules, evaluation, checkpoints, resume.

The trainer knows nothing about the model's inputs. A *step function*
``step(batch, state) -> StepOutput`` runs the model on one batch from the
given recurrent state (None at the start) and returns the mean loss, the new
state, the item count and any metrics. With TBPTT k2 > k1 it is called as
``step(window, state, tail=k1)`` and must count the loss on the last ``tail``
time steps only. The same function serves evaluation (under no_grad, model
in eval mode). See TrainConfig for the options.

A stateful language model plugs in as::

    data = StreamBatches(tokens, batch_size=64, seq_len=100)    # rnnkit.data
    def step(batch, state):
        x, y = batch                                             # (B, T) each
        logits, state = model(x, state)                          # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        return StepOutput(loss, state, n=y.numel())
    trainer = Trainer(model, step, TrainConfig(stateful=True, max_minutes=3, out_dir="runs/lm",
                      loss_metrics=("bpc",)), task_config={"model": asdict(cfg), "vocab": chars})
    history = trainer.fit(data, val_data)              # or fit(..., resume="runs/lm/last.safetensors")
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict
from itertools import chain, islice
from pathlib import Path
from typing import Callable, Iterable

import torch
from tqdm.auto import tqdm

from ..errors import UserError
from .callbacks import EarlyStopping, improved, mode_for
from .checkpoint import load_checkpoint, restore_model, save_checkpoint
from .config import StepOutput, TrainConfig
from .history import History, Mean
from .optim import clip_gradients, make_optimizer, make_scheduler
from .progress import Progress, fmt
from .rng import rng_state, seed_everything, set_rng_state
from .tbptt import Carry, detach, time_chunks

Plateau = torch.optim.lr_scheduler.ReduceLROnPlateau


class Trainer:
    """Trains ``model`` with ``step`` (see the module docstring) under ``config``.

    optimizer: a ready torch optimizer (default: made from the config by name).
    callbacks: objects with on_fit_start / on_step_end / on_evaluate / on_fit_end.
    task_config: a JSON-able dict saved in every checkpoint, enough for a task
    to rebuild its model (model config, vocabulary).
    After ``fit``: ``history`` (one row per evaluation), ``losses`` (the loss of
    every update), ``stop_reason`` (None when all epochs ran).
    """

    def __init__(self, model: torch.nn.Module, step: Callable[..., StepOutput], config: TrainConfig | None = None,
                 *, optimizer: torch.optim.Optimizer | None = None, callbacks: Iterable = (),
                 task_config: dict | None = None):
        self.model, self.step, self.config = model, step, config or TrainConfig()
        c = self.config
        self.optimizer = optimizer or make_optimizer(c.optimizer, [p for p in model.parameters() if p.requires_grad],
                                                     c.lr, c.weight_decay, c.momentum)
        self.scheduler = None
        self.callbacks = list(callbacks)
        self.tensorboard = None   # the TensorBoardLogger when config.tensorboard names a directory
        if c.tensorboard:
            from .tblog import TensorBoardLogger
            self.tensorboard = TensorBoardLogger(c.tensorboard)
            self.callbacks.append(self.tensorboard)
        self.task_config = task_config or {}
        self.history, self.losses, self.mean = History(), [], Mean()
        self.epoch = self.batch = self.global_step = 0   # position: epochs done, batches done in this epoch
        self.elapsed, self.best, self.stop_reason, self.epoch_rng = 0.0, None, None, None
        self.carry = Carry(*(c.tbptt or (None, None)))

    # ---- the loop ---------------------------------------------------------------------------------
    def fit(self, train_data: Iterable, val_data: Iterable | None = None, resume: str | None = None) -> History:
        """Train on ``train_data`` (re-iterable, one pass per epoch); ``resume``: a checkpoint path."""
        c = self.config
        self.monitor = c.monitor or ("val_loss" if val_data is not None else "loss")
        if self.scheduler is None:
            total = c.max_steps or (c.epochs * len(train_data) if hasattr(train_data, "__len__") else None)
            self.scheduler = make_scheduler(self.optimizer, c.schedule, warmup_steps=c.warmup_steps,
                                            step_size=c.step_size, gamma=c.gamma, total_steps=total,
                                            min_lr_ratio=c.min_lr_ratio, plateau_patience=c.plateau_patience,
                                            timed=c.max_minutes is not None)
        if c.patience and not any(isinstance(cb, EarlyStopping) for cb in self.callbacks):
            self.callbacks.append(EarlyStopping(self.monitor, c.patience))
        if resume:
            self.restore(resume)
        elif c.seed is not None:
            seed_everything(c.seed)
        self.stop_reason = None
        self.clock = time.monotonic() - self.elapsed
        self.call("on_fit_start")
        while self.epoch < c.epochs and not self.stop_reason:
            self.run_epoch(train_data, val_data)
        if self.mean.steps:   # stopped inside an epoch: save the exact state first, then report on it
            self.save("last")
            self.end_evaluation(val_data, save_last=False)
        if c.out_dir:
            self.history.save(c.out_dir, plot=True)
        if c.verbose and self.stop_reason:
            tqdm.write(f"stopped: {self.stop_reason}", file=sys.stderr)
        self.call("on_fit_end")
        return self.history

    def run_epoch(self, train_data, val_data) -> None:
        c = self.config
        if self.batch == 0:
            self.epoch_rng = rng_state()
            self.carry.reset()
            batches = iter(train_data)
        else:   # resumed inside an epoch: replay the epoch's data order, then skip the batches done
            now = rng_state()
            set_rng_state(self.epoch_rng)
            batches = iter(train_data)
            first = next(batches, None)   # a generator draws its order only when asked for a batch
            set_rng_state(now)
            batches = islice(chain([first], batches), self.batch, None) if first is not None else iter(())
        total = len(train_data) if hasattr(train_data, "__len__") else None
        progress = Progress(c.verbose, self.epoch, c.epochs, total, self.batch)
        self.model.train()
        for batch in batches:
            before = self.global_step
            self.train_batch(batch, progress)
            self.batch += 1
            if c.eval_every and self.global_step // c.eval_every > before // c.eval_every:
                self.end_evaluation(val_data)
            elif c.checkpoint_every and self.global_step // c.checkpoint_every > before // c.checkpoint_every:
                self.save("last")
            self.stop_reason = self.stop_reason or self.limit_reached()
            if self.stop_reason:
                break
        progress.close()
        if not self.stop_reason:
            self.epoch, self.batch = self.epoch + 1, 0
            if self.mean.steps:
                self.end_evaluation(val_data)

    def train_batch(self, batch, progress: Progress) -> None:
        """One batch: one update, or with TBPTT one update per chunk of k1 steps."""
        c = self.config
        if not c.stateful:
            self.carry.reset()
        items = 0
        for chunk in time_chunks(batch, c.tbptt[0]) if c.tbptt else [batch]:
            window, state, tail = self.carry.window(chunk)
            with self.autocast():
                out = self.step(window, state) if tail is None else self.step(window, state, tail=tail)
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            clip_gradients(self.model.parameters(), c.clip_norm, c.clip_value)
            self.optimizer.step()
            self.carry.push(chunk, out.state)
            loss = float(out.loss.detach())
            if not math.isfinite(loss):
                raise UserError(f"training diverged: the loss is {loss} at update {self.global_step + 1}; "
                                "try a lower learning rate or stronger clipping")
            self.losses.append(loss)
            self.global_step += 1
            self.mean.add(out.n, loss, out.metrics)
            items += out.n
            self.call("on_step_end", loss)
        progress.update(items, self.mean.result())
        if not isinstance(self.scheduler, Plateau):
            if c.max_minutes is not None:   # a cosine spans the time budget too (optim.LRFactor)
                self.scheduler.lr_lambdas[0].time_fraction = (time.monotonic() - self.clock) / (60 * c.max_minutes)
            self.scheduler.step()   # schedules count batches

    def limit_reached(self) -> str | None:
        c = self.config
        self.elapsed = time.monotonic() - self.clock
        if c.max_steps is not None and self.global_step >= c.max_steps:
            return f"reached max_steps={c.max_steps}"
        if c.max_minutes is not None and self.elapsed >= 60 * c.max_minutes:
            return f"time is up ({c.max_minutes:g} minutes)"
        return None

    def end_evaluation(self, val_data, save_last: bool = True) -> dict:
        """Close a history row: training means since the last row, validation, schedule, best and last."""
        c = self.config
        self.elapsed = time.monotonic() - self.clock
        row = {"epoch": self.epoch, "step": self.global_step, "time": round(self.elapsed, 3),
               "lr": self.optimizer.param_groups[0]["lr"], **self.mean.result(c.loss_metrics)}
        if val_data is not None:
            row.update({f"val_{k}": v for k, v in self.evaluate(val_data).items()})
        self.mean = Mean()
        self.history.append(row)
        if self.monitor not in row:
            raise ValueError(f"the monitored metric {self.monitor!r} is not among {sorted(row)}")
        if isinstance(self.scheduler, Plateau):
            self.scheduler.step(row[self.monitor])
        self.call("on_evaluate", row)
        if improved(row[self.monitor], self.best, mode_for(self.monitor)):
            self.best = row[self.monitor]
            self.save("best")
        if save_last:
            self.save("last")
        if c.out_dir:
            self.history.save(c.out_dir)
        if c.verbose:
            tqdm.write(f"epoch {self.epoch} step {self.global_step}  {fmt(row)}", file=sys.stderr)
        return row

    @torch.no_grad()
    def evaluate(self, data: Iterable) -> dict[str, float]:
        """Mean loss and metrics over ``data`` in eval mode (state carried across batches if stateful)."""
        c, was_training = self.config, self.model.training
        self.model.eval()
        mean, state = Mean(), None
        try:
            for batch in data:
                out = self.step(batch, state if c.stateful else None)
                state = detach(out.state)
                mean.add(out.n, float(out.loss), out.metrics)
        finally:
            self.model.train(was_training)
        return mean.result(c.loss_metrics)

    def autocast(self):
        """The context a training step runs in: bfloat16 autocast on the model's device for precision "bf16".

        Evaluation always runs in the model's own dtype, so reported figures are those of the weights."""
        device = next(self.model.parameters(), torch.empty(0)).device.type
        return torch.autocast(device, dtype=torch.bfloat16, enabled=self.config.precision == "bf16")

    def call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            if hasattr(cb, hook):
                getattr(cb, hook)(self, *args)

    # ---- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: position, RNGs, optimizer, schedule, carried state."""
        return {"train_config": asdict(self.config), "epoch": self.epoch, "batch": self.batch,
                "global_step": self.global_step, "elapsed": self.elapsed, "best": self.best,
                "losses": self.losses, "history": self.history.rows, "mean": self.mean.to_dict(),
                "carry": self.carry.to_dict(), "optimizer_type": type(self.optimizer).__name__,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None for cb in self.callbacks],
                "rng": rng_state(), "epoch_rng": self.epoch_rng}

    def save(self, name: str) -> None:
        """Write ``<out_dir>/<name>.safetensors`` (nothing without out_dir)."""
        if self.config.out_dir:
            save_checkpoint(Path(self.config.out_dir) / f"{name}.safetensors", self.model.state_dict(),
                            {"trainer": self.state_dict()}, self.task_config)

    def restore(self, path) -> None:
        """Continue from a checkpoint written by ``save``; a checkpoint of another setup raises UserError."""
        ck = load_checkpoint(path)
        s = ck.state.get("trainer")
        if not isinstance(s, dict):
            raise UserError(f"{path} holds weights only, not a training state to resume from")
        restore_model(self.model, ck)
        if s["optimizer_type"] != type(self.optimizer).__name__:
            raise UserError(f"checkpoint {path} was trained with {s['optimizer_type']}, "
                            f"not {type(self.optimizer).__name__}")
        try:
            self.optimizer.load_state_dict(s["optimizer"])
            self.scheduler.load_state_dict(s["scheduler"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise UserError(f"checkpoint {path} does not match this optimizer or schedule: {e}") from None
        states = s["callbacks"] + [None] * len(self.callbacks)
        for cb, st in zip(self.callbacks, states):
            if st is not None and hasattr(cb, "load_state_dict"):
                cb.load_state_dict(st)
        self.epoch, self.batch, self.global_step = s["epoch"], s["batch"], s["global_step"]
        self.elapsed, self.best, self.losses = s["elapsed"], s["best"], list(s["losses"])
        self.history = History(list(s["history"]))
        self.mean.load_dict(s["mean"])
        self.carry.load_dict(s["carry"])
        self.epoch_rng = s["epoch_rng"]
        set_rng_state(s["rng"])
