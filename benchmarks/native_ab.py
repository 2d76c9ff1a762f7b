"""A/B of the native kernels: the sources of a git revision (default main) against the working tree's.

Both builds are loaded into ONE process and timed interleaved (old, new, old, new, ...) on the
same inputs, so that the load of a shared machine falls on both alike. Sequence kernels: forward
and forward+backward of ``kernels.native.run`` with the old or the new compiled module swapped in
(the Python side is the same for both), at the bench sizes. Scan: the compiled minGRU/minLSTM
recurrence forward+backward. Streaming: one step of a 1-layer LSTM (B = 1).

    python benchmarks/native_ab.py --build-only          # build the old sources (slow, run niced)
    python benchmarks/native_ab.py --out benchmarks/results/native-ab.json
    python benchmarks/native_ab.py --parts scan,streaming   # only those (no sequence kernels built)

The old revision is built with its own flags (read from its build.py) into $RNNKIT_CACHE/ab-<rev>.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import rnnkit
from _machine import LOAD_NOTE, now, uptime
from rnnkit import bench
from rnnkit.kernels import build, native, scan, stream

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("sequence", "scan", "streaming")
CELLS = ["elman", "jordan", "lstm", "lstm-peephole", "lstm-proj", "gru", "gru-cho", "lnlstm", "lstm-recdrop",
         "lstm-zoneout"]


def old_modules(rev: str, parts=("sequence", "scan", "streaming")):
    """{part: module} compiled from ``rev``'s csrc with ``rev``'s flags, for the parts asked."""
    from torch.utils import cpp_extension
    src = build.cache_root() / f"ab-{rev}" / "csrc"
    src.mkdir(parents=True, exist_ok=True)
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:rnnkit/kernels/csrc/"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in names:
        text = subprocess.run(["git", "show", f"{rev}:rnnkit/kernels/csrc/{name}"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
        if not (src / name).exists() or (src / name).read_text() != text:
            (src / name).write_text(text)
    build_py = subprocess.run(["git", "show", f"{rev}:rnnkit/kernels/build.py"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    flags = json.loads(re.search(r"^C?FLAGS = (\[.*?\])", build_py, re.M).group(1).replace("'", '"'))
    if "def arch_flags" in build_py:     # the revision compiled for this CPU (its cache key names the CPU)
        flags += build.arch_flags()
    if "def thread_flags" in build_py:   # and with OpenMP where torch has it
        flags += build.thread_flags()
    out = {}
    for part, module, sources in (
            ("sequence", "native", ["module.cpp", "elman_jordan.cpp", "lstm.cpp", "gru.cpp", "lnlstm.cpp"]),
            ("scan", "scan", ["scan.cpp"]), ("streaming", "stream", ["stream.cpp"])):
        if part not in parts:
            continue
        work = src.parent / module
        work.mkdir(exist_ok=True)
        out[part] = cpp_extension.load(name=f"ab_old_{module}", sources=[str(src / s) for s in sources],
                                       extra_cflags=flags, extra_ldflags=[f for f in flags if f == build.OPENMP],
                                       build_directory=str(work), verbose=False)
    return out, flags


STAT = statistics.median  # --stat min: the fastest round, least touched by other processes


def median_interleaved(candidates: dict, repeats: int) -> dict:
    samples = {k: [] for k in candidates}
    for fn in candidates.values():
        fn()
    for _ in range(repeats):
        for k, fn in candidates.items():
            start = time.perf_counter()
            fn()
            samples[k].append(time.perf_counter() - start)
    return {k: STAT(v) for k, v in samples.items()}


def sequence_rows(old, new, sizes, repeats):
    rows = []
    for B, T, H in sizes:
        for name in CELLS:
            torch.manual_seed(0)
            layer = bench.make_layer(name, H, "native").train()
            cell = layer.cells()[0][0]
            x = torch.randn(B, T, H)
            state = cell.init_state(B)
            recurrent = layer.stack.layers[0]

            def work(module, train):
                def fn():
                    native.load = lambda: module  # the same Python path, the other compiled module
                    rec_mask, zone = recurrent.sample_masks(x)
                    if train:
                        seq, _, _ = native.run(cell, x.requires_grad_(False), state, rec_mask=rec_mask, zone=zone)
                        seq.sum().backward()
                    else:
                        with torch.no_grad():
                            native.run(cell, x, state, rec_mask=rec_mask, zone=zone)
                return fn
            cand = {"old_fwd": work(old, False), "new_fwd": work(new, False),
                    "old_train": work(old, True), "new_train": work(new, True)}
            t = median_interleaved(cand, repeats)
            rows.append({"cell": name, "B": B, "T": T, "H": H, **{k + "_s": v for k, v in t.items()},
                         "fwd_new_over_old": t["new_fwd"] / t["old_fwd"],
                         "train_new_over_old": t["new_train"] / t["old_train"]})
            print(f"{name:<14}{B},{T},{H:<5} fwd old {t['old_fwd'] * 1e3:8.2f} new {t['new_fwd'] * 1e3:8.2f} ms "
                  f"({rows[-1]['fwd_new_over_old']:.3f})   train old {t['old_train'] * 1e3:8.2f} "
                  f"new {t['new_train'] * 1e3:8.2f} ms ({rows[-1]['train_new_over_old']:.3f})", flush=True)
    return rows


def scan_rows(old, new, repeats):
    rows = []
    for G, name in ((2, "mingru"), (3, "minlstm")):
        for B, T, H in ((32, 512, 128), (8, 4096, 128)):
            k = torch.randn(B, T, G * H)
            h0, empty = torch.randn(B, H), torch.empty(0)

            def fn(module, new_api):
                extra = (empty,) if new_api else ()
                def run():
                    h = module.forward(k, h0, empty, *extra)
                    module.backward(torch.ones_like(h), k, h, h0, empty, *extra)
                return run
            t = median_interleaved({"old": fn(old, False), "new": fn(new, True)}, repeats)
            rows.append({"cell": name, "B": B, "T": T, "H": H, "old_s": t["old"], "new_s": t["new"],
                         "new_over_old": t["new"] / t["old"]})
            print(f"scan {name:<8}{B},{T},{H:<5} old {t['old'] * 1e3:8.2f} new {t['new'] * 1e3:8.2f} ms "
                  f"({rows[-1]['new_over_old']:.3f})", flush=True)
    return rows


def stream_rows(old, new, repeats):
    rows = []
    for H in (128, 512):
        torch.manual_seed(0)
        cell = rnnkit.cells.LSTMCell(H, H)
        kind, flags, names = stream.native_spec(cell)
        a, b = old.Stepper(), new.Stepper()
        a.add_layer(kind, flags, list(cell.state_sizes), 0.0, 0.0, [getattr(cell, n) for n in names])
        b.add_layer(kind, flags, list(cell.state_sizes), 0.0, 0.0, cell._parameters, names)
        x, st = torch.randn(1, H), (torch.zeros(1, 1, H), torch.zeros(1, 1, H))
        n = 200
        def loop(s):
            def run():
                for _ in range(n):
                    s.step(x, st)
            return run
        t = median_interleaved({"old": loop(a), "new": loop(b)}, repeats)
        rows.append({"cell": "lstm", "B": 1, "H": H, "old_us": t["old"] / n * 1e6, "new_us": t["new"] / n * 1e6,
                     "new_over_old": t["new"] / t["old"]})
        print(f"stream lstm H={H:<4} old {rows[-1]['old_us']:7.1f} us new {rows[-1]['new_us']:7.1f} us "
              f"({rows[-1]['new_over_old']:.3f})", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="main", help="git revision of the old sources")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="32x100x128,32x100x256,64x200x512")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--stat", choices=["median", "min"], default="median", help="per-candidate statistic")
    parser.add_argument("--parts", default="sequence,scan,streaming", help="comma-separated, from sequence,scan,streaming")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    if not parts or any(p not in PARTS for p in parts):
        parser.error(f"--parts: expected a comma-separated list from {','.join(PARTS)}, got {args.parts!r}")
    global STAT
    STAT = min if args.stat == "min" else statistics.median
    if args.threads:
        torch.set_num_threads(args.threads)
    old, old_flags = old_modules(args.rev, parts)
    new = {"sequence": native.load, "scan": scan.native_module, "streaming": stream.native_module}
    new = {part: new[part]() for part in parts}
    if args.build_only:
        return 0
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    head = {"date_utc": now("%Y-%m-%d %H:%M:%S"), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "machine": platform.machine(), "rev_old": args.rev,
            "flags_old": old_flags, "flags_new": build.FLAGS + build.arch_flags(), "repeats": args.repeats, "stat": args.stat,
            "load_before": uptime()}
    print(json.dumps(head, indent=1), flush=True)
    rows = {"sequence": lambda a, b: sequence_rows(a, b, sizes, args.repeats),
            "scan": lambda a, b: scan_rows(a, b, args.repeats), "streaming": lambda a, b: stream_rows(a, b, args.repeats)}
    result = dict(head, **{part: rows[part](old[part], new[part]) for part in parts})
    result["load_after"] = uptime()
    result["note"] = f"{LOAD_NOTE}; old and new interleaved in one process, the {args.stat} of `repeats` rounds"
    print("load after:", result["load_after"])
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
