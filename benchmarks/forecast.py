"""The RNN against the classical baselines on the built-in series: `rnnkit train forecast` with its defaults.

    flock /tmp/rnnkit-measure.lock python benchmarks/forecast.py co2          # one series per call
    python benchmarks/forecast.py --summary                                   # the table of all results

Each call trains on one series with the task's defaults (horizon 12, rolling-origin test over the last 10%,
plus any options after ``--``), and writes benchmarks/results/forecast-<series>.json (the task's report, with
the machine's load and the date before and after) and forecast-<series>.png. ``--summary`` gathers every
forecast-*.json into benchmarks/results/forecast-results.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _machine import LOAD_NOTE, loadavg, now, versions
from rnnkit.cli import main as cli

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("rnn", "naive", "seasonal_naive", "ets", "arima")


def measure(series: str, extra: list[str], name: str) -> dict:
    before = {"date": now(), "load_1_5_15": loadavg()}
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        if cli(["train", "forecast", "--dataset", series, "--out", out, "--quiet", *extra]) != 0:
            raise SystemExit("training failed")
        wall = time.perf_counter() - start
        report = json.loads((Path(out) / "forecast.json").read_text())
        shutil.copyfile(Path(out) / "forecast.png", RESULTS / f"forecast-{name}.png")
    return {**report, "options": extra, "niced": os.nice(0), "wall_s_including_baselines": round(wall, 1), "before": before,
            "after": {"date": now(), "load_1_5_15": loadavg()}, **versions(), "cpus": os.cpu_count(),
            "training_threads": "the task's --threads (default 1) unless given in options",
            "note": LOAD_NOTE}


def summary() -> str:
    lines = ["# RNN vs classical baselines (rnnkit train forecast, defaults)", "",
             "MASE (lower is better; scaled by the in-sample seasonal naive MAE) over every rolling origin of "
             "the test part (the last 10%), horizon 12. Written by benchmarks/forecast.py --summary from the "
             "forecast-*.json files beside this one; each records the machine's load before "
             "and after its run.", "",
             "| series | test origins | " + " | ".join(METHODS) + " | RNN 80% coverage | RNN best? | training s |",
             "|" + "---|" * (len(METHODS) + 5)]
    for path in sorted(RESULTS.glob("forecast-*.json")):
        r = json.loads(path.read_text())
        m = r["metrics"]
        cells = [f"{m[k]['mase']:.3f}" if k in m else "" for k in METHODS]
        lines.append(f"| {path.stem[len('forecast-'):]} | {r['split']['test_origins']} | " + " | ".join(cells)
                     + f" | {m['rnn'].get('coverage', float('nan')):.2f} | {'yes' if r['rnn_beats_all'] else 'NO'} "
                     f"| {r['training']['seconds']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("series", nargs="?", help="a built-in series (rnnkit train forecast --help lists them)")
    parser.add_argument("--summary", action="store_true", help="write forecast-results.md from the JSON files")
    parser.add_argument("--tag", default="", help="suffix of the result files (forecast-SERIES-TAG.json)")
    args = parser.parse_args(own)
    RESULTS.mkdir(exist_ok=True)
    if args.series:
        name = args.series + (f"-{args.tag}" if args.tag else "")
        row = measure(args.series, extra, name)
        (RESULTS / f"forecast-{name}.json").write_text(json.dumps(row, indent=1) + "\n")
        print(f"{args.series}: " + ", ".join(f"{k} {v['mase']:.3f}" for k, v in row["metrics"].items())
              + f" (MASE); RNN best: {row['rnn_beats_all']}")
    if args.summary:
        (RESULTS / "forecast-results.md").write_text(summary())
        print(summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
