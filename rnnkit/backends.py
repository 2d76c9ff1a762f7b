"""Switches for how rnnkit's layers choose their backend, after ``torch.backends.cudnn``.

    import rnnkit
    rnnkit.backends.benchmark = True        # time the eligible backends once per shape, keep the fastest
    with rnnkit.backends.flags(benchmark=True):
        model(x)                            # the same, inside the block only

benchmark: False (default) -- each layer runs the static choice of ``rnnkit.kernels.select_backend``
  (torch's fused op where one computes the cell, else the native kernels, the scan or the reference
  loop). True -- a layer built with ``backend="auto"`` times every backend that can run its call
  (torch's fused op, the native kernels, the scan, the reference loop) on the first call of each
  shape key (cell and its options, sizes, layers, directions, dtype, training or not, batch size,
  threads, mask kind; not the sequence length), keeps the fastest for that key in this process, and
  runs it; ``layer.backend`` names what ran. Off by default, as cuDNN's: the first call of each key
  costs a few extra passes, and the winner can differ between runs when two backends are close, so
  the float rounding of a training run can differ between runs. Keras's ``fit``/``evaluate``/``predict``
  turn it on (``compile(jit_compile="auto")``, Keras's own default: a one-time cost for speed after).
  A layer built with ``backend="torch"`` (or any other name) is never timed: it runs that backend.
  Measured (benchmarks/results/backend-choice.txt, one thread): the native GRU kernel beat oneDNN's
  GRU at all six GRU rows (1.07x to 1.83x), oneDNN's LSTM beat the native LSTM at all six LSTM rows,
  benchmark mode picked the winner in all twelve, and its first call cost 14 to 21 steady calls.
  (That file predates the native LSTM's row split over threads and its Embedding fusion, which made it
  the winner in the Keras IMDB model: benchmarks/results/keras-speed-2threads.txt.)
persist: also keep the choices on disk (``$RNNKIT_CACHE/backend-choices.json``, keyed by torch's
  version and the CPU), so a later process reuses them without timing. Off by default.
"""
from __future__ import annotations

import contextlib
import os

benchmark: bool = os.environ.get("RNNKIT_BENCHMARK", "0") == "1"
persist: bool = os.environ.get("RNNKIT_BENCHMARK_PERSIST", "0") == "1"


@contextlib.contextmanager
def flags(benchmark: bool | None = None, persist: bool | None = None):
    """Set the switches inside a ``with`` block (None leaves one as it is); restored on exit."""
    import rnnkit.backends as switches
    old = switches.benchmark, switches.persist
    for name, value in (("benchmark", benchmark), ("persist", persist)):
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"rnnkit.backends.{name} must be True or False, got {value!r}")
    try:
        if benchmark is not None:
            switches.benchmark = benchmark
        if persist is not None:
            switches.persist = persist
        yield
    finally:
        switches.benchmark, switches.persist = old


def choices() -> dict:
    """The choices benchmark mode made in this process: {shape key: backend}."""
    from .layers import autotune
    return dict(autotune.CHOICES)


def clear() -> None:
    """Forget the choices made in this process (the file of ``persist`` is left alone)."""
    from .layers import autotune
    autotune.CHOICES.clear()
