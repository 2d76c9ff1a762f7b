"""Truncated backpropagation through time (Williams & Peng 1990): chunks, windows, carried state.

A batch is a tensor, or a tuple / list / dict of tensors, each with time at
dim 1: (B, T, ...). TBPTT(k1, k2) makes one update every k1 steps and
backpropagates through the last k2: the step function sees a window of the
last k2 steps, starting from the detached state before the window, and counts
the loss on its last k1 steps only (``tail``). With k1 == k2 every window is
one chunk and the state is simply carried, detached, from chunk to chunk.
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
    """The state carried between updates, and for k2 > k1 the window of past chunks.

    ``state`` is the detached state after the last chunk; ``past`` holds up to
    k2/k1 - 1 (chunk, state before that chunk) pairs.
    """

    def __init__(self, k1: int | None = None, k2: int | None = None):
        self.span = 1 if k1 is None else k2 // k1
        self.reset()

    def reset(self) -> None:
        self.state: Any = None
        self.past: deque = deque(maxlen=max(self.span - 1, 0))

    def window(self, chunk):
        """(window, state before the window, tail): what the step function sees for this chunk."""
        if self.span == 1:
            return chunk, self.state, None
        window = time_cat([c for c, _ in self.past] + [chunk])
        start = self.past[0][1] if self.past else self.state
        return window, start, time_length(chunk)

    def push(self, chunk, new_state) -> None:
        """Record a chunk just trained on and the state after it."""
        if self.span > 1:
            self.past.append((chunk, self.state))
        self.state = detach(new_state)

    def to_dict(self) -> dict:
        return {"state": self.state, "past": [list(p) for p in self.past]}

    def load_dict(self, d: dict) -> None:
        self.state = d["state"]
        self.past.clear()
        self.past.extend(tuple(p) for p in d["past"])
