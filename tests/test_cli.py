"""The command line: one-line user errors with status 2, and a real training run that learns and resumes."""
import json

import pytest

from rnnkit.cli import main
from rnnkit.tasks.adding import BASELINE_MSE, Options
from rnnkit.tasks.options import parse_options
from rnnkit.train import load_checkpoint

from helpers import error_of




def toml(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("argv,expected", [
    (["train", "nosuch"], "unknown task 'nosuch'; available tasks: adding"),
    (["train"], "train needs a task"),
    (["train", "adding", "--hidden-sise", "3"], "unrecognized arguments: --hidden-sise"),
    (["train", "adding", "--hidden-size", "many"], "argument --hidden-size: invalid int value: 'many'"),
    (["train", "adding", "--cell", "tpu"], "argument --cell: invalid choice"),
    (["train", "adding", "--hidden-size", "0"], "option hidden_size must be an integer in [1, 2**16], got 0"),
    (["train", "adding", "--config", "/no/such/file.toml"], "config file not found"),
    (["train", "adding", "--resume", "--out", "/no/such/dir"], "nothing to resume"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_user_errors_are_one_line_with_status_2(capsys, argv, expected):
    assert expected in error_of(capsys, argv)


@pytest.mark.parametrize("text,expected", [
    ("hidden_size = [", "is not valid TOML"),
    ("", "is empty"),
    ("colour = 3", "unknown option 'colour'"),
    ("[model]\nhidden_size = 'big'", "option hidden_size in .* must be int, got 'big'"),
    ("cell = 'tpu'", r"option cell must be one of"),
])
def test_bad_config_files(capsys, tmp_path, text, expected):
    import re
    assert re.search(expected, error_of(capsys, ["train", "adding", "--config", toml(tmp_path, text)]))


def test_config_file_then_command_line(tmp_path):
    path = toml(tmp_path, "[model]\nhidden-size = 7\ncell = 'gru'\n[training]\nlr = 1\n")
    o = parse_options(Options, ["--config", path, "--hidden-size", "9"], "p", "d")
    assert (o.hidden_size, o.cell, o.lr, o.seq_len) == (9, "gru", 1.0, 50)


def test_help_lists_tasks_and_grouped_options(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "adding" in capsys.readouterr().out
    assert main(["train", "--help"]) == 0 and "adding" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "adding", "--help"])
    out = capsys.readouterr().out
    for text in ("data options", "model options", "training options", "output options", "--hidden-size",
                 "units per layer"):
        assert text in out


def test_train_adding_learns_checkpoints_and_resumes(tmp_path, capsys):
    common = ["train", "adding", "--seq-len", "20", "--train-size", "2000", "--val-size", "500",
              "--hidden-size", "32", "--epochs", "4", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "full")]) == 0
    assert "best validation MSE" in capsys.readouterr().out
    history = json.loads((tmp_path / "full" / "history.json").read_text())
    assert history[-1]["val_loss"] < 0.5 * BASELINE_MSE   # it learned: far below predicting the mean
    full = load_checkpoint(tmp_path / "full" / "last.safetensors")
    assert full.config["model"]["hidden_size"] == 32 and (tmp_path / "full" / "best.safetensors").is_file()

    cut = common + ["--out", str(tmp_path / "cut")]
    assert main(cut + ["--max-steps", "50"]) == 0
    assert load_checkpoint(tmp_path / "cut" / "last.safetensors").state["trainer"]["global_step"] == 50
    assert main(cut + ["--resume"]) == 0
    resumed = load_checkpoint(tmp_path / "cut" / "last.safetensors").state["trainer"]["losses"]
    assert resumed == full.state["trainer"]["losses"]
