"""How a mask flows through a Sequential (Keras's rules, with errors instead of silent drops).

A mask is a bool (B, T) tensor, True at real steps. A layer *makes* or *changes*
a mask with ``compute_mask(x, mask)`` (Embedding(mask_zero=True), Masking,
pooling that consumes it); a layer that *takes* a mask has
``supports_masking = True`` and accepts ``mask=`` in forward. Sequence layers
take it and pass it on only when they return sequences. A layer that cannot
take a mask raises instead of silently ignoring the padding.
"""
from __future__ import annotations

import torch

from .base import SequenceLayer


def takes_mask(layer) -> bool:
    return isinstance(layer, SequenceLayer) or getattr(layer, "supports_masking", False)


def output_mask(layer, x, mask):
    """The mask of ``layer``'s output given its input ``x`` and input ``mask``."""
    if hasattr(layer, "compute_mask"):
        return layer.compute_mask(x, mask)
    if isinstance(layer, SequenceLayer):
        return mask if layer.return_sequences else None
    return mask   # supports_masking layers that keep the time axis (Dense, Dropout, Activation)


def call(layer, x, mask, **options):
    """(output, output mask) of one layer; ``options`` go to its forward."""
    if mask is None:
        return layer(x, **options), output_mask(layer, x, None)
    if not takes_mask(layer):
        raise ValueError(f"{type(layer).__name__} does not support masking, but the layers before it pass a mask "
                         "(Embedding(mask_zero=True) or Masking): put it before the masking layer, or consume "
                         "the mask first (a recurrent layer without return_sequences, a global pooling)")
    return layer(x, mask=mask, **options), output_mask(layer, x, mask)


def masked_fill_steps(x: torch.Tensor, mask: torch.Tensor | None, value: float) -> torch.Tensor:
    """x (B, T, F) with the masked steps replaced by ``value`` (a select: NaN in padding never leaks)."""
    return x if mask is None else torch.where(mask[:, :, None], x, torch.as_tensor(value, dtype=x.dtype))
