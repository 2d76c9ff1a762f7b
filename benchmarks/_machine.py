"""What a benchmark's result file records about its run, written one way for every script in benchmarks/: the
date, the load (``uptime``, or the load averages), the versions, the commit and the CPU.

Each script keeps its own keys and date format (its result files read as before); it imports this module
with ``from _machine import ...`` (benchmarks/ is the script's folder, first on sys.path when it is run as
``python benchmarks/NAME.py``; a script loaded another way puts it there first).
"""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATE = "%Y-%m-%d %H:%M:%S UTC"   # "2026-11-24 14:55:15 UTC"
ISO = "%Y-%m-%dT%H:%M:%SZ"       # "2026-11-24T14:55:15Z"
# what a result file says of the machine's other work: the recorded load shows it (no claim either way)
LOAD_NOTE = "load recorded before and after: anything else running on the machine shows there"
LOCKED_NOTE = f"measured at normal priority under flock /tmp/rnnkit-measure.lock; {LOAD_NOTE}"


def now(form: str = DATE) -> str:
    """The date and time in UTC, in ``form`` (a time.strftime format)."""
    return time.strftime(form, time.gmtime())


def uptime() -> str:
    """The ``uptime`` line: the time, how long the machine has been up, its users and load averages."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:   # no uptime here: the same load averages, said so
        return f"uptime failed ({e}); load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 0.01."""
    return [round(x, 2) for x in os.getloadavg()]


def stamp(form: str = DATE) -> dict:
    """``{"date", "uptime"}``: what a result file records just before and just after a measured run."""
    return {"date": now(form), "uptime": uptime()}


def versions() -> dict:
    """``{"rnnkit", "torch", "python"}`` versions."""
    import torch

    import rnnkit
    return {"rnnkit": rnnkit.__version__, "torch": torch.__version__, "python": platform.python_version()}


def commit(root: Path = ROOT, changes: bool = False) -> str:
    """The short git commit of the checkout ``root`` ("" outside one); ``changes``: "+changes" appended when the
    files under rnnkit/ differ from it."""
    def git(*args) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD")
    return head + ("+changes" if changes and git("status", "--porcelain", "--", "rnnkit") else "")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or platform.machine())


def timed_options(description: str, turns_help: str, argv=None):
    """The options of a benchmark that times variants taking turns and writes one .txt result: --threads,
    --turns, --out (checked before any work: not overwritten without --overwrite). Returns (args, out path)."""
    import argparse

    from rnnkit.errors import UserError
    from rnnkit.tasks.options import check_out_file
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--turns", type=int, default=4, help=turns_help)
    p.add_argument("--out", required=True, help="result file (.txt)")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    try:
        return a, check_out_file(a.out, (".txt",), a.overwrite)
    except UserError as e:
        p.error(str(e))
