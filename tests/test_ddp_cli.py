"""``torchrun --nproc-per-node 2 -m rnnkit train TASK``: user errors on every rank, and real runs (slow)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def torchrun(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "rnnkit", "train", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def rank_status(stderr: str) -> list[int]:
    """The exit status of each worker, from torchrun's summary of a failed run."""
    return [int(code) for code in re.findall(r"^\s+exitcode\s*: (-?\d+)", stderr, re.M)]


def test_a_user_error_is_one_line_and_status_2_on_every_rank(tmp_path):
    """The output directory holds a previous run: rank 0 checks it, every rank stops with status 2 before
    any work, and the error is printed once, without a traceback from rnnkit."""
    (tmp_path / "last.safetensors").write_bytes(b"x")
    r = torchrun("adding", "--out", str(tmp_path), "--max-steps", "1", timeout=300)
    errors = [line for line in r.stderr.splitlines() if line.startswith("rnnkit: error:")]
    assert errors == [f"rnnkit: error: {tmp_path} holds the checkpoints of a previous run; pass --resume to "
                      "continue it, --overwrite to replace it, or another --out"], r.stderr
    assert sorted(rank_status(r.stderr)) == [2, 2], r.stderr
    assert 'File "' + str(ROOT / "rnnkit") not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors"]


@pytest.mark.slow
def test_torchrun_trains_charlm_and_resumes(tmp_path):
    """The README's command, short: two processes train, rank 0 writes one checkpoint and one history;
    --resume continues on two processes."""
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    common = ["--text", str(text), "--hidden-size", "32", "--num-layers", "1", "--batch-size", "8", "--seq-len", "20",
              "--out", str(tmp_path / "run"), "--quiet", "--sample-length", "20"]
    r = torchrun("charlm", *common, "--max-steps", "6")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("validation:") == 1 and "after 6 updates" in r.stdout
    assert (tmp_path / "run" / "history.json").is_file()
    r = torchrun("charlm", *common, "--max-steps", "12", "--resume")
    assert r.returncode == 0, r.stderr
    assert "after 12 updates" in r.stdout
    rows = json.loads((tmp_path / "run" / "history.json").read_text())
    assert rows[-1]["step"] == 12


@pytest.mark.slow
def test_torchrun_trains_a_classifier(tmp_path):
    r = torchrun("classify", "--hidden-size", "16", "--embedding-dim", "16", "--epochs", "1", "--max-steps", "5",
                 "--out", str(tmp_path / "run"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("accuracy") == 1 and "5 updates" in r.stdout
    assert (tmp_path / "run" / "best.safetensors").is_file()


def test_an_error_every_rank_meets_in_the_task_is_printed_once(tmp_path):
    """Every rank reads the same binary --text and fails inside the task, after the options and --out were agreed:
    the ranks tell each other through the session's key-value store, and only the first to fail prints it."""
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc\x00def")
    r = torchrun("charlm", "--text", str(bad), "--out", str(tmp_path / "run"), "--max-steps", "1", timeout=300)
    errors = [line for line in r.stderr.splitlines() if line.startswith("rnnkit: error:")]
    assert errors == [f"rnnkit: error: {bad} looks binary (it contains NUL bytes); expected UTF-8 text"], r.stderr
