"""Image captioning measurements (benchmarks/caption.md): one training run per call, its figures to a result file.

    flock /tmp/rnnkit-measure.lock python benchmarks/caption.py run NAME -- [rnnkit train caption options]
        trains with the CLI (OUT = runs/caption-NAME), then writes benchmarks/results/caption-NAME.json:
        the options, the test / unseen / 3+-object figures, training images per second, uptime and dates.
    python benchmarks/caption.py example NAME
        the README picture: a test scene with 3+ objects, its generated caption and the attention of each
        word, from runs/caption-NAME/best.safetensors, to benchmarks/results/caption-example.png.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NOTE = ("measured on a 2-core machine shared with other engineers' niced (nice 15) processes, this run at normal "
        "priority under /tmp/rnnkit-measure.lock; uptime before and after shows the load")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run(name: str, options: list[str]) -> None:
    from rnnkit.cli import main
    out = ROOT / "runs" / f"caption-{name}"
    before = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "uptime": uptime()}
    status = main(["train", "caption", *options, "--out", str(out), "--quiet"])
    after = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "uptime": uptime()}
    if status:
        sys.exit(status)
    result = json.loads((out / "test.json").read_text())
    record = {"name": name, "command": "rnnkit train caption " + " ".join(options), "before": before,
              "after": after, "note": NOTE, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), **result}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"caption-{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)
    print(f"written {path}")


def example(name: str) -> None:
    from rnnkit.data import scenes
    from rnnkit.tasks import caption
    from rnnkit.train import load_checkpoint
    model, cap, options = caption.load(load_checkpoint(ROOT / "runs" / f"caption-{name}" / "best.safetensors"))
    im, caps, sc = scenes.make_split(40, seed=12345, image_size=model.config.image_size)   # not the test split
    i = next(k for k, s in enumerate(sc) if len(s["objects"]) == 3)
    hyp = caption.describe(model, cap, im[i:i + 1])[0]
    text = cap.text(hyp.tokens)
    right = "attributes right" if scenes.attributes_right(text, sc[i]) else "attributes WRONG"
    path = RESULTS / "caption-example.png"
    caption.plot_attention(im[i], cap, hyp, model.grid, path, title=f'generated: "{text}" ({right})\n'
                           f'reference: "{caps[i][0]}"')
    print(f"{text}\nwritten {path}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "run":
        run(args[1], args[3:] if args[2:3] == ["--"] else args[2:])
    elif len(args) == 2 and args[0] == "example":
        example(args[1])
    else:
        sys.exit(__doc__)
