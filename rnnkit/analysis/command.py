"""``rnnkit gradflow``: the gradient flow of cells, as a plot, a table and a JSON file.

    rnnkit gradflow --cell rnn lstm gru --steps 100 --out runs/gradflow
    rnnkit gradflow --checkpoint runs/adding/best.safetensors --steps 200

With --checkpoint, each checkpoint's first recurrent layer is drawn beside the
same cell freshly initialised (what training changed).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..cells import CELLS
from ..errors import UserError
from .gradflow import checkpoint_flow, plot_flows, random_flow, table

DEFAULT_CELLS = ("rnn", "lstm", "gru")


def add_arguments(parser) -> None:
    parser.add_argument("--cell", nargs="+", default=None, metavar="CELL",
                        help=f"cells to compare, or 'all' (one of {', '.join(sorted(CELLS))}; "
                             f"default: {' '.join(DEFAULT_CELLS)}, or the checkpoint's cell)")
    parser.add_argument("--steps", type=int, default=100, help="time steps of the trajectory (default: 100)")
    parser.add_argument("--checkpoint", nargs="+", default=[], metavar="CK",
                        help="trained model(s) (.safetensors from rnnkit train) to analyse")
    parser.add_argument("--hidden-size", type=int, default=32, help="units of the random cells (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for weights and inputs (default: 0)")
    parser.add_argument("--out", default="runs/gradflow", metavar="DIR",
                        help="where gradflow.png, gradflow.md and gradflow.json go (default: runs/gradflow)")


def check(args) -> list[str]:
    """Validate every option and the output location before any work; the cells to draw at random."""
    if args.steps < 1 or args.hidden_size < 1:
        raise UserError(f"--steps and --hidden-size must be positive integers, got {args.steps} and {args.hidden_size}")
    for ck in args.checkpoint:
        if not Path(ck).is_file():
            raise UserError(f"checkpoint not found: {ck}")
    names = list(args.cell or ([] if args.checkpoint else DEFAULT_CELLS))
    if names == ["all"]:
        names = sorted(CELLS)
    unknown = [n for n in names if n not in CELLS]
    if unknown:
        raise UserError(f"unknown cell {unknown[0]!r}; expected 'all' or any of {', '.join(sorted(CELLS))}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {args.out} exists and is not a directory")
    return names


def run(args) -> int:
    from ..train.checkpoint import atomic_write
    names = check(args)
    flows = []
    for ck in args.checkpoint:
        trained = checkpoint_flow(ck, args.steps, args.seed)
        trained.cell = f"{trained.cell} ({Path(ck).parent.name}/{Path(ck).name})"
        flows.append(trained)
        if trained.cell.split()[0] not in names:
            names.append(trained.cell.split()[0])
    flows += [random_flow(n, args.steps, args.hidden_size, seed=args.seed) for n in names]
    for f in flows[len(args.checkpoint):]:
        f.cell += " (random)" if args.checkpoint else ""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = (f"Gradient flow over {args.steps} steps (rnnkit gradflow, seed {args.seed}; random cells: "
          f"rnnkit's initialisation, hidden size {args.hidden_size}, inputs N(0, 1)).\n\n{table(flows)}\n")
    r = lambda v: float(f"{v:.4g}")   # noqa: E731  (4 significant digits keep the file small)
    data = [{**f.summary(), "norms": [r(n) for n in f.norms], "top_singular_values": [r(s[0]) for s in f.singular],
             "singular_values": [[r(v) for v in s] for s in f.singular]} for f in flows]
    written = []
    for name, text in (("gradflow.md", md), ("gradflow.json", json.dumps(data))):
        replaced = (out / name).exists()
        atomic_write(out / name, text.encode())
        written.append(f"{out / name}" + (" (replaced)" if replaced else ""))
    print(table(flows))
    if plot_flows(flows, out / "gradflow.png"):
        written.append(str(out / "gradflow.png"))
    else:
        print('rnnkit: note: no gradflow.png: matplotlib is missing (pip install "rnnkit[plot]")')
    print("wrote " + ", ".join(written))
    return 0
