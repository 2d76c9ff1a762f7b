"""Is one backend fastest at every shape? torch's fused op against rnnkit's native kernels, per shape.

    python benchmarks/backend_choice.py [--threads 1] [--out benchmarks/results/backend-choice]

For LSTM and GRU layers at a few widths and batch sizes, training (forward + backward) and
inference (forward), the best of five timed calls on each backend after a warm-up, with a
fresh static-choice layer and a benchmark-mode layer (rnnkit.backends.benchmark) side by side:
its first call (which times the backends) and its steady calls. This is the measurement behind
benchmark mode's default (off, and on in Keras's fit). Writes <out>.json and <out>.txt.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

import rnnkit
from _machine import LOAD_NOTE, now, uptime
from rnnkit import backends

SHAPES = [  # (cell, batch, time, input, hidden)
    ("GRU", 128, 240, 14, 32), ("LSTM", 128, 500, 32, 32),
    ("GRU", 32, 100, 64, 128), ("LSTM", 32, 100, 64, 128),
    ("GRU", 32, 100, 256, 512), ("LSTM", 32, 100, 256, 512),
]


def best_time(call, reps: int = 5) -> float:
    call()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def step(layer, x, train: bool):
    def call():
        if train:
            layer(x).sum().backward()
        else:
            with torch.no_grad():
                layer(x)
    return call


def row(cell: str, B: int, T: int, I: int, H: int, train: bool) -> dict:
    torch.manual_seed(0)
    x = torch.randn(B, T, I)
    out = {"cell": cell, "batch": B, "time": T, "input": I, "hidden": H, "train": train}
    for backend in ("torch", "native"):
        layer = getattr(rnnkit, cell)(H, input_size=I, backend=backend)
        out[backend] = best_time(step(layer, x, train))
    backends.clear()
    with backends.flags(benchmark=True):
        layer = getattr(rnnkit, cell)(H, input_size=I)
        start = time.perf_counter()
        step(layer, x, train)()
        out["benchmark_first_call"] = time.perf_counter() - start
        out["benchmark_choice"] = layer.backend
        out["benchmark_steady"] = best_time(step(layer, x, train))
    out["winner"] = min(("torch", "native"), key=out.get)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/backend-choice")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from rnnkit.kernels import native
    if native.load() is None:
        p.error("the native kernels cannot be built here: nothing to compare")
    started, load_before = now(), uptime()
    rows = [row(*shape, train) for shape in SHAPES for train in (True, False)]
    result = {"started": started, "finished": now(),
              "uptime_before": load_before, "uptime_after": uptime(), "threads": a.threads,
              "machine": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__,
              "command": " ".join(sys.argv),
              "note": LOAD_NOTE, "rows": rows}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = ["torch's fused op vs rnnkit's native kernels per shape (best of 5 calls, ms); benchmark mode's "
             "first call (timing included), its choice and its steady time",
             f"{started} .. {result['finished']}; {a.threads} thread(s), torch {torch.__version__}", LOAD_NOTE,
             f"load before: {load_before}",
             f"load after:  {result['uptime_after']}", "",
             f"{'cell':5} {'B':>4} {'T':>4} {'I':>4} {'H':>4} {'mode':6} {'torch':>8} {'native':>8} {'winner':>7} "
             f"{'bench 1st':>10} {'choice':>7} {'bench':>8}"]
    for r in rows:
        lines.append(f"{r['cell']:5} {r['batch']:4} {r['time']:4} {r['input']:4} {r['hidden']:4} "
                     f"{'train' if r['train'] else 'infer':6} {r['torch'] * 1e3:8.2f} {r['native'] * 1e3:8.2f} "
                     f"{r['winner']:>7} {r['benchmark_first_call'] * 1e3:10.1f} {r['benchmark_choice']:>7} "
                     f"{r['benchmark_steady'] * 1e3:8.2f}")
    lines += ["", f"command: {result['command']}"]
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
