"""rnnkit's charlm defaults against a small causal transformer: same text, same split, same wall-clock budget.

    pip install 'rnnkit[plot]'
    python benchmarks/charlm_vs_transformer.py --text shakespeare.txt --minutes 10 \
        --out benchmarks/results/charlm-vs-transformer-a.json --png benchmarks/results/charlm-vs-transformer-a.png

One run after the other on one machine, each holding the measurement lock
(/tmp/rnnkit-measure.lock, ``--no-lock`` to skip) for its own phase only:

1. `rnnkit train charlm --text FILE --minutes M` with the task's defaults (plus any
   options after ``--``), held-out curve from its history (evaluation time counts
   in its budget, as for any user); scored on the whole held-out text with the
   state carried (static), then separately with dynamic evaluation.
2. The transformer of charlm_transformer.py (pre-LN, learned positions, tied
   embeddings, AdamW, warmup + cosine over the budget), trained on random windows
   of the same training text for the same wall clock (its periodic evaluations are
   NOT counted in its budget: a margin in its favour), scored on the whole held-out
   text with a sliding window of its full context (stride context/2, each
   character scored once).

The split is the task's: the first 90% trains, the last 10% is held out. One JSON
file (hardware, versions, the load before and after each phase, both curves and
figures) and one PNG (held-out loss against wall-clock seconds, both models).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import csv
import fcntl
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charlm_transformer as tf  # noqa: E402
from _machine import stamp, versions  # noqa: E402

from rnnkit.data.text import Vocabulary, read_texts  # noqa: E402
from rnnkit.errors import UserError  # noqa: E402
from rnnkit.tasks import charlm  # noqa: E402
from rnnkit.tasks.options import check_out_file  # noqa: E402
from rnnkit.train.checkpoint import atomic_write  # noqa: E402
from rnnkit.train.dynamic import DynamicEvalConfig  # noqa: E402

LOCK = "/tmp/rnnkit-measure.lock"


@contextlib.contextmanager
def measuring(use_lock: bool, where: dict):
    """Hold the measurement lock for one phase; record the load and date just inside it, before and after."""
    with open(LOCK, "a") as f:
        if use_lock:
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            where["before"] = stamp()
            yield
            where["after"] = stamp()
        finally:
            if use_lock:
                fcntl.flock(f, fcntl.LOCK_UN)


def hardware() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "?")
    flags = next((line for line in lscpu.splitlines() if line.startswith("Flags")), "")
    return {"cpu": model, "cores": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags,
            "amx_bf16": "amx_bf16" in flags, "platform": platform.platform(), "torch_threads": torch.get_num_threads()}


def run_rnn(texts: list[str], minutes: float, extra: list[str], val_text: str, dynamic: DynamicEvalConfig | None,
            phase: dict, keep: str | None) -> None:
    with tempfile.TemporaryDirectory() as out:
        out = keep or out
        cmd = [sys.executable, "-m", "rnnkit", "train", "charlm", "--text", *texts, "--minutes", str(minutes),
               "--out", out, "--quiet", "--sample-length", "0", *extra]
        start = time.monotonic()
        trained = None   # what ran: the task's own line (cell, size, the backend that ran, the arithmetic)
        with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as run:
            for line in run.stderr:   # shown as it comes
                sys.stderr.write(line)
                if trained is None and line.startswith("charlm:"):
                    trained = line.strip()
        phase["wall_s"] = round(time.monotonic() - start, 1)
        if run.returncode:
            raise subprocess.CalledProcessError(run.returncode, cmd)
        if trained is None:
            raise RuntimeError("the charlm run printed no 'charlm:' line: what trained cannot be recorded")
        phase["trained"] = trained
        hist = list(csv.DictReader(open(Path(out) / "history.csv")))
        phase["curve"] = [{"time": float(h["time"]), "step": int(h["step"]), "train_loss": round(float(h["loss"]), 4),
                           "val_loss": round(float(h["val_loss"]), 4)} for h in hist if h.get("val_loss")]
        phase["updates"] = int(hist[-1]["step"])
        model, vocab = charlm.load_model(str(Path(out) / "last.safetensors"))
    phase["val_loss"] = round(charlm.evaluate(model, vocab, val_text)["loss"], 4)
    phase["parameters"] = sum(p.numel() for p in model.parameters())
    phase["model"] = model.config.to_dict()
    if dynamic is not None:   # a separate metric, under its own name
        start = time.monotonic()
        d = charlm.evaluate_dynamic(model, vocab, val_text, dynamic)
        phase["dynamic_eval"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}
        phase["dynamic_eval"]["seconds"] = round(time.monotonic() - start, 1)


def run_transformer(train_text: str, val_text: str, minutes: float, config: dict, phase: dict, seed: int) -> None:
    torch.manual_seed(seed)
    vocab = Vocabulary.build(train_text)   # as the RNN: the training text's characters, UNK for the rest
    c = tf.TransformerConfig(vocab_size=len(vocab), **config)
    model = tf.CharTransformer(c)
    phase["config"] = vars(c) | {}
    phase["parameters"] = sum(p.numel() for p in model.parameters())
    seconds = 60 * minutes
    r = tf.train(model, vocab.encode(train_text), vocab.encode(val_text), seconds, eval_seconds=seconds / 8,
                 seed=seed, log=lambda s: print(s, file=sys.stderr))
    phase.update(r)


def plot(result: dict, png: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    extra = " ".join(result.get("rnn", {}).get("options") or [])
    for key, label in (("rnn", f"rnnkit charlm ({extra or 'defaults'})"), ("transformer", "causal transformer")):
        phase = result.get(key)
        if phase and phase.get("curve"):
            t = [p["time"] for p in phase["curve"]]
            v = [p["val_loss"] for p in phase["curve"]]
            ax.plot(t, v, "o-", label=f"{label}: {phase['val_loss']:.3f}")
    ax.set_xlabel("training wall-clock seconds (2-core CPU)")
    ax.set_ylabel("held-out loss (nats/char)")
    ax.set_title(f"{Path(result['text'][0]).name}: last 10% held out, {result['minutes']:g} minutes each")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = Path(png).with_name(f".{Path(png).name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png)


def combine(rnn_file: str, tf_file: str, out: str, png: str | None) -> int:
    rnn, tf_ = json.loads(Path(rnn_file).read_text()), json.loads(Path(tf_file).read_text())
    for key in ("text", "characters", "minutes"):
        if rnn[key] != tf_[key]:
            raise SystemExit(f"the two runs differ in {key}: {rnn[key]!r} and {tf_[key]!r}")
    result = dict(rnn, transformer=tf_["transformer"], combined_from=[rnn_file, tf_file])
    result["rnn_minus_transformer"] = round(result["rnn"]["val_loss"] - result["transformer"]["val_loss"], 4)
    atomic_write(out, (json.dumps(result, indent=1) + "\n").encode())
    if png:
        plot(result, png)
    print(f"rnn {result['rnn']['val_loss']:.4f}, transformer {result['transformer']['val_loss']:.4f} nats/char")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", nargs="+", metavar="FILE")
    p.add_argument("--combine", nargs=2, metavar=("RNN.json", "TRANSFORMER.json"),
                   help="no training: join the rnn phase of one result file and the transformer phase of another "
                        "(two runs of this script on the same text and budget) into --out and --png")
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget of each model (default: 10)")
    p.add_argument("--out", required=True, help="JSON result file (not overwritten)")
    p.add_argument("--png", help="learning curves (needs matplotlib)")
    p.add_argument("--only", choices=("both", "rnn", "transformer"), default="both")
    p.add_argument("--no-lock", action="store_true", help="do not take the measurement lock (untimed trials)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-dynamic", action="store_true", help="skip the RNN's dynamic evaluation")
    p.add_argument("--keep", metavar="DIR", help="keep the RNN's checkpoints in DIR (a new directory)")
    p.add_argument("--dynamic-lr", type=float, default=DynamicEvalConfig.lr)
    p.add_argument("--dynamic-decay", type=float, default=DynamicEvalConfig.decay)
    # the transformer's defaults are charlm_transformer.TransformerConfig's (the best setting found, charlm.md)
    tf_defaults = {f.name: f.default for f in dataclasses.fields(tf.TransformerConfig) if f.name != "vocab_size"}
    for name in ("layers", "width", "heads", "context", "batch_size", "warmup", "lr", "dropout", "weight_decay"):
        default = tf_defaults[name]   # int or float: the flag parses as its default's type
        p.add_argument(f"--tf-{name.replace('_', '-')}", type=type(default), default=default,
                       help=f"transformer {name} (default: {default})")
    p.add_argument("--tf-precision", choices=("fp32", "bf16"), default=tf_defaults["precision"])
    a = p.parse_args(own)
    try:   # the task's own check of an output file, before any work: results are never overwritten
        check_out_file(a.out, (".json",), False, "--out", "name a new file")
        if a.png:
            check_out_file(a.png, (".png",), False, "--png", "name a new file")
    except UserError as e:
        raise SystemExit(str(e)) from None
    if a.combine:
        return combine(*a.combine, a.out, a.png)
    if not a.text:
        raise SystemExit("--text FILE is required")
    if a.keep and Path(a.keep).exists():
        raise SystemExit(f"--keep {a.keep} exists: name a new directory")
    dynamic = None if a.no_dynamic else DynamicEvalConfig(lr=a.dynamic_lr, decay=a.dynamic_decay)
    text = read_texts(a.text)
    options = charlm.Options(text=a.text)
    train_text, val_text = charlm.split_text(text, options.val_fraction, options.batch_size * options.seq_len)
    tf_config = {"layers": a.tf_layers, "width": a.tf_width, "heads": a.tf_heads, "context": a.tf_context,
                 "batch_size": a.tf_batch_size, "warmup": a.tf_warmup, "lr": a.tf_lr, "dropout": a.tf_dropout,
                 "weight_decay": a.tf_weight_decay, "precision": a.tf_precision}
    result = {"text": a.text, "characters": len(text), "train_characters": len(train_text),
              "held_out_characters": len(val_text), "split": "first 90% trains, last 10% held out",
              "minutes": a.minutes, "hardware": hardware(),
              "versions": versions(),
              "note": ("run one phase after the other, each under the measurement lock at normal priority; each "
                       "phase records the machine's load before and after it (anything else running shows there). "
                       "RNN: `rnnkit train charlm` defaults, its evaluations count in its budget; transformer: "
                       "its evaluations do not count in its budget. Both held-out losses are over the whole "
                       "held-out text (RNN: carried state; transformer: sliding window, stride context/2).")}
    if a.only in ("both", "rnn"):
        result["rnn"] = {"options": extra}
        with measuring(not a.no_lock, result["rnn"]):
            run_rnn(a.text, a.minutes, extra, val_text, dynamic, result["rnn"], a.keep)
        print(f"rnnkit charlm: {result['rnn']['val_loss']:.4f} nats/char after {result['rnn']['updates']} updates",
              file=sys.stderr)
    if a.only in ("both", "transformer"):
        result["transformer"] = {}
        with measuring(not a.no_lock, result["transformer"]):
            run_transformer(train_text, val_text, a.minutes, tf_config, result["transformer"], a.seed)
    if "rnn" in result and "transformer" in result:
        result["rnn_minus_transformer"] = round(result["rnn"]["val_loss"] - result["transformer"]["val_loss"], 4)
    atomic_write(a.out, (json.dumps(result, indent=1) + "\n").encode())
    if a.png:
        plot(result, a.png)
    for key in ("rnn", "transformer"):
        if key in result:
            d = result[key].get("dynamic_eval")
            print(f"{key}: static {result[key]['val_loss']:.4f} nats/char on the held-out text"
                  + (f"; dynamic evaluation (separate metric) {d['dynamic_loss']:.4f}" if d else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
