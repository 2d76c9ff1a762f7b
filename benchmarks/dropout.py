"""torch's CPU dropout against rnnkit's (kernels/drop.py): the mask alone, and the charlm's training update.

    flock /tmp/rnnkit-measure.lock python benchmarks/dropout.py --out benchmarks/results/dropout-cpu.txt

"mask": dropout forward and backward on 64 x 100 x 512 activations, F.dropout against kernels.dropout.
"update": one training update of the charlm's LSTM 2 x 512 (64-dim embedding, dropout 0.2, AdamW, bf16 autocast
where the CPU has native bf16; the defaults before the seventh round of benchmarks/charlm.md, on batches of 64
and of 32 x 100) on random characters, with rnnkit as it was
(torch's dropout everywhere, the stack in one fused call that draws its own between-layer masks) against
rnnkit now (one fused call per layer, rnnkit's masks). The two take turns; the figure is the median.
"""
from __future__ import annotations

import statistics
import sys
import time

import torch
import torch.nn.functional as F

import rnnkit
from _machine import now, timed_options, uptime
from rnnkit import kernels
from rnnkit.kernels import drop, fused
from rnnkit.models.charlm import CharLM, CharLMConfig
from rnnkit.tasks.charlm import native_bf16
from rnnkit.train.checkpoint import atomic_write

NOW = (kernels.dropout, fused.run)


def torch_dropout(x, p, training=True):
    return F.dropout(x, p, training)


def use(which: str) -> None:
    """"before": torch's dropout and one fused call for the stack; "now": this rnnkit."""
    kernels.dropout, fused.run = (torch_dropout, fused.one_call) if which == "before" else NOW


def mask_ms(which: str, x: torch.Tensor, reps: int = 5) -> list[float]:
    f = torch_dropout if which == "before" else drop.dropout
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f(x, 0.2, True).float().sum().backward()
        times.append((time.perf_counter() - start) * 1000)
    return times


def update_ms(which: str, model, opt, ids, bf16: bool, reps: int) -> list[float]:
    use(which)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, _ = model(ids[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append((time.perf_counter() - start) * 1000)
    use("now")
    return times


def main(argv=None) -> int:
    a, out = timed_options(__doc__.splitlines()[0], "turns per variant", argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    bf16 = native_bf16()
    lines = [f"dropout on the CPU: torch's (before) against rnnkit's kernels.dropout (now); {a.threads} threads",
             f"{now()}; load before: {uptime()}", "", f"{'what':40} {'before ms':>10} {'now ms':>8} {'before/now':>10}"]

    def row(what, runs):
        before, after = statistics.median(runs["before"]), statistics.median(runs["now"])
        lines.append(f"{what:40} {before:10.1f} {after:8.1f} {before / after:10.2f}")
        print(lines[-1], flush=True)

    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(64, 100, 512, dtype=dtype, requires_grad=True)
        runs = {"before": [], "now": []}
        for which in ("before", "now") * a.turns:
            runs[which] += mask_ms(which, x)[1:]
        row(f"mask, 64 x 100 x 512, {str(dtype)[6:]}", runs)
    for batch in (64, 32):
        model = CharLM(CharLMConfig(vocab_size=66, cell="lstm", hidden_size=512, num_layers=2, embedding_dim=64,
                                    dropout=0.2)).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        ids = torch.randint(0, 66, (batch, 101))
        runs = {"before": [], "now": []}
        for which in ("before", "now") * a.turns:
            runs[which] += update_ms(which, model, opt, ids, bf16, 4)[1:]
        row(f"charlm update, {batch} x 100, {'bf16' if bf16 else 'fp32'}", runs)
    lines += ["", f"load after: {uptime()}", f"command: {' '.join(sys.argv)}",
              f"torch {torch.__version__}, rnnkit {rnnkit.__version__}; {a.turns} turns per variant, the first "
              "repetition of each turn dropped as warm-up; median (masks: 4 per turn, updates: 3 per turn)"]
    atomic_write(out, ("\n".join(lines) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
