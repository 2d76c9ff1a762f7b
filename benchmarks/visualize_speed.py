"""How long `rnnkit visualize` takes for 5,000 characters of the default charlm model (issue 19: < 10 s).

    flock /tmp/rnnkit-measure.lock python benchmarks/visualize_speed.py --out benchmarks/results/visualize-speed.json

The checkpoint has the default charlm architecture (GRU, 2 x 512, 64-dim
embeddings, the built-in corpus's vocabulary); its weights are freshly
initialised unless --checkpoint names a trained one: the time does not depend
on the values of the weights. The figure is the wall time of the whole
command (`python -m rnnkit visualize ...`), interpreter start-up included,
best and all of --repeats runs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from _machine import ISO, LOCKED_NOTE, stamp


def default_checkpoint(path: Path) -> None:
    from rnnkit.data.text import Vocabulary, builtin_corpus
    from rnnkit.models.charlm import CharLM, CharLMConfig
    from rnnkit.tasks.charlm import Options
    from rnnkit.train.checkpoint import save_checkpoint
    o = Options(cell="gru")   # the architecture measured so far (charlm's default in fp32), whatever this CPU's default
    vocab = Vocabulary.build(builtin_corpus())
    config = CharLMConfig(len(vocab), o.cell, o.hidden_size, o.num_layers, o.embedding_dim)
    model = CharLM(config)
    save_checkpoint(path, model.state_dict(), config={"task": "charlm", "model": config.to_dict(),
                                                      "vocab": list(vocab.chars), "options": {}})


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="a charlm checkpoint (default: the default architecture, untrained)")
    p.add_argument("--chars", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--page", default="/tmp/rnnkit-visualize-speed.html")
    p.add_argument("--out", required=True, help="the result JSON")
    a = p.parse_args()
    ck = Path(a.checkpoint or "/tmp/rnnkit-visualize-default-gru.safetensors")
    if a.checkpoint is None:
        default_checkpoint(ck)
    before = stamp(ISO)
    times, messages = [], []
    for _ in range(a.repeats):
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "rnnkit", "visualize", "--checkpoint", str(ck), "--chars",
                              str(a.chars), "--out", a.page, "--overwrite"], capture_output=True, text=True)
        times.append(round(time.perf_counter() - start, 2))
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return 1
        messages.append(run.stderr.strip().splitlines()[-1])
    after = stamp(ISO)
    page = Path(a.page).read_text()
    result = {
        "what": f"wall time of `rnnkit visualize` for {a.chars} characters (interpreter start-up included)",
        "checkpoint": "default charlm architecture (GRU 2 x 512, embedding 64), untrained" if a.checkpoint is None
        else str(ck),
        "chars": a.chars, "best_s": min(times), "runs_s": times, "target_s": 10.0,
        "page_mb": round(len(page.encode()) / 1e6, 1), "command_messages": messages,
        "torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(), "before": before, "after": after,
        "note": LOCKED_NOTE,
    }
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
