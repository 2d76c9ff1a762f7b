"""benchmarks/charlm_vs_transformer.py refuses its output files before any training: a result is never replaced."""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "charlm_vs_transformer.py"


def refusal(*args):
    r = subprocess.run([sys.executable, str(SCRIPT), *args, "--no-lock", "--minutes", "0.01"],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""


@pytest.mark.parametrize("which", ["out", "png", "png-folder", "out-suffix"])
def test_output_files_are_checked_before_any_work(tmp_path, which):
    text = tmp_path / "t.txt"
    text.write_text("abc " * 5000)
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    if which == "out":
        out.write_text("{}")
    elif which == "png":
        png.write_bytes(b"old")
    elif which == "png-folder":
        png = tmp_path / "no-such-folder" / "r.png"
    else:
        out = tmp_path / "r.txt"
    code, last = refusal("--text", str(text), "--out", str(out), "--png", str(png), "--only", "rnn")
    assert code != 0
    expected = {"out": "exists", "png": "exists", "png-folder": "does not exist", "out-suffix": ".json"}[which]
    assert expected in last, last
    if which == "out":
        assert out.read_text() == "{}"
    else:
        assert not (tmp_path / "r.json").exists()
    if which == "png":   # the old check let an existing PNG be replaced
        assert png.read_bytes() == b"old"


def test_the_result_records_what_trained(tmp_path):
    """The RNN phase keeps the task's own line: the cell, the backend that ran and the arithmetic."""
    import json
    text, out = tmp_path / "t.txt", tmp_path / "r.json"
    text.write_text("the cat sat on the mat. " * 400)
    r = subprocess.run([sys.executable, str(SCRIPT), "--text", str(text), "--out", str(out), "--only", "rnn",
                        "--no-lock", "--no-dynamic", "--minutes", "1", "--", "--hidden-size", "8", "--max-steps", "2",
                        "--batch-size", "2", "--seq-len", "8", "--cell", "gru", "--precision", "fp32"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    trained = json.loads(out.read_text())["rnn"]["trained"]
    assert trained.startswith("charlm: ") and "(2 x 8 gru); backend " in trained and trained.endswith(", fp32")
    assert trained in r.stderr   # still shown to the user
