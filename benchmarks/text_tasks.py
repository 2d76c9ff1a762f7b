"""Measure rnnkit train classify / tag runs: train from the CLI, then evaluate the best checkpoint on a test file.

    python benchmarks/text_tasks.py prepare-tag DIR   # built-in ast roles: train on some modules, test on others
    python benchmarks/text_tasks.py prepare-tag-torch DIR   # a second text: torch.nn's own source, tagged the same way
    python benchmarks/text_tasks.py prepare-docstrings DIR   # built-in docstrings: a seeded 600 as test
    python benchmarks/text_tasks.py run NAME RESULT.jsonl TEST_FILE[,TEST_FILE...] -- classify --train ... --minutes 3

Each ``run`` appends one JSON line to RESULT.jsonl: the command, date and load
(``uptime``) before and after, the best validation accuracy and its epoch, the
number of updates and epochs, and the test metrics from ``rnnkit evaluate --json``
(a fresh process reading the checkpoint; further test files, comma-separated, under "other_tests").
Run it under the measurement lock.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import LOAD_NOTE, commit, uptime

ROOT = Path(__file__).resolve().parents[1]
TEST_MODULES = 8   # prepare-tag: the last 8 modules of ROLE_MODULES are the unseen test section


def versions() -> dict:
    """Python, torch and rnnkit versions (the git commit, "+changes" for a changed tree; RNNKIT_COMMIT names it
    for a copy made with git archive), and the torch threads."""
    import torch
    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "rnnkit_commit": os.environ.get("RNNKIT_COMMIT") or commit(ROOT, changes=True),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset (torch's default)")}


def rnnkit(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rnnkit.cli", *args], capture_output=True, text=True, env=env)


def prepare_tag(out: str) -> None:
    sys.path.insert(0, str(ROOT))
    from rnnkit.data.builtin import ROLE_MODULES, python_roles
    Path(out).mkdir(parents=True, exist_ok=True)
    parts = {"train": ROLE_MODULES[:-TEST_MODULES], "test": ROLE_MODULES[-TEST_MODULES:]}
    for name, modules in parts.items():
        sents = python_roles(modules)
        with open(Path(out) / f"{name}.txt", "w", encoding="utf-8") as f:
            for tokens, tags in sents:
                f.write("".join(f"{w.replace(' ', '_')} {t}\n" for w, t in zip(tokens, tags)) + "\n")
        print(f"{name}: {len(modules)} modules ({', '.join(modules)}), {len(sents)} lines, "
              f"{sum(len(s[0]) for s in sents)} tokens")


def prepare_tag_torch(out: str) -> None:
    """A second text for the tagger, from outside the standard library: the Python source of torch.nn's modules
    (torch/nn/modules/*.py of the pinned torch), tagged by the same ast roles as the built-in data."""
    import torch
    sys.path.insert(0, str(ROOT))
    from rnnkit.data.builtin import tag_source
    files = sorted((Path(torch.__file__).parent / "nn" / "modules").glob("*.py"))
    sents = [s for f in files for s in tag_source(f.read_text(encoding="utf-8"))]
    Path(out).mkdir(parents=True, exist_ok=True)
    with open(Path(out) / "torch-nn.txt", "w", encoding="utf-8") as f:
        for tokens, tags in sents:
            f.write("".join(f"{w.replace(' ', '_')} {t}\n" for w, t in zip(tokens, tags)) + "\n")
    print(f"torch-nn: torch {torch.__version__}, {len(files)} files of torch/nn/modules, {len(sents)} lines, "
          f"{sum(len(s[0]) for s in sents)} tokens")


def prepare_docstrings(out: str) -> None:
    import csv
    import random
    sys.path.insert(0, str(ROOT))
    from rnnkit.data.builtin import stdlib_docstrings
    texts, labels = stdlib_docstrings()
    order = list(range(len(texts)))
    random.Random(5).shuffle(order)
    Path(out).mkdir(parents=True, exist_ok=True)
    for name, rows in (("test", order[:600]), ("train", order[600:])):
        with open(Path(out) / f"{name}.tsv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(["label", "text"])
            w.writerows((labels[i], texts[i]) for i in rows)
        print(f"{name}: {len(rows)} docstrings")


def run(name: str, result: str, test: str, train_args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        record = {"name": name, "command": "rnnkit train " + " ".join(train_args), "date_before": time.ctime(),
                  "uptime_before": uptime(), **versions(),
                  "machine": f"{os.cpu_count()} CPUs; run under the measurement lock; {LOAD_NOTE}"}
        t0 = time.monotonic()
        p = rnnkit("train", *train_args, "--out", str(out), "--quiet")
        record["wall_s"] = round(time.monotonic() - t0, 1)
        if p.returncode:
            raise SystemExit(f"training failed: {p.stderr.strip()[-500:]}")
        history = json.loads((out / "history.json").read_text())
        best = max(history, key=lambda r: r["val_acc"])
        record.update(best_val_acc=best["val_acc"], best_epoch=best["epoch"], best_step=best["step"],
                      epochs=history[-1]["epoch"], updates=history[-1]["step"], report=p.stdout.strip().splitlines())
        tests = {}
        for path in test.split(","):
            e = rnnkit("evaluate", "--checkpoint", str(out / "best.safetensors"), "--data", path, "--json")
            if e.returncode:
                raise SystemExit(f"evaluation on {path} failed: {e.stderr.strip()}")
            tests[path] = {k: v for k, v in json.loads(e.stdout).items() if k not in ("per_class",)}
        record["test_file"], record["test"] = next(iter(tests.items()))
        if len(tests) > 1:
            record["other_tests"] = dict(list(tests.items())[1:])
        record.update(date_after=time.ctime(), uptime_after=uptime())
    with open(result, "a") as f:
        f.write(json.dumps(record) + "\n")
    acc = record["test"].get("accuracy", record["test"].get("token_accuracy"))
    print(f"{name}: best val_acc {record['best_val_acc']:.4f} (epoch {record['best_epoch']}), test {acc:.4f}, "
          f"{record['updates']} updates in {record['wall_s']} s")


if __name__ == "__main__":
    if sys.argv[1] == "prepare-tag":
        prepare_tag(sys.argv[2])
    elif sys.argv[1] == "prepare-tag-torch":
        prepare_tag_torch(sys.argv[2])
    elif sys.argv[1] == "prepare-docstrings":
        prepare_docstrings(sys.argv[2])
    elif sys.argv[1] == "run":
        sep = sys.argv.index("--")
        run(*sys.argv[2:5], sys.argv[sep + 1:])
    else:
        raise SystemExit(__doc__)
