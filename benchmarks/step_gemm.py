"""Where the native LSTM/GRU kernels' own small matmul beats torch's BLAS for the per-step product.

    flock /tmp/rnnkit-measure.lock python benchmarks/step_gemm.py --out benchmarks/results/step-gemm-2threads.txt

For each size, a native LSTM or GRU layer (input width = H, float32) trains forward and backward on
"small" (csrc/common.h small_gemm, rows split over torch's threads) and on "blas" (one at::mm per step on
the whole batch), the two taking turns (--turns turns of 5 steps each, the first step of each turn dropped
as warm-up); the figure is the median of the timed steps. The bound in common.h make_plan comes from this table.
"""
from __future__ import annotations

import statistics
import sys
import time

import torch

import rnnkit
from _machine import now, timed_options, uptime
from rnnkit.kernels import native
from rnnkit.train.checkpoint import atomic_write

SIZES = [("LSTM", 8, 100, 128), ("LSTM", 32, 100, 64), ("LSTM", 128, 100, 64), ("LSTM", 32, 100, 128),
         ("LSTM", 128, 100, 128), ("LSTM", 64, 100, 256), ("LSTM", 64, 100, 512), ("GRU", 8, 100, 128),
         ("GRU", 32, 100, 64), ("GRU", 128, 100, 64), ("GRU", 128, 100, 128), ("GRU", 64, 100, 256),
         ("GRU", 64, 100, 512), ("LSTM", 128, 240, 32), ("GRU", 128, 240, 32)]


def step_ms(gemm: str, cell: str, B: int, T: int, H: int, rounds: int) -> list[float]:
    native.STEP_GEMM = gemm
    torch.manual_seed(0)
    layer = getattr(rnnkit, cell)(H, input_size=H, backend="native")
    x = torch.randn(B, T, H, requires_grad=True)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        layer(x).sum().backward()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main(argv=None) -> int:
    a, out = timed_options(__doc__.splitlines()[0], "turns of 5 steps per backend and size", argv)
    torch.set_num_threads(a.threads)
    if native.load() is None:
        sys.exit("the native kernels are not available here")
    lines = [f"native step matmul: small (row split) vs blas, training step (forward + backward), {a.threads} threads",
             f"{now()}; load before: {uptime()}", "", f"{'cell':5} {'B x T x H':>13} {'small ms':>9} {'blas ms':>8}"
             f" {'blas/small':>10}"]
    for cell, B, T, H in SIZES:
        runs = {"small": [], "blas": []}
        for gemm in ("small", "blas") * a.turns:   # turns, so a burst of load hits both
            runs[gemm] += step_ms(gemm, cell, B, T, H, 5)[1:]
        small, blas = statistics.median(runs["small"]), statistics.median(runs["blas"])
        lines.append(f"{cell:5} {f'{B}x{T}x{H}':>13} {small:9.1f} {blas:8.1f} {blas / small:10.2f}")
        print(lines[-1], flush=True)
    lines += ["", f"load after: {uptime()}", f"command: {' '.join(sys.argv)}",
              f"torch {torch.__version__}, rnnkit {rnnkit.__version__}; {4 * a.turns} timed steps per backend "
              f"({a.turns} turns of 5, the first of each dropped as warm-up); median"]
    atomic_write(out, ("\n".join(lines) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
