"""Data-parallel training on several processes: torch.distributed and DistributedDataParallel (DDP).

    torchrun --nproc-per-node 2 -m rnnkit train charlm ...          # one machine, 2 processes
    torchrun --nnodes 2 --node-rank R --rdzv-endpoint HOST:PORT --nproc-per-node 2 -m rnnkit train ...

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address; ``session`` opens the process group
from them (``env://``): gloo for CPU tensors, and NCCL for CUDA tensors when a GPU is there. In your own
script, call ``torch.distributed.init_process_group`` before ``Trainer.fit`` and the Trainer does the rest.

How the Trainer splits the work (``Group``):

* Every rank reads the same data and draws the same global batches: the data's random draws (the shuffled
  order) come from generators shared by all ranks (``DataRNG``), separate from the rank's own generators
  (dropout). Rank r trains on rows [r*B//N, (r+1)*B//N) of each global batch of B rows (``shard``), so N
  processes with a global batch B see exactly the examples one process with batch B sees. Stream batches
  (charlm's truncated BPTT) are cut the same way: rank r owns its streams and carries their state.
* Each rank's step returns the mean loss over its n_r items; before backward it is weighted by
  N n_r / (n_1 + ... + n_N), so DDP's gradient average is the mean over all items of the global batch, also
  when B is not a multiple of N. A rank left without rows (a last batch smaller than N) runs one row with
  weight 0, so every rank takes part in every gradient exchange.
* One small all-reduce per update (``reduce_update``) gives every rank the same item count, loss, metrics
  and clock (rank 0's), so every decision (divergence, time limit, schedule, early stopping, best
  checkpoint) is taken in lockstep and no rank waits for one that has left.
* Rank 0 writes the one progress bar, log, history and checkpoint (atomic); the others wait at a barrier.
  The checkpoint holds every rank's carried state and generators, so ``--resume`` with the same number of
  processes continues exactly.
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import UserError
from .rng import rng_state, seed_everything, set_rng_state


class Finished(BaseException):
    """Raised by Trainer.fit on ranks other than 0 under ``rnnkit train``: their work is done, rank 0 goes on
    alone (final evaluation, reports, samples). A BaseException, so a task's ``except Exception`` lets it by."""


_leave_after_fit = False   # set by session(): the CLI's ranks other than 0 stop after fit
_store = None   # session()'s key-value store (first_report), under its own prefix


