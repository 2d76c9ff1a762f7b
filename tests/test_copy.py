"""The copy/memory task: its data, its baseline, its options, and a real run that learns to copy."""
import math

import pytest
import torch

from rnnkit.cli import main
from rnnkit.tasks.copy import Options, baseline_loss, copy_data
from rnnkit.train import load_checkpoint


def test_copy_data_layout():
    x, y = copy_data(4, delay=6, length=3, symbols=5, seed=1)
    assert x.shape == y.shape == (4, 12)
    assert ((x[:, :3] >= 1) & (x[:, :3] <= 5)).all()
    assert (x[:, 3:8] == 0).all() and (x[:, 8] == 6).all() and (x[:, 9:] == 0).all()   # blanks, delimiter at 3+6-1
    assert (y[:, :9] == 0).all() and torch.equal(y[:, 9:], x[:, :3])
    assert not torch.equal(copy_data(4, 6, 3, 5, seed=2)[0], x)


def test_baseline_is_blanks_then_a_uniform_guess():
    assert baseline_loss(100, 10, 8) == pytest.approx(10 * math.log(8) / 120)


@pytest.mark.parametrize("argv,expected", [
    (["--delay", "0"], "delay must be an integer in [1, 2**20]"),
    (["--symbols", "1"], "symbols must be an integer in [2, 2**16]"),
    (["--cell", "tpu"], "invalid choice"),
])
def test_bad_options_are_one_line(capsys, argv, expected):
    assert main(["train", "copy", *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


def test_copy_task_trains_below_its_baseline_and_logs_gradients(tmp_path, capsys):
    """A real (short) run through the CLI: the loss falls below the blank-then-guess baseline."""
    out = tmp_path / "run"
    assert main(["train", "copy", "--delay", "3", "--length", "2", "--symbols", "3", "--cell", "gru",
                 "--hidden-size", "8", "--lr", "0.03", "--train-size", "1600", "--val-size", "100", "--epochs", "1",
                 "--batch-size", "20", "--log-grad-norms", "--quiet", "--out", str(out)]) == 0
    assert "whole sequences right" in capsys.readouterr().out
    row = load_checkpoint(out / "best.safetensors").state["trainer"]["history"][-1]
    assert row["val_loss"] < 0.8 * baseline_loss(3, 2, 3) and row["val_acc"] > 0.5
    assert row["grad_norm"] > 0 and 0.0 <= row["clipped"] <= 1.0 and "grad_norm:head" in row


@pytest.mark.slow
def test_copy_task_learns_to_copy(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "copy", "--delay", "3", "--length", "2", "--symbols", "3", "--cell", "gru",
                 "--hidden-size", "16", "--lr", "0.02", "--train-size", "6000", "--val-size", "200", "--epochs", "1",
                 "--batch-size", "20", "--quiet", "--out", str(out)]) == 0
    row = load_checkpoint(out / "best.safetensors").state["trainer"]["history"][-1]
    assert row["val_solved"] > 0.9 and row["val_loss"] < baseline_loss(3, 2, 3) / 3
