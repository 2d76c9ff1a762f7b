"""Image captioning measurements (benchmarks/caption.md): one training run per call, its figures to a result file.

    flock /tmp/rnnkit-measure.lock python benchmarks/caption.py run NAME -- [rnnkit train caption options]
        trains with the CLI (OUT = runs/caption-NAME), then writes benchmarks/results/caption-NAME.json:
        the options, the test / unseen / 3+-object figures, training images per second, uptime and dates.
    flock /tmp/rnnkit-measure.lock python benchmarks/caption.py speed NAME [--root DIR] [--steps N] [-- options]
        training throughput alone: N updates (default 60) on 2,000 built-in scenes, run as a new process with
        the rnnkit found under DIR (default: this checkout; another checkout measures the code before a
        change under the same conditions), images and captions per second from its test.json, to
        benchmarks/results/caption-speed-NAME.json.
    python benchmarks/caption.py counts NAME [best|last]
        adds "best_checkpoint_by_objects" (or last_...) to benchmarks/results/caption-NAME.json: the test and
        unseen figures of runs/caption-NAME/best.safetensors (or last), all scenes and per number of objects.
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
from pathlib import Path

import torch

from _machine import ISO, LOCKED_NOTE, commit, now, stamp
from rnnkit.train.checkpoint import atomic_write

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # this checkout's rnnkit, without PYTHONPATH
RESULTS = ROOT / "benchmarks" / "results"
NOTE = LOCKED_NOTE


def run(name: str, options: list[str]) -> None:
    from rnnkit.cli import main
    out = ROOT / "runs" / f"caption-{name}"
    before = stamp(ISO)
    status = main(["train", "caption", *options, "--out", str(out), "--quiet"])
    after = stamp(ISO)
    if status:
        sys.exit(status)
    result = json.loads((out / "test.json").read_text())
    record = {"name": name, "command": "rnnkit train caption " + " ".join(options), "before": before,
              "after": after, "note": NOTE, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), **result}
    path = RESULTS / f"caption-{name}.json"
    atomic_write(path, json.dumps(record, indent=1).encode())
    print(f"written {path}")


def speed(name: str, root: Path, steps: int, options: list[str]) -> None:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-m", "rnnkit", "train", "caption", "--train-size", "2000", "--valid-size", "50",
                "--test-size", "50", "--unseen-size", "50", "--max-steps", str(steps), "--epochs", "1", "--out",
                str(Path(tmp) / "run"), "--quiet", *options]
        before = stamp(ISO)
        done = subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(root)}, cwd=root, capture_output=True,
                              text=True)   # cwd: python -m imports from the current folder first
        after = stamp(ISO)
        if done.returncode:
            sys.exit(done.stderr)
        result = json.loads((Path(tmp) / "run" / "test.json").read_text())
    head = commit(root) or "not a git checkout"
    record = {"name": name, "what": f"training throughput, {steps} updates on 2,000 built-in scenes",
              "command": " ".join(argv[1:]), "rnnkit_root": str(root), "commit": head,
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "before": before, "after": after, "note": NOTE,
              "torch": torch.__version__, "cpus": os.cpu_count(), "updates": result["updates"],
              "batch_size": result["options"]["batch_size"],
              "threads": result.get("threads", torch.get_num_threads() if "OMP_NUM_THREADS" not in os.environ
                                    else int(os.environ["OMP_NUM_THREADS"])),
              "train_images_per_s": result["train_images_per_s"],
              # before per-image batches each row was one (image, caption) pair: captions/s = images/s
              "train_captions_per_s": result.get("train_captions_per_s", result["train_images_per_s"])}
    path = RESULTS / f"caption-speed-{name}.json"
    atomic_write(path, json.dumps(record, indent=1).encode())
    print(f"{name}: {record['train_images_per_s']} images/s, {record['train_captions_per_s']} captions/s; "
          f"written {path}")


def counts(name: str, which: str = "best") -> None:
    from rnnkit.data import images as imgdata
    from rnnkit.data import scenes
    from rnnkit.tasks import caption
    from rnnkit.train import load_checkpoint
    path = RESULTS / f"caption-{name}.json"
    record = json.loads(path.read_text())
    model, cap, o = caption.load(load_checkpoint(ROOT / "runs" / f"caption-{name}" / f"{which}.safetensors"))
    by = {}
    for split in ("test", "unseen"):
        im, caps, sc = scenes.scene_splits({split: o[f"{split}_size"]}, o["seed"], o["image_size"],
                                           o["max_objects"])[split]
        data = imgdata.CaptionSet(im, caps, [f"{split}-{i}" for i in range(len(caps))], sc)
        hyps = [cap.text(h.tokens) for h in caption.describe(model, cap, data.images)]
        by[split] = {"all": caption.evaluate_set(model, cap, data)}
        for n in range(1, o["max_objects"] + 1):
            index = [i for i, s in enumerate(sc) if len(s["objects"]) == n]
            if index:
                m = caption.metrics([hyps[i] for i in index], data.subset(index))
                by[split][str(n)] = {"images": len(index), **{k: round(v, 2) for k, v in m.items()}}
        print(split, {n: (f["images"], round(f["attr"], 2), round(f["bleu4"], 1)) for n, f in by[split].items()})
    record[f"{which}_checkpoint_by_objects"] = {
        "what": f"greedy decoding of {which}.safetensors: all scenes, then per number of objects in the scene",
                            "date": now(ISO), **by}
    atomic_write(path, json.dumps(record, indent=1).encode())
    print(f"written {path}")


def example(name: str, which: str = "best") -> None:
    from rnnkit.data import scenes
    from rnnkit.tasks import caption
    from rnnkit.train import load_checkpoint
    model, cap, options = caption.load(load_checkpoint(ROOT / "runs" / f"caption-{name}" / f"{which}.safetensors"))
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
    elif len(args) >= 2 and args[0] == "speed":
        rest, options = (args[2:args.index("--")], args[args.index("--") + 1:]) if "--" in args else (args[2:], [])
        root, steps = ROOT, 60
        while rest:
            flag, value, rest = rest[0], rest[1], rest[2:]
            if flag == "--root":
                root = Path(value).resolve()
            elif flag == "--steps":
                steps = int(value)
            else:
                sys.exit(__doc__)
        speed(args[1], root, steps, options)
    elif len(args) in (2, 3) and args[0] == "counts":
        counts(*args[1:])
    elif len(args) in (2, 3) and args[0] == "example":
        example(*args[1:])
    else:
        sys.exit(__doc__)
