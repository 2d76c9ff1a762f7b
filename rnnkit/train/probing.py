"""What the trainer finds out about a model and its data before training: layers still without weights (sized
at their first call), the rows of a batch, the first batch."""
from __future__ import annotations

import torch

from .rng import rng_state, set_rng_state


def unbuilt_layers(model: torch.nn.Module) -> list[str]:
    """The names of the layers of ``model`` whose weights do not exist yet (input size inferred at the
    first call: rnnkit layers with ``input_size`` None, torch's Lazy* modules)."""
    return [name or type(m).__name__ for name, m in model.named_modules()
            if (callable(getattr(m, "build", None)) and "input_size" in dir(m) and getattr(m, "input_size") is None)
            or any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in m.parameters(recurse=False))]


def rows_of(batch) -> int | None:
    """The first dimension of the first tensor in a batch (None for a batch without one)."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else None
    if isinstance(batch, (tuple, list, dict)):
        for part in batch.values() if isinstance(batch, dict) else batch:
            rows = rows_of(part)
            if rows is not None:
                return rows
    return None


def first_batch(data):
    """The first batch of ``data``, the random generators left as they were (a shuffled order is drawn anew)."""
    rng = rng_state()
    try:
        batch = next(iter(data), None)
    finally:
        set_rng_state(rng)
    if batch is None:
        raise ValueError("the training data is empty")
    return batch
