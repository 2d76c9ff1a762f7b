"""A Keras model ported to rnnkit against the same model on Keras 3 (JAX and torch backends), side by side.

    python benchmarks/keras_speed.py --keras-python /tmp/kerasenv/bin/python [--quick]

Models (the course notes' and Chollet's): "imdb-lstm" Embedding(10000, 32) + LSTM(32) + Dense(1, sigmoid),
rmsprop, binary_crossentropy, metrics=["acc"], batch 128, sequences of 500 ids; "temperature-gru"
GRU(32) + Dense(1) on (240, 14) float windows, rmsprop, mae, batch 128. Same generated data, same
batches and epochs in every framework; the figure is the median time of the epochs after the first
(the first carries compilation and warm-up), and its ratio to rnnkit's. Keras runs in its own
interpreter (keras and jax are installed only in that environment); every framework gets the same
number of threads and is pinned to as many cores (taskset). With --repeats N each framework runs N times,
taking turns, and the figure is the median of the runs' medians. Writes benchmarks/results/keras-speed.json and .txt.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _machine import LOAD_NOTE, now, uptime

MODELS = {
    "imdb-lstm": dict(samples=2560, T=500, vocab=10000, batch=128),
    "temperature-gru": dict(samples=2560, T=240, features=14, batch=128),
}


def data(name: str, quick: bool):
    m = dict(MODELS[name])
    if quick:
        m["samples"], m["T"] = 512, m["T"] // 5
    rng = np.random.default_rng(0)
    if name == "imdb-lstm":
        x = rng.integers(1, m["vocab"], size=(m["samples"], m["T"])).astype("int32")
        y = rng.integers(0, 2, size=(m["samples"], 1)).astype("float32")
    else:
        x = rng.normal(size=(m["samples"], m["T"], m["features"])).astype("float32")
        y = rng.normal(size=(m["samples"], 1)).astype("float32")
    return m, x, y


def build(name: str, L, Sequential, m):
    """The same Keras program for both: L is keras.layers or rnnkit.keras.layers."""
    model = Sequential()
    if name == "imdb-lstm":
        model.add(L.Embedding(m["vocab"], 32))
        model.add(L.LSTM(32))
        model.add(L.Dense(1, activation="sigmoid"))
        model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    else:
        model.add(L.GRU(32, input_shape=(None, m["features"])))
        model.add(L.Dense(1))
        model.compile(optimizer="rmsprop", loss="mae")
    return model


def run(framework: str, name: str, epochs: int, quick: bool, threads: int) -> dict:
    """Train one model for ``epochs`` epochs in this process; the epoch times."""
    m, x, y = data(name, quick)
    ends = []
    if framework == "rnnkit":
        import torch
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        from rnnkit.keras import callbacks, layers
        from rnnkit.keras.models import Sequential
        base = callbacks.Callback
    else:
        import keras
        if keras.backend.backend() == "torch":
            import torch
            torch.set_num_threads(threads)
        keras.utils.set_random_seed(0)
        from keras import callbacks, layers
        from keras.models import Sequential
        base = callbacks.Callback

    class Clock(base):  # wall and CPU (this process, all threads) time at each epoch's end
        def on_train_begin(self, logs=None):
            ends.append((time.perf_counter(), time.process_time()))

        def on_epoch_end(self, epoch, logs=None):
            ends.append((time.perf_counter(), time.process_time()))

    model = build(name, layers, Sequential, m)
    history = model.fit(x, y, batch_size=m["batch"], epochs=epochs, shuffle=True, verbose=0, callbacks=[Clock()])
    times = [b[0] - a[0] for a, b in zip(ends, ends[1:])]
    cpu = [b[1] - a[1] for a, b in zip(ends, ends[1:])]
    # what ran: the backend, and "(emb)" where the native LSTM read the Embedding's projected table
    backends = [None if getattr(layer, "backend", None) is None else
                layer.backend + ("(emb)" if getattr(layer, "fused_embedding", False) else "")
                for layer in model] if framework == "rnnkit" else None
    return {"framework": framework, "rnnkit_backends": backends, "model": name, "epoch_s": times, "steady_epoch_s": statistics.median(times[1:]),
            "cpu_epoch_s": cpu, "steady_cpu_epoch_s": statistics.median(cpu[1:]),
            "final_loss": float(history.history["loss"][-1]), **{k: v for k, v in m.items()}}


def worker(python: str, framework: str, name: str, epochs: int, quick: bool, threads: int) -> dict:
    """Run one framework in its own process, pinned to ``threads`` cores (taskset) with as many threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if framework != "rnnkit":
        env.update(KERAS_BACKEND=framework.split("-")[1], PYTHONPATH="")
        if threads == 1:
            env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    cmd = ["taskset", "-c", f"0-{threads - 1}", python, __file__, "--worker", name, "--framework", framework,
           "--epochs", str(epochs), "--threads", str(threads)] + (["--quick"] if quick else [])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{framework} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["framework"] = framework
    if framework != "rnnkit":
        versions = subprocess.run([python, "-c", "import keras, jax, torch; print('keras', keras.__version__, "
                                   "'jax', jax.__version__, 'torch', torch.__version__)"], env=env,
                                  capture_output=True, text=True)
        out["versions"] = versions.stdout.strip()
    return out


