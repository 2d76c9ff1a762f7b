"""Long-range memory: the adding problem and the copy task, each cell at each length T, in a fixed budget.

    python benchmarks/long_range.py --task adding                 # one task per run (≤ 12 minutes each)
    python benchmarks/long_range.py --task copy
    python benchmarks/long_range.py --report                      # table and plot from the JSON

Every (task, cell, T) trains through the task itself (``rnnkit.tasks.adding`` /
``rnnkit.tasks.copy``: its model, its trainer, its defaults unless listed
below) for the same number of updates, then the final model is scored on
fresh test sequences (a seed neither training nor validation used):

* adding: success = |prediction - target| < 0.04 (Hochreiter & Schmidhuber 1997's
  criterion); always answering 1.0 scores ≈ 7.8 %.
* copy:   success = every copied symbol right; guessing scores (1/symbols)^length.

Results merge into benchmarks/results/long-range.json (one entry per task, cell,
T and budget, the newest kept), then long-range.md (a table per task and budget)
and long-range.png (success rate against T, the largest budget of each task) are
written from it. One seed per point: a budget choice, stated in the table.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from _machine import stamp, versions
from rnnkit.tasks import adding, copy
from rnnkit.train import load_checkpoint, restore_model

RESULTS = Path(__file__).parent / "results"
CELLS = ("rnn", "lstm", "gru")
LENGTHS = (10, 50, 100, 200)
TEST_SIZE, TEST_SEED = 1000, 12345
# The budget: the same number of updates for every cell and T (not seconds: comparable across machines and load).
SETTINGS = {
    "adding": {"hidden_size": 32, "batch_size": 50, "lr": 0.01, "clip_norm": 1.0},
    "copy": {"hidden_size": 32, "batch_size": 50, "lr": 0.005, "clip_norm": 1.0, "length": 5, "symbols": 8},
}
ISO_OFFSET = "%Y-%m-%dT%H:%M:%S+00:00"   # the dates of long-range.json (datetime.isoformat in UTC)


def train(task: str, cell: str, T: int, updates: int, out: str):
    """Train through the task module; returns the trained model and the seconds it took."""
    s = SETTINGS[task]
    common = dict(cell=cell, hidden_size=s["hidden_size"], batch_size=s["batch_size"], lr=s["lr"],
                  clip_norm=s["clip_norm"], train_size=updates * s["batch_size"], val_size=500, epochs=1,
                  seed=0, quiet=True, out=out)
    if task == "adding":
        options, module, build = adding.Options(seq_len=T, **common), adding, adding.SequenceRegressor
        config = lambda ck: adding.RegressorConfig(**ck.config["model"])   # noqa: E731
    else:
        options = copy.Options(delay=T, length=s["length"], symbols=s["symbols"], **common)
        module, build, config = copy, copy.Copier, lambda ck: copy.CopierConfig(**ck.config["model"])  # noqa: E731
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        module.run(options)
    wall = time.perf_counter() - start
    ck = load_checkpoint(Path(out) / "last.safetensors")
    return restore_model(build(config(ck)), ck).eval(), wall


@torch.no_grad()
def score(task: str, model, T: int) -> dict:
    if task == "adding":
        x, y = adding.adding_data(TEST_SIZE, T, TEST_SEED)
        pred = model(x).squeeze(-1)
        return {"success": float(((pred - y).abs() < 0.04).float().mean()),
                "test_mse": float(((pred - y) ** 2).mean()), "baseline_mse": adding.BASELINE_MSE}
    s = SETTINGS[task]
    x, y = copy.copy_data(TEST_SIZE, T, s["length"], s["symbols"], TEST_SEED)
    logits = model(x)
    right = logits[:, -s["length"]:].argmax(-1) == y[:, -s["length"]:]
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
    return {"success": float(right.all(1).float().mean()), "symbol_accuracy": float(right.float().mean()),
            "test_loss": float(loss), "baseline_loss": copy.baseline_loss(T, s["length"], s["symbols"])}


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"runs": [], "sessions": []}


def save(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def report(data: dict, out: Path) -> str:
    budgets = sorted({(r["task"], r["updates"]) for r in data["runs"]}, key=lambda b: (b[0], -b[1]))
    lines = ["# Long-range memory: success rate against T", "",
             "Written by `benchmarks/long_range.py` from `long-range.json`. Each cell trains through the task "
             "(`rnnkit train adding` / `copy`) for the same number of updates, one seed per point, then is "
             f"scored on {TEST_SIZE} fresh test sequences. Settings: {json.dumps(SETTINGS)}. "
             "A dash marks a point not run (the session's time and the shared measurement lock ran out).", ""]
    for task, updates in budgets:
        runs = {(r["task"], r["cell"], r["T"]): r for r in data["runs"] if (r["task"], r["updates"]) == (task, updates)}
        Ts = sorted({T for (_, _, T) in runs})
        what = ("success = |error| < 0.04; answering 1.0 scores 7.8 %; test MSE in brackets (baseline 0.167)"
                if task == "adding" else "success = every copied symbol right; per-symbol accuracy in brackets "
                "(guessing: 12.5 %)")
        lines += [f"## {task}, {updates} updates per run ({what})", "",
                  "| cell | " + " | ".join(f"T={T}" for T in Ts) + " |", "|---|" + "---:|" * len(Ts)]
        for cell in CELLS:
            cells = [runs.get((task, cell, T)) for T in Ts]
            if not any(cells):
                continue
            detail = lambda r: (f"{r['test_mse']:.3f}" if task == "adding" else f"{r['symbol_accuracy']:.0%}")  # noqa: E731
            lines.append(f"| {cell} | " + " | ".join("–" if r is None else f"{r['success']:.1%} ({detail(r)})"
                                                      for r in cells) + " |")
        lines.append("")
    lines += ["## Runs (training at normal priority, one thread; the load before and after each)", ""]
    lines += [f"- {s['task']}: {s['before']['date']} ({s['before']['uptime']}) to {s['after']['date']} "
              f"({s['after']['uptime']})" + (f"; {s['note']}" if s.get("note") else "") for s in data["sessions"]]
    lines += ["", "Wall time per run (s): " + ", ".join(f"{r['task']}/{r['cell']}/T={r['T']}/{r['updates']}: "
                                                      f"{r['wall_s']:.0f}" for r in data["runs"])]
    text = "\n".join(lines) + "\n"
    (out / "long-range.md").write_text(text)
    largest = {task: max(u for t, u in budgets if t == task) for task, _ in budgets}
    plot({(r["task"], r["cell"], r["T"]): r for r in data["runs"] if r["updates"] == largest[r["task"]]},
         out / "long-range.png")
    return text


def plot(runs: dict, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('no long-range.png: matplotlib is missing (pip install "rnnkit[plot]")')
        return
    tasks = [t for t in ("adding", "copy") if any(k[0] == t for k in runs)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for cell in CELLS:
            pts = sorted((T, r["success"]) for (t, c, T), r in runs.items() if t == task and c == cell)
            if pts:
                ax.plot(*zip(*pts), marker="o", label=cell)
        if task == "adding":   # always answering 1.0: P(|u1 + u2 - 1| < 0.04) = 0.0784
            ax.axhline(0.0784, color="grey", lw=0.8, ls="--", label="answer 1.0")
        ax.set(xscale="log", xlabel="T (sequence length / delay)", ylabel="success rate on test sequences",
               title=f"{task} ({next(r['updates'] for k, r in runs.items() if k[0] == task)} updates)",
               ylim=(-0.03, 1.03))
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("adding", "copy"), help="train this task's grid")
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    parser.add_argument("--T", nargs="+", type=int, default=list(LENGTHS), help="lengths (default: 10 50 100 200)")
    parser.add_argument("--updates", type=int, default=600, help="updates per (cell, T) (default: 600)")
    parser.add_argument("--report", action="store_true", help="only rewrite the table and plot")
    parser.add_argument("--out", default=str(RESULTS), help="results directory")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "long-range.json"
    data = load(path)
    if args.task:
        torch.set_num_threads(1)
        session = {"task": args.task, "before": stamp(ISO_OFFSET), **versions(), "threads": 1}
        for T in args.T:
            for cell in args.cells:
                with tempfile.TemporaryDirectory() as tmp:
                    model, wall = train(args.task, cell, T, args.updates, tmp)
                row = {"task": args.task, "cell": cell, "T": T, "updates": args.updates, "wall_s": round(wall, 1),
                       **{k: round(v, 4) for k, v in score(args.task, model, T).items()}}
                print(json.dumps(row), flush=True)
                key = (args.task, cell, T, args.updates)
                data["runs"] = [r for r in data["runs"] if (r["task"], r["cell"], r["T"], r["updates"]) != key]
                data["runs"].append(row)
                save(path, data)
        session["after"] = stamp(ISO_OFFSET)
        data["sessions"].append(session)
        save(path, data)
    print(report(data, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
