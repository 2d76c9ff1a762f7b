"""Mini-batches of variable-length examples, padded per batch, similar lengths batched together."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch


class PaddedBatches:
    """Batches of ``examples`` made by ``collate(list_of_examples)``.

    length(example) orders examples: with ``shuffle`` a fresh random order per
    pass (torch's global generator, so a seed fixes it and the trainer can
    replay it on resume), then within each pool of ``pool`` batches the
    examples are sorted by length, so a batch pads little; the batches
    themselves are then shuffled. Without ``shuffle`` (evaluation) batches
    follow the sorted order and ``order`` maps results back.
    """

    def __init__(self, examples: Sequence, collate: Callable, length: Callable, batch_size: int = 32,
                 shuffle: bool = False, pool: int = 50):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.examples, self.collate, self.length = examples, collate, length
        self.batch_size, self.shuffle, self.pool = batch_size, shuffle, pool

    def __len__(self) -> int:
        return math.ceil(len(self.examples) / self.batch_size)

    def batches(self) -> list[list[int]]:
        n, size = len(self.examples), self.batch_size
        if not self.shuffle:
            order = sorted(range(n), key=lambda i: self.length(self.examples[i]))
            return [order[i:i + size] for i in range(0, n, size)]
        order = torch.randperm(n).tolist()
        chunks = []
        for start in range(0, n, size * self.pool):
            pool = sorted(order[start:start + size * self.pool], key=lambda i: self.length(self.examples[i]))
            chunks += [pool[i:i + size] for i in range(0, len(pool), size)]
        return [chunks[i] for i in torch.randperm(len(chunks)).tolist()]

    def __iter__(self):
        for rows in self.batches():
            yield self.collate([self.examples[i] for i in rows])

    def order(self) -> list[int]:
        """The example indices in the order an unshuffled pass yields them."""
        return [i for rows in self.batches() for i in rows]
