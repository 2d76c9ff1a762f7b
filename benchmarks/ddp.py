"""Data-parallel throughput on this machine, and what more machines would give (benchmarks/ddp.md).

    flock /tmp/rnnkit-measure.lock python benchmarks/ddp.py run [--minutes 0.75] [--name NAME]
        trains charlm and classify with their defaults for a short time budget, twice each through the CLI:
        1 process x 2 threads (python -m rnnkit train ..., OMP_NUM_THREADS=2) and 2 processes x 1 thread
        (torchrun --nproc-per-node 2 -m rnnkit train ..., OMP_NUM_THREADS=1), the global batch the same.
        Throughput is the items (characters, texts) of the updates in the first history row over its training
        time (measured by the Trainer from the start of fit to that row, before any validation; the first
        update's warm-up included in both). Writes benchmarks/results/ddp-NAME.json with the parameter count
        of each default model (from its checkpoint), the load (uptime) and dates before and after.
    python benchmarks/ddp.py paper benchmarks/results/ddp-NAME.json
        communication per update (ring all-reduce of the fp32 gradients) on 10 and 100 Gb/s links against the
        compute per update measured here: the table of benchmarks/ddp.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import ISO, LOCKED_NOTE, stamp

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NOTE = LOCKED_NOTE
TASKS = {   # task: (extra options, items per update with the defaults, what an item is)
    "charlm": (["--sample-length", "0"], 64 * 100, "characters"),
    "classify": (["--epochs", "1"], 32, "texts"),
}
LAYOUTS = {"1 process x 2 threads": (1, 2), "2 processes x 1 thread": (2, 1)}


def train(task: str, procs: int, threads: int, minutes: float, out: Path) -> dict:
    extra, per_update, item = TASKS[task]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs)]
                if procs > 1 else [sys.executable])
    command = [*launcher, "-m", "rnnkit", "train", task, "--minutes", str(minutes), "--out", str(out), "--quiet",
               *extra]
    start = time.monotonic()
    r = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - start
    if r.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{r.stderr[-3000:]}")
    row = json.loads((out / "history.json").read_text())[0]
    from safetensors import safe_open
    with safe_open(str(out / "last.safetensors"), "pt") as f:
        params = sum(_numel(f.get_slice(k).get_shape()) for k in f.keys() if k.startswith("model."))
    return {"processes": procs, "threads_each": threads, "updates": row["step"], "train_seconds": row["time"],
            "seconds_per_update": row["time"] / row["step"], "items_per_update": per_update, "item": item,
            "items_per_second": row["step"] * per_update / row["time"], "parameters": params,
            "process_wall_seconds": round(wall, 1), "command": " ".join(command[command.index("-m", 1):])}


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def run(minutes: float, name: str) -> None:
    before = stamp(ISO)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in TASKS:
            for layout, (procs, threads) in LAYOUTS.items():
                out = Path(tmp) / f"{task}-{procs}"
                runs.setdefault(task, {})[layout] = r = train(task, procs, threads, minutes, out)
                print(f"{task:9s} {layout}: {r['updates']} updates in {r['train_seconds']:.1f} s, "
                      f"{r['items_per_second']:,.0f} {r['item']}/s", flush=True)
    after = stamp(ISO)
    for task, layouts in runs.items():
        one, two = layouts["1 process x 2 threads"], layouts["2 processes x 1 thread"]
        layouts["speedup of 2 processes"] = round(two["items_per_second"] / one["items_per_second"], 3)
    import torch

    from rnnkit.train.checkpoint import atomic_write
    record = {"name": name, "minutes_each": minutes, "before": before, "after": after, "note": NOTE,
              "torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "runs": runs}
    path = RESULTS / f"ddp-{name}.json"
    atomic_write(path, json.dumps(record, indent=1).encode())
    print(f"written {path}")


LINKS = {"10 Gb/s": 10e9 / 8, "100 Gb/s": 100e9 / 8}
LATENCY = 50e-6   # seconds per message on TCP between machines (an assumption, stated in ddp.md)


def allreduce_seconds(nbytes: float, machines: int, bandwidth: float) -> float:
    """Ring all-reduce: each machine sends and receives 2 (N - 1) / N of the buffer in 2 (N - 1) messages."""
    if machines < 2:
        return 0.0
    return 2 * (machines - 1) / machines * nbytes / bandwidth + 2 * (machines - 1) * LATENCY


def paper(path: str) -> None:
    record = json.loads(Path(path).read_text())
    print(f"from {path} (compute per update: 1 process x 2 threads, measured here)\n")
    print("| task | parameters | gradient MB | compute s/update | machines | link | all-reduce s | "
          "same global batch: speedup | batch per machine: efficiency |")
    print("|---|---|---|---|---|---|---|---|---|")
    for task, layouts in record["runs"].items():
        one = layouts["1 process x 2 threads"]
        nbytes, compute = 4 * one["parameters"], one["seconds_per_update"]
        for machines in (2, 4, 8, 16):
            for link, bandwidth in LINKS.items():
                comm = allreduce_seconds(nbytes, machines, bandwidth)
                strong = compute / (compute / machines + comm)   # the global batch split N ways
                weak = compute / (compute + comm)                # each machine keeps the whole batch
                print(f"| {task} | {one['parameters']:,} | {nbytes / 1e6:.2f} | {compute:.3f} | {machines} | {link} | "
                      f"{comm * 1e3:.2f} ms | {strong:.2f}x | {weak:.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--minutes", type=float, default=0.75, help="training budget of each run (default 0.75)")
    r.add_argument("--name", default=time.strftime("%Y%m%d"), help="result file name: ddp-NAME.json")
    p = sub.add_parser("paper")
    p.add_argument("result")
    args = parser.parse_args()
    if args.command == "run":
        run(args.minutes, args.name)
    else:
        paper(args.result)


if __name__ == "__main__":
    main()
