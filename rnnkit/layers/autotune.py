"""Benchmark mode (``rnnkit.backends.benchmark``): a measured backend choice per shape, kept.

On the first call of a shape key (``shape_key``), ``choose`` runs the call once on every backend
that can take it (``eligible``), times it (``measure``: forward, and backward when the call will be
trained), and keeps the fastest for the key; later calls with the key reuse it. The trial runs
change nothing the user sees: they run under a forked random-number state (dropout draws stay as
they would be), and their gradients go to ``torch.autograd.grad``, never into ``.grad``. All
backends compute the same function (tests/test_kernels*.py), so the choice changes speed only.
A backend that raises while timed is dropped from the race with one warning naming the error.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
import warnings
from pathlib import Path

import torch

from .. import backends, kernels
from ..kernels import build, native
from .base import right_padded_lengths

log = logging.getLogger(__name__)
CHOICES: dict[str, str] = {}   # shape key -> the backend that won, in this process
REPS = 3                       # timed runs per backend after one warm-up; the best one counts
WARNED: set[str] = set()


def mask_kind(mask) -> str:
    if mask is None:
        return "none"
    lengths = right_padded_lengths(mask)
    return "right-padded" if lengths is not None and lengths.min() > 0 else "holes"


def will_train(layer) -> bool:
    """True when this call builds a graph for backward (its time then includes the backward pass)."""
    return torch.is_grad_enabled() and any(p.requires_grad for p in layer.parameters())


def shape_key(layer, x: torch.Tensor, mask, embedded=None) -> str:
    """What the choice depends on: the layer's configuration (cell options, sizes, layers, directions,
    dropouts), x's dtype and batch size, training or not, threads, the mask's kind, autocast, and the
    vocabulary size when x comes from an Embedding (the native LSTM then reads the projected table)."""
    ignore = {"return_sequences", "return_state", "stateful", "unroll", "batch_first", "name", "backend"}
    config = {k: repr(v) for k, v in sorted(layer.get_config().items()) if k not in ignore}
    autocast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
    parts = [type(layer).__name__, config, layer.input_size, str(x.dtype), x.device.type, x.shape[0],
             will_train(layer), layer.training, torch.get_num_threads(), mask_kind(mask), str(autocast)]
    if embedded is not None:
        parts.append(["embedded", embedded[0].num_embeddings])
    return json.dumps(parts, default=str)


def eligible(layer, x: torch.Tensor, mask) -> list[str]:
    """The backends that can run this call (each layer's cell and options, x's dtype and device, the mask)."""
    names = []
    for name in kernels.BACKENDS:
        try:
            for r in layer.recurrent_layers():
                kernels.select_backend(r.cell, recurrent_dropout=r.recurrent_dropout, zoneout=r.zoneout,
                                       requested=name)
                if name == "native" and native.fallback_reason(r.cell, x) is not None:  # (builds on first use)
                    raise ValueError(native.fallback_reason(r.cell, x))
        except ValueError:
            continue
        if name == "torch" and mask_kind(mask) == "holes":
            continue
        names.append(name)
    return names


def clock() -> float:
    """CPU time of this process with one thread (immune to other processes taking the core), wall time
    with more (CPU time would count every thread's share)."""
    return time.process_time() if torch.get_num_threads() == 1 else time.perf_counter()


def measure(name: str, call) -> float:
    """Seconds of one ``call()`` (running backend ``name``). Tests replace this function."""
    start = clock()
    call()
    return clock() - start


def race(calls: dict) -> dict:
    """{name: best seconds} of the warmed-up ``calls``: REPS rounds taking turns (a burst of load hits
    every backend alike); a backend twice as slow as the best leaves the race."""
    best: dict[str, float] = {}
    for _ in range(REPS):
        for name, call in list(calls.items()):
            best[name] = min(best.get(name, float("inf")), measure(name, call))
        fastest = min(best.values())
        for name in [n for n in calls if best[n] > 2 * fastest]:
            del calls[name]
    return best


def trial(layer, backend: str, x, state, mask, embedded=None):
    """One run of the call on ``backend``, with a backward pass when the call will be trained (into the
    embedding's table too when x comes from one: what the fused and unfused paths each cost in training)."""
    def call():
        xi = x if embedded is None else embedded[0](embedded[1])   # a fresh lookup: its backward is timed too
        seq, last, _ = layer.run_on(backend, xi, state, mask, embedded)
        if will_train(layer):
            outs = [t for t in (seq if isinstance(seq, tuple) else (seq,)) if t.requires_grad]
            params = [p for p in layer.parameters() if p.requires_grad]
            if embedded is not None and embedded[0].weight.requires_grad:
                params.append(embedded[0].weight)
            if outs:
                torch.autograd.grad(sum(o.sum() for o in outs), params, allow_unused=True)
    return call


def choose(layer, x: torch.Tensor, state, mask, embedded=None) -> str | None:
    """The backend for this call in benchmark mode (timed on the key's first call), or None when there
    is no choice to make (one eligible backend: the layer's static choice runs)."""
    key = shape_key(layer, x, mask, embedded)
    if key in CHOICES:
        return CHOICES[key]
    names = eligible(layer, x, mask)
    if len(names) < 2:
        return None
    stored = on_disk().get(key) if backends.persist else None
    if stored in names:
        CHOICES[key] = stored
        return stored
    calls = {}
    with torch.random.fork_rng(devices=[]):   # the trials' dropout draws leave the user's stream alone
        for name in names:   # a backend that fails on this call is dropped from the race, said once
            try:
                call = trial(layer, name, x, state, mask, embedded)
                call()   # the warm-up: first-use costs (a build, oneDNN's primitives) stay out of the times
                calls[name] = call
            except Exception as error:
                warn_once(f"backend {name!r} failed while benchmark mode timed {type(layer).__name__} "
                          f"({type(error).__name__}: {error}); it is not used for this shape")
        times = race(calls) if len(calls) > 1 else {name: 0.0 for name in calls}
    if not times:
        return None
    best = min(times, key=times.get)
    CHOICES[key] = best
    log.debug("benchmark mode: %s -> %s (%s)", key, best, {k: f"{v * 1e3:.2f} ms" for k, v in times.items()})
    if backends.persist:
        save_choice(key, best)
    return best


def warn_once(message: str) -> None:
    if message not in WARNED:
        WARNED.add(message)
        warnings.warn(f"rnnkit: {message}", RuntimeWarning, stacklevel=5)


def machine() -> str:
    """What a stored choice is valid for: torch's version, the CPU's model and features."""
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines()
                  if line.startswith("model name")), platform.processor())
    text = json.dumps([torch.__version__, platform.machine(), model, build.cpu_features()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def store_path() -> Path:
    return build.cache_root() / "backend-choices.json"


def on_disk() -> dict:
    """The stored choices for this machine ({} when there are none or the file is unreadable)."""
    try:
        return json.loads(store_path().read_text()).get(machine(), {})
    except (OSError, ValueError, AttributeError):
        return {}


def save_choice(key: str, backend: str) -> None:
    """Add one choice to the file, atomically (a temporary file renamed into place)."""
    path = store_path()
    try:
        table = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        table = {}
    table.setdefault(machine(), {})[key] = backend
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
    os.replace(tmp, path)
