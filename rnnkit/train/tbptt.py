"""Truncated backpropagation through time (Williams & Peng 1990): chunks, windows, carried state.

A batch is a tensor, or a tuple / list / dict of tensors, each with time at
dim 1: (B, T, ...). TBPTT(k1, k2) makes one update every k1 steps, and the
gradient of that update reaches back k2 steps from its last step. Every
(k1, k2) works with the plain step function ``step(batch, state)``:

* k2 == k1: each chunk of k1 steps starts from the detached state after the
  previous chunk (the common case; with k1 == T it is full BPTT).
* k2 > k1: the k2 - k1 steps before the chunk (the *prefix*) are run again
  from the detached state before them, with gradients, and the chunk starts
  from the prefix's state. The update uses the chunk's loss only; the step
  function's loss on the prefix is computed and discarded.
* k2 < k1: the chunk is run in pieces of k2 steps, the state detached between
  pieces; the update uses the loss of the whole chunk (the mean over all its
  items), but no gradient travels further back than k2 steps.
"""
from __future__ import annotations

from collections import deque
from typing import Any

import torch


def map_tensors(fn, obj):
    """Apply ``fn`` to every tensor in a nest of tuples, lists and dicts."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, (tuple, list)):
        return type(obj)(map_tensors(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: map_tensors(fn, v) for k, v in obj.items()}
    return obj


def detach(state):
    """The state cut from the graph that made it (values kept)."""
    return map_tensors(torch.Tensor.detach, state)


def first_tensor(batch) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch
    for part in batch.values() if isinstance(batch, dict) else batch:
        return first_tensor(part)
    raise ValueError("a batch must hold at least one tensor")


def time_length(batch) -> int:
    return first_tensor(batch).shape[1]


def time_chunks(batch, k: int) -> list:
    """The batch cut along time (dim 1) into chunks of k steps (the last may be shorter)."""
    T = time_length(batch)
    return [map_tensors(lambda t: t[:, i:i + k], batch) for i in range(0, T, k)]


def time_slice(batch, start: int, stop: int | None):
    """Steps [start, stop) of every tensor in the batch."""
    return map_tensors(lambda t: t[:, start:stop], batch)


def time_cat(chunks: list):
    """Chunks joined back along time; the inverse of time_chunks."""
    if len(chunks) == 1:
        return chunks[0]
    first = chunks[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(chunks, 1)
    if isinstance(first, dict):
        return {k: time_cat([c[k] for c in chunks]) for k in first}
    return type(first)(time_cat([c[i] for c in chunks]) for i in range(len(first)))


class Carry:
    """The state carried between updates, and for k2 > k1 the recent chunks the prefix is cut from.

    ``state`` is the detached state after the last chunk; ``past`` holds
    (chunk, detached state before that chunk) pairs covering at least the
    last k2 - k1 steps.
    """

    def __init__(self, k1: int | None = None, k2: int | None = None):
        self.prefix = 0 if k1 is None else max(k2 - k1, 0)
        self.reset()

    def reset(self) -> None:
        self.state: Any = None
        self.past: deque = deque()

    def start(self, step):
        """(prefix, state before it) for the next chunk: the last k2 - k1 steps seen, or (None, state).

        When the oldest kept chunk reaches further back than needed, its first
        steps are run through ``step`` without gradients to get the state where
        the prefix begins."""
        if not self.prefix or not self.past:
            return None, self.state
        chunks = [c for c, _ in self.past]
        extra = sum(time_length(c) for c in chunks) - self.prefix
        state = self.past[0][1]
        if extra > 0:
            head, chunks[0] = time_slice(chunks[0], 0, extra), time_slice(chunks[0], extra, None)
            with torch.no_grad():
                state = detach(step(head, state).state)
        return time_cat(chunks), state

    def push(self, chunk, new_state) -> None:
        """Record a chunk just trained on and the state after it."""
        if self.prefix:
            self.past.append((chunk, self.state))
            while sum(time_length(c) for c, _ in self.past) - time_length(self.past[0][0]) >= self.prefix:
                self.past.popleft()
        self.state = detach(new_state)

    def to_dict(self) -> dict:
        return {"state": self.state, "past": [list(p) for p in self.past]}

    def load_dict(self, d: dict) -> None:
        self.state = d["state"]
        self.past.clear()
        self.past.extend(tuple(p) for p in d["past"])
