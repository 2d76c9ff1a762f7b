"""The trainer's evaluations: a history row after each epoch (or every ``eval_every`` updates), and the mean loss
and metrics over validation data, split over the ranks of a process group."""
from __future__ import annotations

import sys
import time
from itertools import chain
from typing import Iterable

import torch
from tqdm.auto import tqdm

from .callbacks import improved
from .history import Mean
from .probing import rows_of
from .progress import fmt
from .tbptt import detach

Plateau = torch.optim.lr_scheduler.ReduceLROnPlateau


class Evaluation:
    """Trainer's evaluation methods (a part of Trainer: they use its model, step, config, group and history)."""

    def end_evaluation(self, val_data, save_last: bool = True) -> dict:
        """Close a history row: training means since the last row, validation, schedule, best and last."""
        c = self.config
        self.elapsed = self.seconds()
        now = time.monotonic() - self.clock   # this process's clock (rank 0's row is the one written)
        row = {"epoch": self.epoch, "step": self.global_step, "time": round(now, 3),
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
        if improved(row[self.monitor], self.best, self.monitor_mode):
            self.best = row[self.monitor]
            self.save("best")
        if save_last:
            self.save("last")
        if c.out_dir and self.lead:
            self.history.save(c.out_dir)
        if self.verbose:
            tqdm.write(f"epoch {self.epoch} step {self.global_step}  {fmt(row)}", file=sys.stderr)
        return row

    @torch.no_grad()
    def evaluate(self, data: Iterable) -> dict[str, float]:
        """Mean loss and metrics over ``data`` in eval mode (state carried across batches if stateful).

        In a group (call it on every rank) each rank evaluates its rows of every batch and the sums are
        added up; data whose batches have no batch dimension (a whole validation set decoded at once) is
        evaluated by rank 0, its result sent to the others."""
        c, g = self.config, self.group
        batches = self.batches(data)
        if g is not None:
            first = next(batches, None)
            batches = chain([] if first is None else [first], batches)
            if first is not None and rows_of(first) is None:   # indivisible: rank 0 evaluates it all
                if g.lead:
                    return g.broadcast(self.evaluate_batches(batches).result(c.loss_metrics))
                for _ in batches:   # the same draws from the shared data generators
                    pass
                return g.broadcast(None)
            batches = (g.shard(b, rows_of(b))[0] for b in batches if g.has_rows(rows_of(b)))
        mean = self.evaluate_batches(batches)
        return (mean if g is None else g.reduce_mean(mean)).result(c.loss_metrics)

    def evaluate_batches(self, batches) -> Mean:
        mean, state, was_training = Mean(), None, self.model.training
        self.model.eval()
        try:
            for batch in batches:
                out = self.step(batch, state if self.config.stateful else None)
                state = detach(out.state)
                mean.add(out.n, float(out.loss), out.metrics)
        finally:
            self.model.train(was_training)
        return mean
