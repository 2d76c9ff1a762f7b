"""The training loop: full or truncated BPTT, clipping, schedules, evaluation, checkpoints, resume.

The trainer knows nothing about the model's inputs. A *step function*
``step(batch, state) -> StepOutput`` runs the model on one batch from the
given recurrent state (None at the start) and returns the mean loss, the new
state, the item count and any metrics. The same two-argument function serves
every truncation ``tbptt=(k1, k2)`` (see tbptt.py) and evaluation (under
no_grad, model in eval mode). See TrainConfig for the options.

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

In a torch.distributed process group (``torchrun ... -m rnnkit train``, or your script after
``init_process_group``) fit trains data-parallel: each rank takes its rows of every global batch, DDP
averages the gradients, rank 0 writes; see distributed.py.

The loop is here; evaluation is in evaluation.py, checkpoints and resume in resume.py.
"""
from __future__ import annotations

import math
import sys
import time
import warnings
from itertools import chain, islice
from typing import Callable, Iterable

import torch
from tqdm.auto import tqdm

from ..errors import UserError
from . import distributed
from .callbacks import EarlyStopping, check_mode
from .checkpoint import check_writable
from .config import StepOutput, TrainConfig
from .evaluation import Evaluation, Plateau
from .gradlog import GradLog
from .history import History, Mean
from .optim import clip_gradients, make_optimizer, make_scheduler
from .probing import first_batch, rows_of, unbuilt_layers
from .progress import Progress
from .resume import Checkpoints
from .rng import rng_state, seed_everything, set_rng_state
from .tbptt import Carry, detach, time_chunks

__all__ = ["Trainer", "unbuilt_layers", "rows_of", "first_batch"]


