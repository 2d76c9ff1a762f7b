"""keras.utils on rnnkit: pad_sequences and to_categorical."""
from __future__ import annotations

import numpy as np

from ..data.sequences import pad_sequences


def to_categorical(y, num_classes: int | None = None, dtype="float32") -> np.ndarray:
    """Class ids (...) -> one-hot (..., num_classes), as Keras."""
    y = np.asarray(y)
    if y.size and (y.min() < 0 or not np.all(y == np.round(y))):
        raise ValueError("to_categorical takes non-negative integer class ids")
    y = y.astype(int)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    n = int(y.max()) + 1 if num_classes is None else num_classes
    if y.size and y.max() >= n:
        raise ValueError(f"class id {int(y.max())} does not fit num_classes={n}")
    return np.eye(n, dtype=dtype)[y]


__all__ = ["pad_sequences", "to_categorical"]
