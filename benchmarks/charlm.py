"""Validation bits per character that `rnnkit train charlm` reaches in a fixed wall-clock budget.

    python benchmarks/charlm.py                      # defaults, 10 minutes, the built-in corpus
    python benchmarks/charlm.py --minutes 3 --text book.txt -- --cell gru --hidden-size 256

Trains with the task's defaults (plus any options after ``--``), evaluates the
final model on the held-out last part of the text, prints one line and writes
JSON (``--out``) to track the figure across versions and machines.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from _machine import versions
from rnnkit.cli import main as cli
from rnnkit.data.text import read_texts
from rnnkit.tasks import charlm


def measure(minutes: float, texts: list[str], extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        argv = ["train", "charlm", "--minutes", str(minutes), "--out", out, "--quiet", "--sample-length", "0"]
        argv += (["--text", *texts] if texts else []) + extra
        start = time.perf_counter()
        if cli(argv) != 0:
            raise SystemExit("training failed")
        wall = time.perf_counter() - start
        model, vocab = charlm.load_model(str(Path(out) / "last.safetensors"))
    options = charlm.Options(text=texts or None)   # the validation split the task used
    text = read_texts(texts)
    _, val = charlm.split_text(text, options.val_fraction, options.batch_size * options.seq_len)
    result = charlm.evaluate(model, vocab, val)
    return {**versions(), "threads": torch.get_num_threads(), "minutes": minutes, "wall_s": round(wall, 1),
            "corpus": ", ".join(texts) or "pydoc_data.topics", "characters": len(text), "options": extra,
            "val_loss": round(result["loss"], 4), "val_bpc": round(result["bpc"], 4),
            "val_perplexity": round(result["perplexity"], 3)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget (default: 10)")
    parser.add_argument("--text", nargs="+", default=[], metavar="FILE", help="corpus (default: pydoc_data)")
    parser.add_argument("--out", default="charlm_bench.json", help="JSON file to write")
    args = parser.parse_args(own)
    row = measure(args.minutes, args.text, extra)
    print(f"charlm: {row['val_loss']:.4f} nats/char = {row['val_bpc']:.4f} bits/char on {row['corpus']} "
          f"after {row['minutes']:g} min ({row['threads']} threads)")
    Path(args.out).write_text(json.dumps(row, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