class Trainer(Evaluation, Checkpoints):
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
        self.group = distributed.current()   # several processes (train/distributed.py), else None
        self.ddp = self.data_rng = self.resumed = None   # set by fit in a group
        wrapped = isinstance(model, torch.nn.parallel.DistributedDataParallel)
        if wrapped and unbuilt_layers(model):   # weights made after wrapping would differ across processes
            raise ValueError(f"layers {', '.join(unbuilt_layers(model)[:3])} have no weights yet, so "
                             "DistributedDataParallel cannot synchronise them: run the model once on a batch "
                             "(or pass input_size=) before wrapping it")
        self.initial_params = {id(p) for p in model.parameters()}
        self.optimizer = optimizer
        if optimizer is None:
            make_optimizer(c.optimizer, [torch.zeros(1, requires_grad=True)])   # check the name now
            if not unbuilt_layers(model):   # else made in fit, once the lazily sized layers have weights
                self.make_optimizer()
        self.scheduler = None
        self.callbacks = list(callbacks)
        self.tensorboard = None   # the TensorBoardLogger when config.tensorboard names a directory
        if c.tensorboard and self.lead:
            from .tblog import TensorBoardLogger
            self.tensorboard = TensorBoardLogger(c.tensorboard)
            self.callbacks.append(self.tensorboard)
        self.task_config = task_config or {}
        self.history, self.losses, self.mean = History(), [], Mean()
        self.epoch = self.batch = self.global_step = 0   # position: epochs done, batches done in this epoch
        self.elapsed, self.best, self.stop_reason, self.epoch_rng = 0.0, None, None, None
        self.carry = Carry(*(c.tbptt or (None, None)))
        self.batch_rows = None   # rows of the last training batch: the streams a stateful run carries
        self.gradlog = GradLog() if c.log_grad_norms else None   # gradient diagnostics, train/gradlog.py
        if self.gradlog is not None:
            self.callbacks.append(self.gradlog)

    @property
    def lead(self) -> bool:
        """Whether this process writes (the only one, or rank 0 of a group)."""
        return self.group is None or self.group.lead

    @property
    def verbose(self) -> int:
        return self.config.verbose if self.lead else 0

    # ---- the loop ---------------------------------------------------------------------------------
    def fit(self, train_data: Iterable, val_data: Iterable | None = None, resume: str | None = None) -> History:
        """Train on ``train_data`` (re-iterable, one pass per epoch); ``resume``: a checkpoint path."""
        c = self.config
        self.group = distributed.current()
        if c.out_dir and self.lead:
            check_writable(c.out_dir)   # before the first update, not after the first epoch
        if unbuilt_layers(self.model):   # in a group: before DDP wraps the model (and sends rank 0's weights)
            self.materialise(train_data)
        if self.optimizer is None:
            self.make_optimizer()
        self.check_optimizer()
        self.monitor = c.monitor or ("val_loss" if val_data is not None else "loss")
        self.monitor_mode = check_mode(c.monitor_mode, self.monitor)
        if self.scheduler is None:
            lengths = [c.max_steps, c.epochs * len(train_data) if hasattr(train_data, "__len__") else None]
            total = min((n for n in lengths if n is not None), default=None)   # the run ends at the first
            self.scheduler = make_scheduler(self.optimizer, c.schedule, warmup_steps=c.warmup_steps,
                                            step_size=c.step_size, gamma=c.gamma, total_steps=total,
                                            min_lr_ratio=c.min_lr_ratio, plateau_patience=c.plateau_patience,
                                            timed=c.max_minutes is not None, mode=self.monitor_mode)
        if c.patience and not any(isinstance(cb, EarlyStopping) for cb in self.callbacks):
            self.callbacks.append(EarlyStopping(self.monitor, c.patience, mode=self.monitor_mode))
        if resume:
            self.restore(resume)
            self.check_batch_rows(resume, train_data)
        elif c.seed is not None:
            seed_everything(c.seed)
        if self.group is not None:
            self.start_group(train_data)
        self.stop_reason = None
        self.clock = time.monotonic() - self.elapsed
        self.call("on_fit_start")
        while self.epoch < c.epochs and not self.stop_reason:
            self.run_epoch(train_data, val_data)
        if self.mean.steps:   # stopped inside an epoch: save the exact state first, then report on it
            self.save("last")
            self.end_evaluation(val_data, save_last=False)
        if c.out_dir and self.lead:
            self.history.save(c.out_dir, plot=True)
        if self.verbose and self.stop_reason:
            tqdm.write(f"stopped: {self.stop_reason}", file=sys.stderr)
        self.call("on_fit_end")
        if self.group is not None and distributed.leave_after_fit():   # rnnkit train: rank 0 goes on alone
            if not self.group.lead:
                raise distributed.Finished()
            self.group = self.ddp = self.data_rng = None
        return self.history

    def start_group(self, train_data) -> None:
        """Several processes: shared data generators, this rank's own, its carried state, and DDP around the
        update (train/distributed.py)."""
        g, c = self.group, self.config
        rows = rows_of(first_batch(train_data))
        if rows is None:
            raise UserError("training on several processes needs batches with a batch dimension (a tensor)")
        if c.stateful and rows < g.world:
            raise UserError(f"{g.world} processes need at least {g.world} streams to share, got batches of "
                            f"{rows}: raise the batch size or run fewer processes")
        self.data_rng = g.start_rngs(c.seed, self.resumed)
        ranks = (self.resumed or {}).get("ranks")
        if ranks and len(ranks) == g.world:
            self.carry.load_dict(ranks[g.rank]["carry"])
        if not isinstance(self.model, torch.nn.parallel.DistributedDataParallel):   # else the step calls DDP
            self.ddp = g.wrap(self.model, self.chunk_loss)
        self.resumed = None

    def batches(self, data):
        """An iterator over ``data``; in a group its random draws come from the shared data generators."""
        return self.data_rng.iterate(data) if self.data_rng is not None else iter(data)

    def data_state(self) -> dict:
        return self.data_rng.state if self.data_rng is not None else rng_state()

    def set_data_state(self, state: dict) -> None:
        if self.data_rng is not None:
            self.data_rng.state = state
        else:
            set_rng_state(state)

    def make_optimizer(self) -> None:
        c = self.config
        self.optimizer = make_optimizer(c.optimizer, [p for p in self.model.parameters() if p.requires_grad],
                                        c.lr, c.weight_decay, c.momentum, c.beta_2)

    def materialise(self, train_data) -> None:
        """Give lazily sized layers their weights before the optimizer is made: one forward pass of the
        first batch (first chunk with TBPTT), without gradients, in eval mode, the RNGs left untouched."""
        batch, rng, was_training = first_batch(train_data), rng_state(), self.model.training
        try:
            self.model.eval()
            with torch.no_grad():
                self.step(time_chunks(batch, self.config.tbptt[0])[0] if self.config.tbptt else batch, None)
        finally:
            self.model.train(was_training)
            set_rng_state(rng)
        left = unbuilt_layers(self.model)
        if left:
            raise ValueError(f"layers {', '.join(left[:3])} still have no weights after a forward pass of the "
                             "first batch: does the step function call the model?")

    def check_optimizer(self) -> None:
        """Every weight created after the optimizer was given must be in it, else it would never train."""
        held = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        left_out = [(name, p) for name, p in self.model.named_parameters() if p.requires_grad and id(p) not in held]
        late = [name for name, p in left_out if id(p) not in self.initial_params]
        if left_out and not late:   # perhaps on purpose, perhaps an optimizer made before a lazy layer was built
            names = [name for name, _ in left_out]
            warnings.warn(f"the optimizer does not hold {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}, "
                          "so these weights will not train; set requires_grad=False to freeze them on purpose, or "
                          "make the optimizer after the model's first forward pass", stacklevel=3)
        if late:
            raise ValueError(f"the optimizer does not hold {', '.join(late[:3])}{' ...' if len(late) > 3 else ''}: "
                             "these weights were created (lazily sized layers) after the optimizer was made, so "
                             "they would never train; make the optimizer after a first forward pass, or let "
                             "Trainer make it (optimizer=None)")

    def run_epoch(self, train_data, val_data) -> None:
        c = self.config
        if self.batch == 0:
            self.epoch_rng = self.data_state()
            self.carry.reset()
            batches = self.batches(train_data)
        else:   # resumed inside an epoch: replay the epoch's data order, then skip the batches done
            now = self.data_state()
            self.set_data_state(self.epoch_rng)
            batches = self.batches(train_data)
            first = next(batches, None)   # a generator draws its order only when asked for a batch
            self.set_data_state(now)
            batches = islice(chain([first], batches), self.batch, None) if first is not None else iter(())
        total = len(train_data) if hasattr(train_data, "__len__") else None
        progress = Progress(self.verbose, self.epoch, c.epochs, total, self.batch)
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
        items, real = 0, True
        self.batch_rows = rows_of(batch)
        if self.group is not None:   # this rank's rows of the global batch
            batch, real = self.group.shard(batch, self.batch_rows)
        for chunk in time_chunks(batch, c.tbptt[0]) if c.tbptt else [batch]:
            with self.autocast():
                out = self.ddp(chunk) if self.ddp is not None else self.chunk_loss(chunk)
            self.optimizer.zero_grad(set_to_none=True)
            if self.group is not None:   # the mean over the global batch: n, loss, metrics of every rank
                n = out.n if real else 0
                total, mean, metrics, self.elapsed = self.group.reduce_update(
                    n, float(out.loss.detach()), out.metrics, time.monotonic() - self.clock)
                (out.loss * (n * self.group.world / total if total else 0.0)).backward()   # DDP averages
                out = StepOutput(out.loss.detach().new_tensor(mean), out.state, total, metrics)
            else:
                out.loss.backward()
            if self.gradlog is not None:
                self.gradlog.measure(self.model, c.clip_norm, c.clip_value)
            if c.clip_norm is not None or c.clip_value is not None:   # else no norm to compute (a sync per step)
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
                self.scheduler.lr_lambdas[0].time_fraction = self.seconds() / (60 * c.max_minutes)
            self.scheduler.step()   # schedules count batches

    def chunk_loss(self, chunk) -> StepOutput:
        """The step's output for one update on ``chunk``, truncated as TBPTT(k1, k2) says (see tbptt.py)."""
        k1, k2 = self.config.tbptt or (None, None)
        prefix, state = self.carry.start(self.step)
        if prefix is not None:   # k2 > k1: gradients flow back through the prefix; its loss is not used
            state = self.step(prefix, state).state
        if k2 is None or k2 >= k1:
            return self.step(chunk, state)
        outs = []   # k2 < k1: pieces of k2 steps, the state detached between them
        for piece in time_chunks(chunk, k2):
            outs.append(self.step(piece, state))
            state = detach(outs[-1].state)
        n = sum(o.n for o in outs)
        metrics = {k: sum(o.metrics[k] * o.n for o in outs) / n for k in outs[0].metrics}
        return StepOutput(sum(o.loss * (o.n / n) for o in outs), outs[-1].state, n, metrics)

    def limit_reached(self) -> str | None:
        c = self.config
        self.elapsed = self.seconds()
        if c.max_steps is not None and self.global_step >= c.max_steps:
            return f"reached max_steps={c.max_steps}"
        if c.max_minutes is not None and self.elapsed >= 60 * c.max_minutes:
            return f"time is up ({c.max_minutes:g} minutes)"
        return None

    def seconds(self) -> float:
        """Seconds of training so far; in a group rank 0's, as of the last update, so every rank agrees."""
        return self.elapsed if self.group is not None else time.monotonic() - self.clock

    def autocast(self):
        """The context a training step runs in: bfloat16 autocast on the model's device for precision "bf16".

        Evaluation always runs in the model's own dtype, so reported figures are those of the weights."""
        device = next(self.model.parameters(), torch.empty(0)).device.type
        return torch.autocast(device, dtype=torch.bfloat16, enabled=self.config.precision == "bf16")

    def call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            if hasattr(cb, hook):
                getattr(cb, hook)(self, *args)
