"""The benchmark behind ``rnnkit bench`` (and ``benchmarks/bench.py``): a table and a JSON file.

Sections (issue 5):
  sequence   every cell at each (B, T, H): forward and forward+backward time of each
             backend (native kernel, fused torch op, parallel scan, reference loop),
             as ratios against torch.nn.LSTM at the same size in the same run and, for
             cells torch also has (COUNTERPARTS), against that torch.nn module on the
             same configuration; GFLOP/s, and as a fraction of the peak matmul rate:
             the best of square float32 torch.mm products (n = 512, 1024, 2048)
             measured at the start of the same run.
  streaming  one step, B = 1: layer.step against torch.nn.LSTM called on one step.
  scan       minGRU / minLSTM (parallel scan) against torch.nn.GRU / LSTM, training.
  memory     bytes saved for backward at T = 1000 (saved_tensors_hooks), next to torch.nn.LSTM.
  keras      Keras 3 counterparts, when keras is installed (not a dependency), on the
             backend KERAS_BACKEND names, else the first of jax, tensorflow, torch installed.

FLOPs count the matrix products only (2 per multiply-add; input size = H):
forward F per step and sample as listed in ``flops_per_step``, training 3F
(forward, gradient of the inputs and state, gradient of the weights). Gate
nonlinearities and layer norms are not counted. Timings are medians over
``repeats`` rounds, the candidates of one size interleaved within each round.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from . import layers as L

# name -> (label, layer class, cell options (H -> dict), layer options)
CELLS = {
    "elman": ("Elman RNN", L.SimpleRNN, lambda H: {}, {}),
    "jordan": ("Jordan RNN", L.JordanRNN, lambda H: {}, {}),
    "lstm": ("LSTM", L.LSTM, lambda H: {}, {}),
    "lstm-peephole": ("LSTM + peepholes", L.LSTM, lambda H: {"peephole": True}, {}),
    "lstm-proj": ("LSTM + projection (H/2)", L.LSTM, lambda H: {"proj_size": H // 2}, {}),
    "gru": ("GRU (reset after)", L.GRU, lambda H: {}, {}),
    "gru-cho": ("GRU (Cho et al. 2014)", L.GRU, lambda H: {"reset_after": False}, {}),
    "lnlstm": ("Layer-normalised LSTM", L.LayerNormLSTM, lambda H: {}, {}),
    "lstm-recdrop": ("LSTM + recurrent dropout", L.LSTM, lambda H: {}, {"recurrent_dropout": 0.25}),
    "lstm-zoneout": ("LSTM + zoneout", L.LSTM, lambda H: {}, {"zoneout": 0.1}),
    "mingru": ("minGRU", L.MinGRU, lambda H: {}, {}),
    "minlstm": ("minLSTM", L.MinLSTM, lambda H: {}, {}),
}
SIZES = [(32, 100, 128), (32, 100, 256), (64, 200, 512)]
# cell -> its torch.nn counterpart at size H: the baseline of the "same configuration" ratio
COUNTERPARTS = {
    "elman": ("torch.nn.RNN", lambda H: torch.nn.RNN(H, H, batch_first=True)),
    "lstm": ("torch.nn.LSTM", lambda H: torch.nn.LSTM(H, H, batch_first=True)),
    "lstm-proj": ("torch.nn.LSTM(proj)", lambda H: torch.nn.LSTM(H, H, batch_first=True, proj_size=H // 2)),
    "gru": ("torch.nn.GRU", lambda H: torch.nn.GRU(H, H, batch_first=True)),
}
BACKENDS = ["native", "torch", "scan", "reference"]


def flops_per_step(name: str, H: int) -> int:
    """Forward matmul FLOPs of one step of one sample, input size H."""
    if name == "elman":
        return 2 * H * 2 * H
    if name == "jordan":
        return 2 * H * 2 * H + 2 * H * H
    if name == "lstm-proj":
        R = H // 2
        return 2 * 4 * H * (H + R) + 2 * R * H
    if name.startswith("gru"):
        return 2 * 3 * H * 2 * H
    if name in ("mingru", "minlstm"):
        return 2 * (2 if name == "mingru" else 3) * H * H
    return 2 * 4 * H * 2 * H  # every LSTM variant


def timed(fn, n: int = 1) -> float:
    """Seconds per call of fn, over n calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def interleaved(candidates: dict, repeats: int) -> dict:
    """{name: median seconds}: every candidate timed once per round, rounds repeated."""
    samples = {name: [] for name in candidates}
    for fn in candidates.values():  # warm-up: builds, allocator, first-call dispatch
        fn()
    for _ in range(repeats):
        for name, fn in candidates.items():
            samples[name].append(timed(fn))
    return {name: statistics.median(s) for name, s in samples.items()}


