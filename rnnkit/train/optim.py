"""Optimizers and learning-rate schedules by name, and gradient clipping."""
from __future__ import annotations

import math
from typing import Iterable

import torch

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
              "rmsprop": torch.optim.RMSprop}
DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}   # Keras's defaults
SCHEDULES = ("none", "step", "cosine", "plateau")
BETA_2 = 0.999   # Adam's and AdamW's squared-gradient decay in torch and Keras


def beta_2_refusal(optimizer: str, beta_2: float) -> str | None:
    """Why ``beta_2`` cannot be set for ``optimizer`` (only adam and adamw have one), else None."""
    if beta_2 != BETA_2 and optimizer not in ("adam", "adamw"):
        return f"beta_2 is a setting of adam and adamw, not of {optimizer}"
    return None


def make_optimizer(name: str, params: Iterable, lr: float | None = None, weight_decay: float = 0.0,
                   momentum: float = 0.0, beta_2: float = BETA_2) -> torch.optim.Optimizer:
    """A torch optimizer by name. RMSprop uses rho = 0.9 (Hinton's lecture, Keras), not torch's 0.99; ``beta_2``
    is Adam's and AdamW's (betas = (0.9, beta_2))."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}")
    lr = DEFAULT_LR[name] if lr is None else lr
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, momentum=momentum, weight_decay=weight_decay)
    return OPTIMIZERS[name](params, lr=lr, betas=(0.9, beta_2), weight_decay=weight_decay)


class LRFactor:
    """The multiplier of the base rate after ``step`` updates: linear warmup, then the schedule.

    An object rather than a lambda so LambdaLR can save it in a state dict.
    With a wall-clock budget the trainer sets ``time_fraction`` (the share of
    the budget spent) before each step, and the cosine follows whichever of
    steps and time runs out first: "the best model in N minutes".
    """

    def __init__(self, schedule: str, warmup: int, step_size: int, gamma: float, total: int | None,
                 min_ratio: float):
        self.schedule, self.warmup, self.step_size, self.gamma = schedule, warmup, step_size, gamma
        self.total, self.min_ratio = total, min_ratio
        self.time_fraction = 0.0

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        t = step - self.warmup
        if self.schedule == "step":
            return self.gamma ** (t // self.step_size)
        if self.schedule == "cosine":   # Loshchilov & Hutter 2017, one cycle, no restarts
            by_steps = t / max(1, self.total - self.warmup) if self.total else 0.0
            progress = min(max(by_steps, self.time_fraction), 1.0)
            return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str = "none", *, warmup_steps: int = 0,
                   step_size: int = 1000, gamma: float = 0.5, total_steps: int | None = None,
                   min_lr_ratio: float = 0.0, plateau_patience: int = 2, timed: bool = False, mode: str = "min"):
    """A torch scheduler stepped once per update ("plateau": once per evaluation, with the monitored value).

    step: times gamma every step_size updates; cosine: down to lr * min_lr_ratio
    at total_steps (or at the end of the time budget when ``timed``); plateau: ReduceLROnPlateau(factor=gamma) in ``mode`` ("max" for a
    monitored accuracy); none: constant.
    Every schedule but plateau can start with ``warmup_steps`` of linear warmup.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {list(SCHEDULES)}")
    if schedule == "plateau":
        if warmup_steps:
            raise ValueError("warmup is not available with the plateau schedule")
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=gamma, patience=plateau_patience)
    if schedule == "cosine" and not (total_steps or timed):
        raise ValueError("the cosine schedule needs a known number of steps (epochs with sized data, or "
                         "max_steps) or a time budget (max_minutes)")
    factor = LRFactor(schedule, warmup_steps, step_size, gamma, total_steps, min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def clip_gradients(params, max_norm: float | None = None, max_value: float | None = None) -> float:
    """Clip by value (each element to [-max_value, max_value]), then by global norm.

    Returns the global norm before norm clipping (Pascanu et al. 2013).
    """
    params = [p for p in params if p.grad is not None]
    if max_value is not None:
        torch.nn.utils.clip_grad_value_(params, max_value)
    if max_norm is not None:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return float(torch.nn.utils.get_total_norm([p.grad for p in params])) if params else 0.0
