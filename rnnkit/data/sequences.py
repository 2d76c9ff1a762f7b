"""Keras's pad_sequences: lists of id sequences -> one (n, maxlen) array."""
from __future__ import annotations

import numpy as np


def pad_sequences(sequences, maxlen: int | None = None, dtype="int32", padding: str = "pre",
                  truncating: str = "pre", value=0.0) -> np.ndarray:
    """(n, maxlen) array of the sequences, padded with ``value`` and cut to ``maxlen`` (Keras's semantics).

    maxlen: None for the longest sequence. padding / truncating: "pre" (default, as Keras: pad or cut
    at the start, so the last steps stay next to the output) or "post". Sequences may hold numbers or
    vectors (then the array is (n, maxlen, ...)).
    """
    for name, v in (("padding", padding), ("truncating", truncating)):
        if v not in ("pre", "post"):
            raise ValueError(f"{name} must be 'pre' or 'post', got {v!r}")
    if maxlen is not None and (not isinstance(maxlen, (int, np.integer)) or maxlen < 0):
        raise ValueError(f"maxlen must be a non-negative integer or None, got {maxlen!r}")
    try:
        seqs = [np.asarray(s) for s in sequences]
    except TypeError:
        raise ValueError("pad_sequences takes a list of sequences (lists or arrays)") from None
    lengths = [len(s) if s.ndim else _not_a_sequence(i) for i, s in enumerate(seqs)]
    maxlen = max(lengths, default=0) if maxlen is None else int(maxlen)
    inner = next((s.shape[1:] for s in seqs if len(s)), ())
    is_text = np.issubdtype(np.dtype(dtype), np.str_) or np.issubdtype(np.dtype(dtype), np.object_)
    if isinstance(value, str) and not is_text:
        raise ValueError(f"value {value!r} is a string but dtype is {dtype}: give dtype=object for text")
    out = np.full((len(seqs), maxlen) + tuple(inner), value, dtype=dtype)
    for i, s in enumerate(seqs):
        if not len(s) or not maxlen:
            continue
        if s.shape[1:] != inner:
            raise ValueError(f"sequence {i} has steps of shape {s.shape[1:]}, the others {inner}")
        s = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if padding == "post":
            out[i, :len(s)] = s
        else:
            out[i, maxlen - len(s):] = s
    return out


def _not_a_sequence(i: int):
    raise ValueError(f"sequence {i} is a single number, not a sequence")