def peak_mm_gflops(repeats: int, sizes=(512, 1024, 2048)) -> float:
    """The best rate of square float32 torch.mm at these sizes (median of ``repeats`` each): the peak the
    "%peak" column divides by. A recurrent layer's matmuls are smaller, so it stays below this rate
    (up to timing noise)."""
    rates = []
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        rates.append(2 * n ** 3 / interleaved({"mm": lambda: torch.mm(a, b)}, max(repeats, 3))["mm"] / 1e9)
    return max(rates)


def make_layer(name: str, H: int, backend: str) -> torch.nn.Module:
    _, cls, cell_options, layer_options = CELLS[name]
    return cls(H, input_size=H, return_sequences=True, backend=backend, **cell_options(H), **layer_options)


def workloads(module, x):
    """(forward, forward+backward) callables for a module mapping x to a sequence."""
    def forward():
        with torch.no_grad():
            module(x)

    def train():
        out = module(x)
        (out[0] if isinstance(out, tuple) else out).sum().backward()
    return forward, train


def bench_sequence(names, sizes, backends, repeats, peak):
    """Rows per (cell, backend, size); train_vs_nn compares with the cell's own torch.nn counterpart."""
    rows, notes = [], {}
    for B, T, H in sizes:
        torch.manual_seed(0)
        x = torch.randn(B, T, H)
        baselines = {"torch.nn.LSTM": "lstm"}  # baseline name -> the cell whose FLOPs it does
        candidates = {("torch.nn.LSTM", "torch.nn"): workloads(torch.nn.LSTM(H, H, batch_first=True), x)}
        for name in names:
            if name in COUNTERPARTS and COUNTERPARTS[name][0] not in baselines:
                label, make = COUNTERPARTS[name]
                baselines[label] = name
                candidates[(label, "torch.nn")] = workloads(make(H), x)
            for backend in backends:
                try:
                    layer = make_layer(name, H, backend)
                except ValueError as error:  # this backend cannot run this cell (here)
                    if backend == "native":
                        notes.setdefault(f"{name}/{backend}", str(error))
                    continue
                candidates[(name, backend)] = workloads(layer, x)
        fwd = interleaved({k: f for k, (f, _) in candidates.items()}, repeats)
        train = interleaved({k: t for k, (_, t) in candidates.items()}, repeats)
        base_f, base_t = fwd[("torch.nn.LSTM", "torch.nn")], train[("torch.nn.LSTM", "torch.nn")]
        for (name, backend) in candidates:
            cell = baselines.get(name, name)
            flops = 3 * flops_per_step(cell, H) * B * T
            gflops = flops / train[(name, backend)] / 1e9
            row = {"cell": name, "backend": backend, "B": B, "T": T, "H": H,
                   "forward_s": fwd[(name, backend)], "train_s": train[(name, backend)],
                   "forward_vs_lstm": fwd[(name, backend)] / base_f, "train_vs_lstm": train[(name, backend)] / base_t,
                   "train_gflops": gflops, "train_fraction_of_peak": gflops / peak}
            if name in COUNTERPARTS:
                nn = (COUNTERPARTS[name][0], "torch.nn")
                row.update(forward_vs_nn=fwd[(name, backend)] / fwd[nn], train_vs_nn=train[(name, backend)] / train[nn])
            rows.append(row)
    return rows, notes