def launched() -> bool:
    """True in a process started by torchrun (or another launcher) for a group of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def backend() -> str:
    """gloo for CPU tensors; with a GPU, NCCL for CUDA tensors too (one process group serves both)."""
    if torch.cuda.is_available() and dist.is_nccl_available():
        return "cpu:gloo,cuda:nccl"
    return "gloo"


@dataclass(frozen=True)
class Group:
    """The default process group as the Trainer sees it: this process's rank among ``world`` processes."""
    rank: int
    world: int

    @property
    def lead(self) -> bool:
        return self.rank == 0

    # ---- data -------------------------------------------------------------------------------------
    def span(self, rows: int) -> tuple[int, int]:
        """Rows [start, stop) of a global batch of ``rows`` that belong to this rank."""
        return self.rank * rows // self.world, (self.rank + 1) * rows // self.world

    def has_rows(self, rows: int) -> bool:
        start, stop = self.span(rows)
        return stop > start

    def shard(self, batch, rows: int) -> tuple[object, bool]:
        """(this rank's rows of ``batch``, whether they are real): every tensor whose first dimension is
        ``rows`` is cut to this rank's span; other parts are kept whole. A rank whose span is empty gets the
        first row, to be weighted 0."""
        start, stop = self.span(rows)
        real = stop > start
        cut = slice(start, stop) if real else slice(0, 1)
        return map_rows(lambda t: t[cut] if t.dim() and t.shape[0] == rows else t, batch), real

    # ---- collectives ------------------------------------------------------------------------------
    def reduce_update(self, n: int, loss: float, metrics: dict[str, float], elapsed: float):
        """(items, mean loss, mean metrics, rank 0's elapsed seconds) over every rank's part of one update;
        a rank passes n = 0 for rows it must not count."""
        keys = sorted(metrics)
        parts = [n, loss * n if n else 0.0, *(metrics[k] * n if n else 0.0 for k in keys),
                 elapsed if self.lead else 0.0]
        t = torch.tensor(parts, dtype=torch.float64)
        dist.all_reduce(t)
        total = int(round(t[0].item()))
        mean = (lambda v: v / total) if total else (lambda v: 0.0)
        return total, mean(t[1].item()), {k: mean(t[2 + i].item()) for i, k in enumerate(keys)}, t[-1].item()

    def reduce_mean(self, mean):
        """A history.Mean summed over every rank (an evaluation's shards)."""
        from .history import Mean
        total = Mean()
        for part in self.gather(mean.to_dict()):
            for k, v in part["sums"].items():
                total.sums[k] = total.sums.get(k, 0.0) + v
            total.items += part["items"]
            total.steps = max(total.steps, part["steps"])
        return total

    def gather(self, obj) -> list:
        """``obj`` of every rank, in rank order, on every rank (pickled between the processes of this run)."""
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        dist.barrier()

    # ---- the model --------------------------------------------------------------------------------
    def wrap(self, model: torch.nn.Module, loss_fn):
        """DistributedDataParallel over a module whose forward is ``loss_fn(chunk)``: the task's step calls
        its own model, so DDP wraps the whole update's loss (prefix and pieces of TBPTT included) and sees
        the model's parameters. DDP broadcasts rank 0's weights and buffers at construction."""
        device = next(model.parameters(), torch.empty(0)).device
        ids = [device.index if device.index is not None else torch.cuda.current_device()] \
            if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(UpdateLoss(model, loss_fn), device_ids=ids)

    def start_rngs(self, seed: int | None, saved: dict | None) -> "DataRNG":
        """The shared data generators and this rank's own ones, fresh (``seed``) or from a resumed state."""
        ranks = (saved or {}).get("ranks")
        if saved is not None:
            data = DataRNG(saved.get("data_rng") or saved["rng"])
            if ranks and len(ranks) == self.world:
                set_rng_state(ranks[self.rank]["rng"])
            elif self.rank and seed is not None:
                seed_everything(own_seed(seed, self.rank))
            return data
        data = DataRNG(self.broadcast(rng_state()))   # rank 0's: the same order on every rank
        if self.rank and seed is not None:   # dropout masks differ between ranks, as in one process
            seed_everything(own_seed(seed, self.rank))
        return data


def own_seed(seed: int, rank: int) -> int:
    return (seed * 1_000_003 + rank * 7919) % 2**63


class UpdateLoss(torch.nn.Module):
    """The model as a submodule (so DDP syncs its parameters) and one update's loss as forward."""

    def __init__(self, model: torch.nn.Module, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, chunk):
        return self.loss_fn(chunk)


def map_rows(fn, obj):
    """``fn`` applied to every tensor in a nest of tuples, lists and dicts (other values kept)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, (tuple, list)):
        return type(obj)(map_rows(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: map_rows(fn, v) for k, v in obj.items()}
    return obj


class DataRNG:
    """The state of the generators the data pipeline draws from, shared by every rank: each batch is pulled
    with this state swapped in, and the rank's own state (dropout) swapped back afterwards."""

    def __init__(self, state: dict):
        self.state = state

    @contextlib.contextmanager
    def active(self):
        own = rng_state()
        set_rng_state(self.state)
        try:
            yield
        finally:
            self.state = rng_state()
            set_rng_state(own)

    def iterate(self, data):
        with self.active():
            it = iter(data)
        while True:
            with self.active():
                item = next(it, _END)
            if item is _END:
                return
            yield item


_END = object()


