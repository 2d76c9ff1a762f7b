"""Mini-batches of in-memory tensors, and splitting off validation data."""
from __future__ import annotations

import math

import torch


class TensorBatches:
    """Batches of rows of equally long tensors: yields a tuple (or the tensor, if one) per batch.

    shuffle: a fresh order per pass, drawn from torch's global generator when
    iteration starts (so a seed fixes it, and the trainer can replay it on resume).
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int = 32, shuffle: bool = False):
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError(f"expected tensors with equal first dimensions, got {[tuple(t.shape) for t in tensors]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.tensors[0]) / self.batch_size)

    def __iter__(self):
        n = len(self.tensors[0])
        order = torch.randperm(n) if self.shuffle else None
        for i in range(0, n, self.batch_size):
            rows = slice(i, i + self.batch_size) if order is None else order[i:i + self.batch_size]
            parts = tuple(t[rows] for t in self.tensors)
            yield parts[0] if len(parts) == 1 else parts


def split(tensors: tuple[torch.Tensor, ...], fraction: float) -> tuple[tuple, tuple]:
    """(train, validation): the last ``fraction`` of the rows is validation, as Keras's validation_split."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {fraction}")
    n = len(tensors[0])
    cut = n - int(round(n * fraction))
    if cut <= 0 or cut >= n:
        raise ValueError(f"validation_split={fraction} of {n} samples leaves an empty training or validation set")
    return tuple(t[:cut] for t in tensors), tuple(t[cut:] for t in tensors)
