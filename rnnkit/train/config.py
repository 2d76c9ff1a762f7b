"""What the trainer is told (TrainConfig) and what a step gives back (StepOutput)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from .callbacks import MODES
from .optim import BETA_2, beta_2_refusal

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
    steps, one update per chunk, the gradient reaching back k2 steps from the
    chunk's end (any k1, k2 >= 1; k1 == k2 the common case; see tbptt.py). ``stateful`` carries the
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
    beta_2: float = BETA_2           # adam and adamw: the decay of the squared-gradient average (Keras's beta_2)
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
    monitor_mode: str = "auto"       # "max" or "min" for the monitor; auto: Keras's rule from its name (mode_for)
    patience: int | None = None      # stop after this many evaluations without improvement
    loss_metrics: tuple[str, ...] = ()   # derived from the loss: "perplexity", "bpc"
    # output
    seed: int | None = 0            # seeds the global generators at the start of fit (None: leave them)
    verbose: int = 1                 # 0 silent, 1 progress bar and a line per evaluation, 2 lines only
    out_dir: str | None = None       # checkpoints (last, best) and history files
    checkpoint_every: int | None = None  # also save "last" every N updates
    # gradient diagnostics (train/gradlog.py): per-layer gradient norms and the clipped fraction in the history
    log_grad_norms: bool = False
    tensorboard: str | None = None   # write TensorBoard logs here (train/tblog.py; the tensorboard extra)

    def __post_init__(self):
        if self.tbptt is not None:
            self.tbptt = tuple(self.tbptt)
            ok = len(self.tbptt) == 2 and all(isinstance(k, int) and not isinstance(k, bool) for k in self.tbptt)
            if not ok or min(self.tbptt) < 1:
                raise ValueError(f"tbptt=(k1, k2) needs two positive integers, got {self.tbptt}")
        self.check_numbers()
        for name in self.loss_metrics:
            if name not in ("perplexity", "bpc"):
                raise ValueError(f"unknown loss metric {name!r}; expected 'perplexity' or 'bpc'")
        self.loss_metrics = tuple(self.loss_metrics)
        if self.monitor_mode not in MODES:
            raise ValueError(f"monitor_mode must be 'auto', 'min' or 'max', got {self.monitor_mode!r}")
        if self.tensorboard:   # checked before any training: the package is there and the directory can be made
            from .tblog import check_log_dir, require_tensorboard
            require_tensorboard()
            check_log_dir(self.tensorboard)
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; expected one of {PRECISIONS}")

    def check_numbers(self) -> None:
        """ValueError for a count, size or rate outside its range (NaN included), so nothing is ignored."""
        def bad(name, value, expected):
            raise ValueError(f"TrainConfig {name} must be {expected}, got {value!r}")
        counts = {"epochs": 0, "max_steps": 1, "warmup_steps": 0, "step_size": 1, "plateau_patience": 0,
                  "eval_every": 1, "patience": 1, "checkpoint_every": 1, "seed": 0, "verbose": 0}
        for name, low in counts.items():
            value = getattr(self, name)
            if value is None and name not in ("epochs", "warmup_steps", "step_size", "plateau_patience",
                                              "verbose"):
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value < 2**63:
                bad(name, value, f"an integer in [{low}, 2**63)" + (" or None" if name in
                    ("max_steps", "eval_every", "patience", "checkpoint_every", "seed") else ""))
        rates = {"lr": (0, False), "weight_decay": (0, False), "momentum": (0, False), "gamma": (0, True),
                 "min_lr_ratio": (0, False), "clip_norm": (0, True), "clip_value": (0, True),
                 "max_minutes": (0, True)}
        for name, (low, strict) in rates.items():
            value = getattr(self, name)
            if value is None and name in ("lr", "clip_norm", "clip_value", "max_minutes"):
                continue
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < low or (strict and value == low):
                bad(name, value, f"a finite number {'>' if strict else '>='} {low}" + (
                    " or None" if name in ("lr", "clip_norm", "clip_value", "max_minutes") else ""))
        if self.schedule == "plateau" and self.warmup_steps:
            raise ValueError("warmup is not available with the plateau schedule (set warmup_steps=0)")
        beta_ok = isinstance(self.beta_2, (int, float)) and not isinstance(self.beta_2, bool) and 0 <= self.beta_2 < 1
        if not beta_ok:
            bad("beta_2", self.beta_2, "a number in [0, 1)")
        if why := beta_2_refusal(self.optimizer, self.beta_2):
            raise ValueError(why)