def current() -> Group | None:
    """The default process group when there is one with more than one process, else None."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Group(dist.get_rank(), dist.get_world_size())
    return None


def leave_after_fit() -> bool:
    return _leave_after_fit


# ---- the command line under torchrun ----------------------------------------------------------------

def agree(fn):
    """``fn()`` on every rank (e.g. parsing the options); if it raises UserError on any rank, every rank raises
    one: rank 0 reports it (one line; a rank that differs is named), the others stay silent."""
    group = current()
    if group is None:
        return fn()
    try:
        result, error = fn(), None
    except UserError as e:
        result, error = None, str(e)
    errors = group.gather(error)
    if any(e is not None for e in errors):
        failed = [(r, e) for r, e in enumerate(errors) if e is not None]
        if len(failed) == group.world and len({e for _, e in failed}) == 1:
            message = failed[0][1]
        else:
            message = "; ".join(f"rank {r}: {e}" for r, e in failed)
        raise silent(UserError(message), not group.lead)
    return result


def on_lead(fn):
    """``fn()`` on rank 0 only (e.g. checking the output directory), its result or its UserError on every rank
    (reported once, by rank 0)."""
    group = current()
    if group is None:
        return fn()
    verdict = None
    if group.lead:
        try:
            verdict = ("ok", fn())
        except UserError as e:
            verdict = ("error", str(e))
    kind, value = group.broadcast(verdict)
    if kind == "error":
        raise silent(UserError(value), not group.lead)
    return value


def silent(error: UserError, quiet: bool) -> UserError:
    """Mark ``error`` as already reported by rank 0 (the CLI prints nothing for it on this rank)."""
    error.silent = quiet
    return error


@contextlib.contextmanager
def session():
    """Under torchrun (WORLD_SIZE > 1): open the process group (env://), keep ranks other than 0 quiet
    (their stdout and stderr go nowhere; an exception escaping still prints), let them stop after fit, and
    close the group at the end. Outside torchrun it does nothing. Yields the Group or None."""
    global _leave_after_fit, _store
    if not launched():
        yield None
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    # what init_method="env://" does, with the store kept: torch has no public getter for the default group's
    store, rank, world = next(dist.rendezvous("env://", timeout=dist.default_pg_timeout))
    store.set_timeout(dist.default_pg_timeout)
    dist.init_process_group(backend(), store=dist.PrefixStore("default_pg", store), rank=rank, world_size=world)
    _store = dist.PrefixStore("rnnkit", store)
    group = current()
    _leave_after_fit = True
    sink = io.StringIO() if not group.lead else None
    try:
        with contextlib.redirect_stdout(sink) if sink else contextlib.nullcontext(), \
                contextlib.redirect_stderr(sink) if sink else contextlib.nullcontext():
            yield group
    except Finished:
        pass
    except UserError as e:
        if getattr(e, "silent", None) is not None:   # agreed by every rank: leave together, each with status 2
            leave_together(e, group)
        first = first_report(str(e))   # raised by the task itself, on this rank or on all
        e.silent = first is None
        if first is False:
            e.args = (f"rank {group.rank}: {e}",)
        raise
    finally:
        _leave_after_fit, _store = False, None
        dist.destroy_process_group()


def first_report(message: str) -> bool | None:
    """Whether this rank prints ``message``: True for the first rank to fail, False (print it, naming the rank)
    for a later one whose message differs, None (stay silent) for the same message: an error every rank
    meets, such as a malformed data file, is one line. Told through session()'s key-value store; without
    one, rank 0 prints."""
    from datetime import timedelta
    try:
        store = _store
        if store.add("errors", 1) == 1:
            store.set("error", message)
            return True
        store.wait(["error"], timedelta(seconds=5))
        return None if store.get("error").decode() == message else False
    except Exception:   # noqa: BLE001 - no store, or it is gone: rank 0 speaks
        return True if dist.get_rank() == 0 else None


def leave_together(error: UserError, group: Group) -> None:
    """End this process with status 2 after rank 0 has printed ``error``, at the same moment as every other
    rank: torchrun stops the remaining workers as soon as one exits, so leaving one by one would turn their
    status 2 into a SIGTERM. Only for an error every rank agreed on (``agree``, ``on_lead``)."""
    import sys
    if not error.silent:
        print(f"rnnkit: error: {error}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    dist.barrier()
    os._exit(2)