def bench_streaming(hidden_sizes, calls, repeats):
    rows = []
    for H in hidden_sizes:
        torch.manual_seed(0)
        ours = L.LSTM(H, input_size=H).eval()
        theirs = torch.nn.LSTM(H, H, batch_first=True).eval()
        x = torch.randn(1, H)
        _, state = ours.step(x)              # state (1, 1, H) each, as torch.nn.LSTM's (h, c)
        x3 = x[:, None]                      # (1, 1, H): one step of one sequence

        def torch_step():
            with torch.no_grad():
                theirs(x3, state)
        ours.step(x, state), torch_step()    # warm-up
        rounds = {"rnnkit": [], "torch": []}
        for _ in range(repeats):             # interleaved rounds; median per call
            rounds["rnnkit"].append(timed(lambda: ours.step(x, state), calls))
            rounds["torch"].append(timed(torch_step, max(calls // 10, 1)))
        ours_s, torch_s = (statistics.median(rounds[k]) for k in ("rnnkit", "torch"))
        rows.append({"H": H, "B": 1, "backend": ours.stream_backend, "rnnkit_us": ours_s * 1e6,
                     "torch_nn_lstm_us": torch_s * 1e6, "speedup": torch_s / ours_s})
    return rows


def bench_scan(lengths, B, H, repeats):
    rows = []
    for T in lengths:
        torch.manual_seed(0)
        x = torch.randn(B, T, H)
        pairs = {"mingru": torch.nn.GRU(H, H, batch_first=True), "minlstm": torch.nn.LSTM(H, H, batch_first=True)}
        candidates = {}
        for name, baseline in pairs.items():
            candidates[name] = workloads(make_layer(name, H, "auto"), x)[1]
            candidates[type(baseline).__name__] = workloads(baseline, x)[1]
        times = interleaved(candidates, repeats)
        for name, base in (("mingru", "GRU"), ("minlstm", "LSTM")):
            rows.append({"cell": name, "vs": f"torch.nn.{base}", "B": B, "T": T, "H": H, "train_s": times[name],
                         "baseline_train_s": times[base], "speedup": times[base] / times[name]})
    return rows


def saved_bytes(module, x) -> int:
    """Bytes of the distinct storages autograd saves for backward in one training forward."""
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    return sum(seen.values())


def bench_memory(names, B, T, H):
    torch.manual_seed(0)
    x = torch.randn(B, T, H, requires_grad=True)
    rows = [{"cell": "torch.nn.LSTM", "backend": "torch.nn", "B": B, "T": T, "H": H,
             "saved_bytes": saved_bytes(torch.nn.LSTM(H, H, batch_first=True), x)}]
    for name in names:
        layer = make_layer(name, H, "auto")
        rows.append({"cell": name, "backend": layer.backend, "B": B, "T": T, "H": H,
                     "saved_bytes": saved_bytes(layer, x)})
    return rows


KERAS_LAYERS = {"elman": ("SimpleRNN", {}), "lstm": ("LSTM", {}), "gru": ("GRU", {}),
                "gru-cho": ("GRU", {"reset_after": False}), "lstm-recdrop": ("LSTM", {"recurrent_dropout": 0.25})}


def bench_keras(names, sizes, repeats):
    """Keras 3 forward (predict_on_batch) and training step (train_on_batch) per counterpart, or None."""
    import importlib.util
    import os
    if importlib.util.find_spec("keras") is None:
        return None
    if "KERAS_BACKEND" not in os.environ:  # Keras defaults to TensorFlow; use what is installed
        installed = [b for b in ("jax", "tensorflow", "torch") if importlib.util.find_spec(b) is not None]
        os.environ["KERAS_BACKEND"] = installed[0]
    import keras
    import numpy as np
    rows = []
    for B, T, H in sizes:
        x, y = np.random.randn(B, T, H).astype("float32"), np.random.randn(B, T, H).astype("float32")
        for name in [n for n in names if n in KERAS_LAYERS]:
            kind, options = KERAS_LAYERS[name]
            model = keras.Sequential([keras.Input((T, H)), getattr(keras.layers, kind)(H, return_sequences=True, **options)])
            model.compile(optimizer="sgd", loss="mse")
            times = interleaved({"forward": lambda: model.predict_on_batch(x),
                                 "train": lambda: model.train_on_batch(x, y)}, repeats)
            rows.append({"cell": name, "backend": f"keras-{keras.backend.backend()}", "B": B, "T": T, "H": H,
                         "forward_s": times["forward"], "train_s": times["train"]})
            keras.backend.clear_session()
    return rows


def table(result: dict) -> str:
    lines = [f"torch {result['torch']}, {result['threads']} threads, peak mm {result['peak_mm_gflops']:.0f} GFLOP/s "
             "(best square torch.mm of this run)", "",
             f"{'cell':<20}{'backend':<11}{'B,T,H':<13}{'fwd ms':>9}{'train ms':>10}{'fwd/LSTM':>10}"
             f"{'train/LSTM':>11}{'train/nn':>9}{'GFLOP/s':>9}{'%peak':>8}"]
    for r in result["sequence"]:
        lines.append(f"{r['cell']:<20}{r['backend']:<11}{r['B']},{r['T']},{r['H']:<6}{r['forward_s'] * 1e3:>9.2f}"
                     f"{r['train_s'] * 1e3:>10.2f}{r['forward_vs_lstm']:>10.2f}{r['train_vs_lstm']:>11.2f}"
                     f"{format(r['train_vs_nn'], '9.2f') if 'train_vs_nn' in r else '':>9}"
                     f"{r['train_gflops']:>9.1f}{100 * r['train_fraction_of_peak']:>7.0f}%")
    for key, note in result["notes"].items():
        lines.append(f"  skipped {key}: {note}")
    lines += ["", "streaming, one step (B=1):"]
    for r in result["streaming"]:
        lines.append(f"  LSTM H={r['H']:<4} rnnkit.step {r['rnnkit_us']:8.1f} us ({r['backend']})   "
                     f"torch.nn.LSTM {r['torch_nn_lstm_us']:8.1f} us   {r['speedup']:.1f}x")
    lines += ["", "parallel scan, training (forward+backward):"]
    for r in result["scan"]:
        lines.append(f"  {r['cell']:<8} T={r['T']:<5} {r['train_s'] * 1e3:9.1f} ms   {r['vs']} "
                     f"{r['baseline_train_s'] * 1e3:9.1f} ms   {r['speedup']:.1f}x")
    lines += ["", f"saved for backward at T={result['memory'][0]['T']}:"]
    for r in result["memory"]:
        lines.append(f"  {r['cell']:<15}{r['backend']:<11}{r['saved_bytes'] / 2 ** 20:9.1f} MiB")
    if result["keras"] is None:
        lines += ["", "keras: not installed"]
    else:
        lines += ["", "keras 3 (forward: predict_on_batch, train: train_on_batch), against torch.nn.LSTM above:"]
        base = {(r["B"], r["T"], r["H"]): r for r in result["sequence"] if r["cell"] == "torch.nn.LSTM"}
        for r in result["keras"]:
            b = base[(r["B"], r["T"], r["H"])]
            lines.append(f"  {r['cell']:<13}{r['backend']:<14}{r['B']},{r['T']},{r['H']:<6}{r['forward_s'] * 1e3:>9.2f}"
                         f"{r['train_s'] * 1e3:>10.2f}{r['forward_s'] / b['forward_s']:>10.2f}"
                         f"{r['train_s'] / b['train_s']:>11.2f}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (under a minute)")
    parser.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated, from {','.join(CELLS)}")
    parser.add_argument("--sizes", default=None, help="comma-separated BxTxH (default: 32x100x128,32x100x256,64x200x512)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated, from " + ",".join(BACKENDS))
    parser.add_argument("--repeats", type=int, default=None, help="timing rounds per measurement (median; default 5, 2 with --quick)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default="bench.json", help="where to write the JSON results")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


class OneLineParser(argparse.ArgumentParser):
    """argparse, with an error as one line on stderr and exit status 2 (no usage block)."""

    def error(self, message: str):
        fail(message)


def fail(message: str):
    import sys
    print(f"rnnkit bench: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_sizes(text: str) -> list[tuple[int, int, int]]:
    try:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(len(s) != 3 or min(s) < 1 for s in sizes):
        fail(f"--sizes expects positive BxTxH[,BxTxH...], got {text!r}")
    if any(B * T * H > 2 ** 28 for B, T, H in sizes):
        fail(f"--sizes {text!r}: a size above 2^28 elements (B*T*H) would need tens of GiB")
    return sizes


def check_out(path: str, overwrite: bool):
    """The JSON file's path, checked before any timing as every output file is (tasks/options.check_out_file)."""
    from .errors import UserError
    from .tasks.options import check_out_file
    try:
        return check_out_file(path, (".json",), overwrite)
    except UserError as e:
        fail(str(e))


def main(argv: list[str]) -> int:
    parser = OneLineParser(prog="rnnkit bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    names = [n for n in args.cells.split(",") if n]
    backends = [b for b in args.backends.split(",") if b]
    for bad in [n for n in names if n not in CELLS] + [b for b in backends if b not in BACKENDS]:
        fail(f"unknown cell or backend {bad!r}; cells: {','.join(CELLS)}; backends: {','.join(BACKENDS)}")
    if not names or not backends:
        fail("--cells and --backends need at least one name each")
    for option, value in (("--repeats", args.repeats), ("--threads", args.threads)):
        if value is not None and not 1 <= value <= 1024:
            fail(f"{option} must be an integer in [1, 1024], got {value}")
    out = check_out(args.out, args.overwrite)
    if args.sizes:
        parse_sizes(args.sizes)
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick
    sizes = parse_sizes(args.sizes) if args.sizes else ([(8, 20, 32)] if quick else SIZES)
    repeats = args.repeats or (2 if quick else 5)
    peak = peak_mm_gflops(repeats, (128, 256) if quick else (512, 1024, 2048))
    sequence, notes = bench_sequence(names, sizes, backends, repeats, peak)
    B0, _, H0 = sizes[0]
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "peak_mm_gflops": peak,
              "flops": "matmul only: forward 2*MACs per step, training 3x forward", "sequence": sequence,
              "notes": notes,
              "streaming": bench_streaming([32] if quick else [128, 512], 200 if quick else 2000, repeats),
              "scan": bench_scan([64, 256] if quick else [512, 4096], B0, H0, repeats),
              "memory": bench_memory(names, B0, 100 if quick else 1000, H0),
              "keras": bench_keras(names, sizes, repeats)}
    print(table(result))
    from .train.checkpoint import atomic_write
    atomic_write(out, json.dumps(result, indent=1).encode("utf-8"))
    print(f"\nwrote {out}")
    return 0