def combine(runs: list[dict]) -> dict:
    """One row from repeated runs of a framework: the first run's fields, the median of the runs' median
    epochs (wall and CPU), and every run's median (``runs_steady_epoch_s``, ``runs_steady_cpu_epoch_s``)."""
    row = dict(runs[0])
    for key in ("steady_epoch_s", "steady_cpu_epoch_s"):
        row[f"runs_{key}"] = [r[key] for r in runs]
        row[key] = statistics.median(row[f"runs_{key}"])
    row["runs_epoch_s"] = [r["epoch_s"] for r in runs]
    row["runs_rnnkit_backends"] = [r.get("rnnkit_backends") for r in runs]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keras-python", default="/tmp/kerasenv/bin/python", help="interpreter with keras and jax")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--epochs", type=int, default=4, help="epochs per run (the first is warm-up)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--keras-backends", nargs="+", default=["jax", "torch"], choices=["jax", "torch"],
                   help="Keras 3 backends to measure against")
    p.add_argument("--repeats", type=int, default=1, help="runs per framework and model, taking turns; the "
                   "figure is the median of the runs' median epochs, and every run's is reported")
    p.add_argument("--quick", action="store_true", help="shorter sequences and fewer samples (a smoke run)")
    p.add_argument("--out", default="benchmarks/results/keras-speed", help="result path without extension")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--framework", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.epochs < 2:
        p.error("--epochs must be at least 2 (the first epoch is warm-up)")
    if a.repeats < 1:
        p.error("--repeats must be at least 1")
    if a.worker:
        print(json.dumps(run(a.framework, a.worker, a.epochs, a.quick, a.threads)))
        return 0
    if not Path(a.keras_python).exists():
        p.error(f"{a.keras_python} does not exist: create it with python -m venv --system-site-packages "
                "/tmp/kerasenv && /tmp/kerasenv/bin/pip install keras jax jaxlib torch==<this torch>")
    import rnnkit
    from rnnkit.kernels import memory
    started, load_before = now(), uptime()
    rows = []
    for name in a.models:
        frameworks = [(sys.executable, "rnnkit")] + [(a.keras_python, f"keras-{b}") for b in a.keras_backends]
        runs = {f: [] for _, f in frameworks}
        for _ in range(a.repeats):   # the frameworks take turns, so a burst of load hits all of them
            for python, framework in frameworks:
                runs[framework].append(worker(python, framework, name, a.epochs, a.quick, a.threads))
        ours = combine(runs["rnnkit"])
        rows.append(ours)
        for backend in a.keras_backends:
            theirs = combine(runs[f"keras-{backend}"])
            theirs["rnnkit_speedup"] = theirs["steady_epoch_s"] / ours["steady_epoch_s"]
            theirs["rnnkit_cpu_speedup"] = theirs["steady_cpu_epoch_s"] / ours["steady_cpu_epoch_s"]
            rows.append(theirs)
            print(f"{name}: rnnkit {ours['steady_epoch_s']:.2f} s/epoch, keras-{backend} "
                  f"{theirs['steady_epoch_s']:.2f} s/epoch -> rnnkit {theirs['rnnkit_speedup']:.2f}x", flush=True)
    result = {"started": started, "finished": now(),
              "uptime_before": load_before, "uptime_after": uptime(), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "threads": a.threads, "epochs": a.epochs, "repeats": a.repeats, "quick": a.quick,
              "rnnkit": rnnkit.__version__, "note": LOAD_NOTE,
              "command": " ".join(sys.argv), "rnnkit_malloc": memory.setting(),
              "rows": rows}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = ["Keras model ported to rnnkit vs Keras 3 (same data, batches, epochs; median epoch after the first)",
             f"{started} .. {result['finished']}; {a.threads} threads on {result['cpus']} CPUs", LOAD_NOTE,
             f"RNNKIT_MALLOC: {result['rnnkit_malloc']} (kernels/memory.py)",
             f"load before: {load_before}", f"load after:  {result['uptime_after']}",
             "", f"{'model':18} {'framework':14} {'backend':17} {'s/epoch':>9} {'speed-up':>9} {'CPU s/epoch':>12} "
             f"{'CPU speed-up':>13}  s/epoch of each run"]
    for r in rows:
        speed = f"{r['rnnkit_speedup']:.2f}x" if "rnnkit_speedup" in r else "1.00x"
        cpu = f"{r['rnnkit_cpu_speedup']:.2f}x" if "rnnkit_cpu_speedup" in r else "1.00x"
        ran = ",".join(sorted({"+".join(b for b in (backends or []) if b) or "-"
                               for backends in r["runs_rnnkit_backends"]}))
        each = " ".join(f"{t:.3f}" for t in r["runs_steady_epoch_s"])
        lines.append(f"{r['model']:18} {r['framework']:14} {ran:17} {r['steady_epoch_s']:9.3f} {speed:>9} "
                     f"{r['steady_cpu_epoch_s']:12.3f} {cpu:>13}  {each}")
    lines += ["", f"command: {result['command']}", "speed-up: the framework's median epoch time over rnnkit's (wall "
              "clock); CPU: the same with the process's CPU time, which other processes cannot inflate.",
              f"s/epoch: the median of {a.repeats} runs' median epochs (each run's on the right; backend: what "
              "rnnkit's layers ran, every distinct choice of benchmark mode over the runs)."]
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
