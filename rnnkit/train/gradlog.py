"""Gradient logging for the trainer: per-layer gradient norms and the fraction of clipped updates.

Switched on with ``TrainConfig(log_grad_norms=True)``; off, the trainer does
nothing extra. On, before each update's clipping the trainer calls
``measure``, which adds for every layer (a module owning parameters, named as
in ``model.named_parameters()`` without the parameter name) the norm of its
gradient, and notes whether clipping will change the update. At each history
row the means since the last row are added as columns

    grad_norm                     the global gradient norm (before clipping), mean over the updates
    grad_norm_max                 its largest value
    clipped                       the fraction of updates that clipping changed
    grad_norm:<layer>             each layer's gradient norm, mean over the updates

so they land in history.csv / history.json, and ``grad_norms.png`` (one line per layer, log scale)
is drawn at the end of fit.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import torch


class GradLog:
    """A trainer callback; the trainer calls ``measure`` itself, just before clipping."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.updates = self.clipped = 0
        self.max_norm = 0.0

    @torch.no_grad()
    def measure(self, model: torch.nn.Module, clip_norm: float | None, clip_value: float | None) -> None:
        squares: dict[str, torch.Tensor] = {}
        big = False
        for name, p in model.named_parameters():
            if p.grad is None:
                continue
            layer = name.rpartition(".")[0] or name
            sq = p.grad.detach().float().pow(2).sum()
            squares[layer] = squares[layer] + sq if layer in squares else sq
            if clip_value is not None:
                big = big or bool(p.grad.abs().max() > clip_value)
        if not squares:
            return
        values = {k: float(v) for k, v in squares.items()}
        total = math.sqrt(sum(values.values()))
        for layer, sq in values.items():
            self.sums[f"grad_norm:{layer}"] += math.sqrt(sq)
        self.sums["grad_norm"] += total
        self.max_norm = max(self.max_norm, total)
        self.clipped += big or (clip_norm is not None and total > clip_norm)
        self.updates += 1

    def on_evaluate(self, trainer, row: dict) -> None:
        """Add the means since the last row to the history row (before the trainer saves it)."""
        if self.updates:
            means = {k: v / self.updates for k, v in self.sums.items()}
            row.update({"grad_norm": means.pop("grad_norm"), "grad_norm_max": self.max_norm,
                        "clipped": self.clipped / self.updates, **dict(sorted(means.items()))})
        self.reset()

    def on_fit_end(self, trainer) -> None:
        if trainer.config.out_dir:
            plot(trainer.history, Path(trainer.config.out_dir) / "grad_norms.png")

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "updates": self.updates, "clipped": self.clipped, "max_norm": self.max_norm}

    def load_state_dict(self, state: dict) -> None:
        self.sums = defaultdict(float, state["sums"])
        self.updates, self.clipped, self.max_norm = state["updates"], state["clipped"], state["max_norm"]


def plot(history, path) -> bool:
    """Per-layer gradient norms (log scale) and the clipped fraction against the update; False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    steps = history.column("step")
    keys = [k for k in history.keys() if k.startswith("grad_norm")]
    if not keys:
        return False
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for k in keys:
        pts = [(s, v) for s, v in zip(steps, history.column(k)) if v is not None]
        if pts:
            a.semilogy(*zip(*pts), marker="o", ms=3, label=k.replace("grad_norm:", "") or k)
    a.set(xlabel="update", ylabel="gradient norm (before clipping)", title="gradient norms")
    a.legend(fontsize=7)
    pts = [(s, v) for s, v in zip(steps, history.column("clipped")) if v is not None]
    if pts:
        b.plot(*zip(*pts), marker="o", ms=3)
    b.set(xlabel="update", ylabel="fraction", title="updates changed by clipping", ylim=(-0.05, 1.05))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
