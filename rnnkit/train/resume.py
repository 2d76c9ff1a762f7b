"""The trainer's checkpoints: what it saves (everything needed to continue exactly) and how a run resumes from
one, on this run's schedule."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..errors import UserError
from .checkpoint import load_checkpoint, restore_model, save_checkpoint
from .history import History
from .optim import LRFactor
from .probing import first_batch, rows_of
from .rng import rng_state, set_rng_state


class Checkpoints:
    """Trainer's checkpoint methods (a part of Trainer: they use its model, optimizer, schedule and position)."""

    def check_batch_rows(self, path, train_data) -> None:
        """A stateful run carries one state row per stream: resuming on batches of another size is refused."""
        if self.config.stateful and self.batch_rows is not None:
            rows = rows_of(first_batch(train_data))
            if rows != self.batch_rows:
                raise UserError(f"checkpoint {path} was trained on batches of {self.batch_rows} streams and carries "
                                f"their state; these batches have {rows}: resume with the same batch size")

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: position, RNGs, optimizer, schedule, carried state."""
        return {"train_config": asdict(self.config), "epoch": self.epoch, "batch": self.batch,
                "global_step": self.global_step, "elapsed": self.elapsed, "best": self.best,
                "losses": self.losses, "history": self.history.rows, "mean": self.mean.to_dict(),
                "carry": self.carry.to_dict(), "optimizer_type": type(self.optimizer).__name__,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None for cb in self.callbacks],
                "rng": rng_state(), "epoch_rng": self.epoch_rng,
                "batch_rows": self.batch_rows}

    def save(self, name: str) -> None:
        """Write ``<out_dir>/<name>.safetensors`` (nothing without out_dir). In a group (called on every rank)
        rank 0 writes, with every rank's carried state and generators, while the others wait."""
        if not self.config.out_dir:
            return
        g = self.group
        ranks = g.gather({"carry": self.carry.to_dict(), "rng": rng_state()}) if g is not None else None
        if self.lead:
            state = self.state_dict()
            if g is not None:
                state.update(world_size=g.world, ranks=ranks, data_rng=self.data_rng.state)
            save_checkpoint(Path(self.config.out_dir) / f"{name}.safetensors", self.model.state_dict(),
                            {"trainer": state}, self.task_config)
        if g is not None:
            g.barrier()

    def restore(self, path) -> None:
        """Continue from a checkpoint written by ``save``; a checkpoint of another setup, or a training state
        that was tampered with, raises UserError."""
        ck = load_checkpoint(path)
        s = ck.state.get("trainer")
        if not isinstance(s, dict):
            raise UserError(f"{path} holds weights only, not a training state to resume from")
        restore_model(self.model, ck)
        try:
            self.restore_state(path, s)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            if isinstance(e, UserError):
                raise
            raise UserError(f"checkpoint {path} has a malformed training state ({type(e).__name__}: "
                            f"{str(e)[:80]})") from None

    def restore_schedule(self, state: dict, elapsed: float) -> None:
        """The saved schedule at its saved step, on this run's length: its updates (a run resumed with more
        epochs or max_steps anneals over all of them) and its time budget (none: the steps alone), the rate
        of the next update included. So the rest of the run follows the schedule an uninterrupted run with
        these options follows from the same step."""
        factors = [f for f in getattr(self.scheduler, "lr_lambdas", ()) if isinstance(f, LRFactor)]
        totals = [f.total for f in factors]
        self.scheduler.load_state_dict(state)
        if not factors:
            return
        minutes = self.config.max_minutes
        for f, total in zip(factors, totals):
            f.total, f.time_fraction = total, elapsed / (60 * minutes) if minutes else 0.0
        for group, base, f in zip(self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas):
            group["lr"] = base * f(self.scheduler.last_epoch)

    def restore_state(self, path, s: dict) -> None:
        if s["optimizer_type"] != type(self.optimizer).__name__:
            raise UserError(f"checkpoint {path} was trained with {s['optimizer_type']}, "
                            f"not {type(self.optimizer).__name__}")
        try:
            self.optimizer.load_state_dict(s["optimizer"])
            self.restore_schedule(s["scheduler"], s["elapsed"])
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
        self.batch_rows = s.get("batch_rows")
        set_rng_state(s["rng"])
        world, saved = self.group.world if self.group is not None else 1, s.get("world_size", 1)
        if saved != world and self.config.stateful and self.batch:
            raise UserError(f"checkpoint {path} was saved by {saved} process{'es' if saved > 1 else ''} in the "
                            f"middle of an epoch and carries the state of each one's streams: resume it with "
                            f"{saved} process{'es' if saved > 1 else ''}, not {world}")
        self.resumed = s   # the rest of a group's state: start_group
