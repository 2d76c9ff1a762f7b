"""glibc malloc settings for the native kernels' large per-batch tensors.

A kernel call allocates several (B, T, n) tensors (the gates, the states entering each step, their
gradients): megabytes each, freed after the backward pass and allocated again at the next batch.
glibc serves blocks above its mmap threshold with fresh mmaps and gives freed heap tops back to the
system (its trim threshold), so every batch pays the page faults of zeroed pages again, and how much
depends on the allocation history (glibc raises its threshold after freeing a large block). Measured
(quiet machine, the Keras GRU's kernel forward and backward, B = 128, T = 240, H = 32, one thread, 9
calls): 18.7 to 30.0 ms a call with glibc's defaults, 18.6 to 19.2 ms with these settings; whole training
runs of the IMDB LSTM (one thread) took 1.06 and 1.62 s/epoch with the defaults. PyTorch's CPU tuning guide
gives the same advice (a caching malloc such as jemalloc or tcmalloc, preloaded).

``keep_freed_memory()`` (called once when the native kernels load) sets the mmap threshold to its
maximum (32 MiB on 64-bit glibc: smaller blocks come from the heap) and the trim threshold to 2 GiB
(freed memory stays with the process for reuse). The price: the process keeps its peak heap of
blocks under 32 MiB. Whole epochs of the Keras benchmark with malloc left alone, against the same code
with the setting (benchmarks/results/keras-speed-*-malloc-default.txt against keras-speed-*.txt, 25
minutes apart): the GRU at two threads 0.575 against 0.379 s/epoch (its three runs 0.43 to 0.60), and
one run in three of each model at one thread 40 to 50% slow. ``RNNKIT_MALLOC=default`` leaves malloc as it
is; other C libraries (musl, macOS) are always left alone. ``STATE`` says what was done.
"""
from __future__ import annotations

import ctypes
import logging
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # glibc's malloc.h
MMAP_THRESHOLD = 32 * 1024 * 1024              # glibc's upper limit on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 2 ** 31 - 1                   # mallopt takes an int

STATE = "not set"   # "kept" (thresholds set), "default (RNNKIT_MALLOC)", "default (not glibc)", "failed"
log = logging.getLogger(__name__)


def setting() -> str:
    """RNNKIT_MALLOC as this process reads it: "keep" (rnnkit's setting, the default) or "default" (malloc left
    alone); ValueError for anything else."""
    value = os.environ.get("RNNKIT_MALLOC", "keep").lower()
    if value not in ("default", "keep"):
        raise ValueError(f"RNNKIT_MALLOC must be 'keep' (rnnkit's setting) or 'default' (malloc left alone), "
                         f"got {value!r}")
    return value


def keep_freed_memory() -> str:
    """Set glibc's mmap and trim thresholds once per process unless RNNKIT_MALLOC=default (module
    docstring); the STATE."""
    global STATE
    if STATE != "not set":
        return STATE
    if setting() == "default":
        STATE = "default (RNNKIT_MALLOC)"
    elif platform.libc_ver()[0] != "glibc":
        STATE = "default (not glibc)"
    else:
        try:
            mallopt = ctypes.CDLL(None).mallopt
            ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        except (OSError, AttributeError):
            ok = False
        STATE = "kept" if ok else "failed"
    log.debug("rnnkit: malloc thresholds for the native kernels: %s", STATE)
    return STATE
