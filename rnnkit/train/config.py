"""What the trainer is told (TrainConfig) and what a step gives back (StepOutput)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

PRECISIONS = ("fp32", "bf16")


@dataclass
class StepOutput:
    """The result of one step function call on one batch (or TBPTT window).

    loss:    scalar tensor, the mean over the ``n`` items the step saw
    state:   the recurrent state after the batch (any nest of tensors, or None);
             the trainer detaches it and passes it to the next call when carrying
    n:       how many items the mean is over (tokens, sequences); weights the
             epoch averages and counts towards items/s
    metrics: per-batch means of other metrics, e.g. {"acc": 0.8}, averaged over
             the epoch weighted by ``n``
    """
    loss: torch.Tensor
    state: Any = None
    n: int = 1
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Everything that decides how a model trains; saved in every checkpoint.

    Lengths: ``epochs`` passes over the data, stopping early at ``max_steps``
    optimizer updates or ``max_minutes`` of wall-clock time (the run then
    still evaluates and saves). Truncated BPTT (Williams & Peng 1990):
    ``tbptt=(k1, k2)`` cuts every batch along time (dim 1) into chunks of k1
    steps, one update per chunk, backpropagating through the last k2 steps
    (k2 a multiple of k1; k1 == k2 the common case). ``stateful`` carries the
    detached state from batch to batch within an epoch, for stream-contiguous
    data (rnnkit.data.StreamBatches); otherwise each batch starts from None.
    """
    epochs: int = 10
    max_steps: int | None = None
    max_minutes: float | None = None
    # optimization
    optimizer: str = "adam"          # sgd, adam, adamw, rmsprop
    lr: float | None = None          # None: the optimizer's usual default (see optim.DEFAULT_LR)
    weight_decay: float = 0.0
    momentum: float = 0.0            # sgd and rmsprop
    schedule: str = "none"           # none, step, cosine, plateau
    warmup_steps: int = 0            # linear warmup (not with plateau)
    step_size: int = 1000            # "step": multiply the rate by gamma every step_size updates
    gamma: float = 0.5               # "step" and "plateau" factor
    plateau_patience: int = 2        # evaluations without improvement before "plateau" cuts the rate
    min_lr_ratio: float = 0.0        # "cosine" ends at lr * min_lr_ratio
    clip_norm: float | None = 5.0    # clip the global gradient norm (None: off)
    clip_value: float | None = None  # clip each gradient element to [-v, v] (None: off)
    precision: str = "fp32"          # "bf16": the step runs under bfloat16 autocast (weights, optimizer stay fp32)
    # recurrence
    tbptt: tuple[int, int] | None = None
    stateful: bool = False
    # evaluation and early stopping
    eval_every: int | None = None    # also evaluate every N updates (None: once per epoch)
    monitor: str | None = None       # what "best" means; None: val_loss if there is validation data, else loss
    patience: int | None = None      # stop after this many evaluations without improvement
    loss_metrics: tuple[str, ...] = ()   # derived from the loss: "perplexity", "bpc"
    # output
    seed: int | None = 0            # seeds the global generators at the start of fit (None: leave them)
    verbose: int = 1                 # 0 silent, 1 progress bar and a line per evaluation, 2 lines only
    out_dir: str | None = None       # checkpoints (last, best) and history files
    checkpoint_every: int | None = None  # also save "last" every N updates
    tensorboard: str | None = None   # write TensorBoard logs here (train/tblog.py; the tensorboard extra)

    def __post_init__(self):
        if self.tbptt is not None:
            self.tbptt = tuple(self.tbptt)
            k1, k2 = self.tbptt
            if k1 < 1 or k2 < k1 or k2 % k1:
                raise ValueError(f"tbptt=(k1, k2) needs 1 <= k1 <= k2 with k2 a multiple of k1, got {self.tbptt}")
        for name in self.loss_metrics:
            if name not in ("perplexity", "bpc"):
                raise ValueError(f"unknown loss metric {name!r}; expected 'perplexity' or 'bpc'")
        self.loss_metrics = tuple(self.loss_metrics)
        if self.tensorboard:   # checked before any training: the package is there and the directory can be made
            from .tblog import check_log_dir, require_tensorboard
            require_tensorboard()
            check_log_dir(self.tensorboard)
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; expected one of {PRECISIONS}")
