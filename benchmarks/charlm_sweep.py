"""Rank charlm configurations with short wall-clock runs, one at a time under the measurement lock.

    python benchmarks/charlm_sweep.py --name NAME --text TRAIN.txt [--valid VAL.txt] --minutes 3.3 \
        --out benchmarks/results/charlm-sweep.jsonl -- --weight-dropout 0.3 --tie-weights ...

Each run is `rnnkit train charlm` with the options after ``--``, preceded by
`flock /tmp/rnnkit-measure.lock` (held for this run only). The machine load
(`uptime`) and the date before and after, the updates, the final training and
validation losses and the whole validation history go to one JSON line,
appended to ``--out``: every run is recorded, kept or not.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import LOAD_NOTE

LOCK = "/tmp/rnnkit-measure.lock"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="a name for this configuration")
    parser.add_argument("--text", nargs="+", default=[], metavar="FILE")
    parser.add_argument("--valid", metavar="FILE", help="validation text (default: the last 10%% of --text)")
    parser.add_argument("--minutes", type=float, default=3.3)
    parser.add_argument("--out", required=True, help="JSON-lines file to append to")
    parser.add_argument("--no-lock", action="store_true", help="run without the measurement lock (niced runs)")
    args = parser.parse_args(own)
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "rnnkit", "train", "charlm", "--minutes", str(args.minutes), "--out", out,
               "--quiet", "--sample-length", "0"] + (["--text", *args.text] if args.text else [])
        cmd += (["--valid", args.valid] if args.valid else []) + extra
        # load and date read inside the lock, just before and after the training run
        script = ('uptime > "$0/before"; date -u >> "$0/before"; "$@"; rc=$?; '
                  'uptime > "$0/after"; date -u >> "$0/after"; exit $rc')
        cmd = ["bash", "-c", script, out] + cmd
        if not args.no_lock:
            cmd = ["flock", LOCK] + cmd
        row = {"name": args.name, "options": extra, "text": args.text, "valid": args.valid,
               "minutes": args.minutes, "locked": not args.no_lock}
        start = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        row["wall_s"] = round(time.time() - start, 1)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        row["before"] = (Path(out) / "before").read_text().strip().splitlines()
        row["after"] = (Path(out) / "after").read_text().strip().splitlines()
        hist = list(csv.DictReader(open(Path(out) / "history.csv")))
        row["updates"] = int(hist[-1]["step"])
        row["train_loss"] = round(float(hist[-1]["loss"]), 4)
        row["val_loss"] = round(min(float(h["val_loss"]) for h in hist if h.get("val_loss")), 4)
        row["val_loss_last"] = round(float(next(h["val_loss"] for h in reversed(hist) if h.get("val_loss"))), 4)
        row["history"] = [{k: round(float(v), 4) for k, v in h.items() if v} for h in hist]
        row["stdout_tail"] = proc.stdout.strip().splitlines()[-1:]
    row["machine"] = f"{platform.machine()} {os.cpu_count()} cores; {LOAD_NOTE}"
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{args.name}: val {row['val_loss_last']:.4f} (best {row['val_loss']:.4f}), train {row['train_loss']:.4f}, "
          f"{row['updates']} updates, {row['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
