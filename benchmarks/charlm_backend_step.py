"""One training step of charlm's recurrent stack per backend: which cell trains fastest at its size.

    flock /tmp/rnnkit-measure.lock python benchmarks/charlm_backend_step.py [THREADS]

A 2-layer, 512-unit GRU and LSTM (rnnkit.layers, 64-dim inputs, batches of 64 x 100, float32),
forward and backward, on torch's fused op and on rnnkit's native kernel; prints the fastest and
the median of 5 steps after one warm-up. benchmarks/charlm.md uses it to explain why the
LSTM gets more updates than the GRU in charlm's budget.
"""
import sys
import time

import torch

from rnnkit.layers import GRU, LSTM

B, T, I, H = 64, 100, 64, 512


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    for cls in (GRU, LSTM):
        for backend in ("torch", "native"):
            torch.manual_seed(0)
            layer = cls(H, input_size=I, num_layers=2, backend=backend, return_sequences=True)
            x = torch.randn(B, T, I)
            times = []
            for _ in range(6):
                t0 = time.perf_counter()
                out = layer(x)
                (out[0] if isinstance(out, tuple) else out).sum().backward()
                times.append(time.perf_counter() - t0)
            steady = sorted(times[1:])
            print(f"{cls.__name__} {backend} ran {layer.backend}: ms/step min {1000 * steady[0]:.1f} "
                  f"median {1000 * steady[2]:.1f}", flush=True)


if __name__ == "__main__":
    main()
