"""Dynamic evaluation of a charlm checkpoint on the held-out part of a text, over a few settings.

    python benchmarks/charlm_dynamic.py --checkpoint CK --text FILE [--chars N] \
        --out benchmarks/results/charlm-dynamic-a.jsonl --try rms:2e-4:0 --try sgd:3e-2:0.01

The held-out part is the task's (the last 10% of the text); ``--chars N`` keeps
its first N characters (tuning on a part, then reporting on the whole). Each
setting appends one JSON line with the static figure beside it (two metrics,
two names), the load and the date before and after. Quality, not timing: the
figures do not depend on the machine's load.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from _machine import now, uptime
from rnnkit.data.text import read_texts
from rnnkit.tasks import charlm
from rnnkit.train.dynamic import DynamicEvalConfig


def load() -> str:
    return now("%H:%M:%S UTC ") + uptime()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--text", nargs="+", required=True)
    p.add_argument("--chars", type=int, default=None, help="the first N held-out characters only")
    p.add_argument("--segment", type=int, default=DynamicEvalConfig.segment)
    p.add_argument("--try", dest="tries", action="append", required=True, metavar="METHOD:LR:DECAY")
    p.add_argument("--out", required=True, help="JSON-lines file to append to")
    a = p.parse_args()
    configs = []
    for t in a.tries:
        method, lr, decay = t.split(":")
        configs.append(DynamicEvalConfig(method, float(lr), float(decay), a.segment))   # all checked first
    text = read_texts(a.text)
    _, val = charlm.split_text(text, 0.1, 1)
    val = val[:a.chars] if a.chars else val
    model, vocab = charlm.load_model(a.checkpoint)
    static = charlm.evaluate(model, vocab, val)["loss"]
    for c in configs:
        before, start = load(), time.monotonic()
        r = charlm.evaluate_dynamic(model, vocab, val, c)
        row = {"checkpoint": a.checkpoint, "text": a.text, "held_out_characters": len(val), "static_loss": round(static, 4),
               **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()},
               "seconds": round(time.monotonic() - start, 1), "before": before, "after": load()}
        with open(a.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{c.method} lr {c.lr:g} decay {c.decay:g} segment {c.segment}: dynamic {r['dynamic_loss']:.4f} "
              f"(static {static:.4f}), {row['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
