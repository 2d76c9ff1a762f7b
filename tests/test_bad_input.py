"""Bad input and faults, by kind (issue 10): each is one line ``rnnkit: error: ...`` on stderr, status 2 for a
user error (1 for a real I/O failure during the work), no traceback, and it arrives before any training.

Most cases run the CLI's main() in-process (fast); TestSubprocess runs a few as a user would.
Tests run as root, so "not writable" is simulated (a failing write probe), never with chmod.
"""
import errno
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit.cli import main
from rnnkit.tasks import charlm
from rnnkit.train import Trainer, TrainConfig, load_checkpoint, save_checkpoint

TEXT = "the cat sat on the mat . a dog ran to the red door . " * 40


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text(TEXT, encoding="utf-8")
    return str(path)


def charlm_args(text, out, *extra):
    return ["train", "charlm", "--text", text, "--hidden-size", "8", "--num-layers", "1", "--embedding-dim", "4",
            "--batch-size", "2", "--seq-len", "8", "--max-steps", "2", "--minutes", "1", "--quiet",
            "--sample-length", "0", "--out", str(out), *extra]


def adding_args(out, *extra):
    return ["train", "adding", "--seq-len", "6", "--train-size", "20", "--val-size", "10", "--hidden-size", "4",
            "--batch-size", "10", "--max-steps", "2", "--quiet", "--out", str(out), *extra]


@pytest.fixture
def no_training(monkeypatch):
    """Any call of Trainer.fit fails the test: the error must arrive before the work."""
    def fit(*args, **kwargs):
        raise AssertionError("training started before the bad input was found")
    monkeypatch.setattr(Trainer, "fit", fit)


def error_line(capsys, argv, status=2) -> str:
    assert main(argv) == status
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("rnnkit: error: ")]
    assert len(errors) == 1 and not any("Traceback" in line for line in err), err
    return errors[0]


@pytest.fixture
def trained(text, tmp_path_factory):
    """A charlm run of two updates: OUT holds last.safetensors and best.safetensors."""
    out = tmp_path_factory.mktemp("run")
    assert main(charlm_args(text, out)) == 0
    return out


class TestErrorsBeforeTheWork:
    """An output location or option value that cannot work is found before the first update."""

    def test_out_is_a_file(self, capsys, text, tmp_path, no_training):
        (tmp_path / "file").write_text("x")
        assert "is a file" in error_line(capsys, charlm_args(text, tmp_path / "file"))
        assert "is a file" in error_line(capsys, adding_args(tmp_path / "file"))

    def test_out_under_a_file(self, capsys, text, tmp_path, no_training):
        (tmp_path / "file").write_text("x")
        line = error_line(capsys, charlm_args(text, tmp_path / "file" / "run"))
        assert "lies under" in line and str(tmp_path / "file") in line

    def test_out_not_writable(self, capsys, text, tmp_path, monkeypatch, no_training):
        import tempfile

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")
        monkeypatch.setattr(tempfile, "mkstemp", refuse)
        line = error_line(capsys, charlm_args(text, tmp_path / "run"))
        assert "cannot write checkpoints to" in line and "Permission denied" in line

    @pytest.mark.parametrize("value", ["nan", "inf", "-1"])
    def test_sampling_temperature(self, capsys, text, tmp_path, no_training, value):
        line = error_line(capsys, charlm_args(text, tmp_path / "run", "--temperature", value))
        assert "option temperature" in line
        assert not (tmp_path / "run").exists()


class TestValuesThatSlipThrough:
    """Declared once in the task's options (typed, ranged, finite), checked whichever way a value arrives."""

    @pytest.mark.parametrize("option,value,expected", [
        ("--minutes", "nan", "option minutes must be a finite number"),
        ("--minutes", "inf", "option minutes must be a finite number"),
        ("--minutes", "0", "option minutes must be a number in (0, 1e7]"),
        ("--lr", "nan", "option lr must be a finite number"),
        ("--lr", "-0.1", "option lr must be a number in (0, inf)"),
        ("--weight-decay", "-1", "option weight_decay"),
        ("--val-fraction", "nan", "option val_fraction"),
        ("--max-steps", "-5", "option max_steps must be an integer in [1, 2**62]"),
        ("--max-steps", "0", "option max_steps"),
        ("--eval-every", "-1", "option eval_every"),
        ("--warmup-steps", "-3", "option warmup_steps"),
        ("--epochs", "-2", "option epochs"),
        ("--sample-length", "-1", "option sample_length"),
        ("--seed", str(2**64), "option seed must be an integer in [0, 2**63)"),
        ("--seed", "-1", "option seed"),
        ("--hidden-size", str(10**30), "option hidden_size must be an integer in [1, 2**16]"),
        ("--batch-size", str(2**70), "option batch_size"),
        ("--embedding-dim", "-4", "option embedding_dim"),
        ("--dropout", "nan", "option dropout"),
    ])
    def test_charlm_values(self, capsys, text, tmp_path, no_training, option, value, expected):
        assert expected in error_line(capsys, charlm_args(text, tmp_path / "run", option, value))

    @pytest.mark.parametrize("option,value,expected", [
        ("--minutes", "nan", "option minutes must be a finite number"),
        ("--max-steps", "-1", "option max_steps"),
        ("--seq-len", "1", "option seq_len"),
        ("--seed", str(2**63), "option seed"),
        ("--lr", "nan", "option lr"),
        ("--clip-norm", "-1", "option clip_norm"),
    ])
    def test_adding_values(self, capsys, tmp_path, no_training, option, value, expected):
        assert expected in error_line(capsys, adding_args(tmp_path / "run", option, value))

    @pytest.mark.parametrize("text_", ["lr = nan", "minutes = inf", "epochs = -1", f"seed = {2**63 - 1}0"])
    def test_config_file_values(self, capsys, tmp_path, no_training, text_):
        (tmp_path / "c.toml").write_text(text_ + "\n")
        line = error_line(capsys, adding_args(tmp_path / "run", "--config", str(tmp_path / "c.toml")))
        assert "option " + text_.split()[0] in line

    def test_sizes_that_would_allocate_terabytes(self, capsys, tmp_path, no_training):
        line = error_line(capsys, adding_args(tmp_path / "run", "--hidden-size", "65536", "--num-layers", "64"))
        assert "GiB" in line and "parameters" in line and "lower --hidden-size" in line

    def test_every_listed_schedule_works_with_the_default_warmup(self, text, tmp_path):
        from rnnkit.train.optim import SCHEDULES
        for schedule in SCHEDULES:
            assert main(charlm_args(text, tmp_path / schedule, "--schedule", schedule)) == 0, schedule
        for schedule in SCHEDULES:
            assert main(adding_args(tmp_path / ("a" + schedule), "--schedule", schedule)) == 0, schedule

    def test_warmup_with_plateau_is_refused(self, capsys, text, tmp_path, no_training):
        line = error_line(capsys, charlm_args(text, tmp_path / "run", "--schedule", "plateau", "--warmup-steps", "5"))
        assert "warmup_steps is not available with the plateau schedule" in line

    @pytest.mark.parametrize("option,value,expected", [
        ("--temperature", "nan", "option temperature must be a finite number"),
        ("--length", "-1", "option length"),
        ("--top-k", "-2", "option top_k"),
        ("--seed", str(2**64), "option seed"),
    ])
    def test_generate_values(self, capsys, tmp_path, option, value, expected):
        assert expected in error_line(capsys, ["generate", "--checkpoint", str(tmp_path / "x"), option, value])

    @pytest.mark.parametrize("options,name", [
        (dict(max_steps=-1), "max_steps"), (dict(eval_every=0), "eval_every"), (dict(warmup_steps=-3), "warmup_steps"),
        (dict(lr=math.nan), "lr"), (dict(max_minutes=math.nan), "max_minutes"), (dict(seed=2**64), "seed"),
        (dict(epochs=-1), "epochs"), (dict(clip_norm=-1.0), "clip_norm"), (dict(checkpoint_every=0), "checkpoint_every"),
    ])
    def test_train_config_values(self, options, name):
        with pytest.raises(ValueError, match=f"TrainConfig {name} must be"):
            TrainConfig(**options)


def tamper(path, change, state_change=None):
    """Rewrite a checkpoint with its header's config (and training state) changed in place."""
    ck = load_checkpoint(path)
    change(ck.config)
    if state_change:
        state_change(ck.state["trainer"])
    save_checkpoint(path, ck.weights, ck.state, ck.config)
    return str(path)


class TestTamperedCheckpoints:
    """A header tampered with, or from another task: one line naming the problem, never IndexError/KeyError."""

    @pytest.mark.parametrize("change,expected", [
        (lambda c: c["model"].update(cell="tpu"), "option cell in checkpoint .* must be one of"),
        (lambda c: c["model"].update(hidden_size=-5), r"option hidden_size in checkpoint .* must be an integer in"),
        (lambda c: c["model"].update(hidden_size=10**12), r"option hidden_size in checkpoint"),
        (lambda c: c["model"].update(hidden_size=2**16, num_layers=64), r"needs about [\d,.]+ GiB"),
        (lambda c: c["model"].update(num_layers="two"), r"option num_layers in checkpoint .* must be int"),
        (lambda c: c["model"].update(dropout=float("nan")), r"option dropout in checkpoint .* finite"),
        (lambda c: c["model"].update(cell="auto"), r"malformed model config: cell 'auto'"),   # never resolved
        (lambda c: c["model"].update(dropout=None), r"malformed model config: .* dropout None"),
        (lambda c: c["model"].update(colour=3), r"malformed model config: unknown \['colour'\]"),
        (lambda c: c["model"].pop("vocab_size"), r"malformed model config"),
        (lambda c: c.pop("model"), r"malformed charlm config"),
        (lambda c: c.update(vocab="abc"), r"malformed charlm config"),
        (lambda c: c.update(vocab=["a", "a", "b"]), r"malformed vocabulary"),
        (lambda c: c.update(vocab=c["vocab"] + ["Z"]), r"inconsistent: vocab_size \d+ but a vocabulary of"),
        (lambda c: (c.update(vocab=c["vocab"] + ["Z"]), c["model"].update(vocab_size=len(c["vocab"]))),
         r"does not match the model: shapes differ"),
        (lambda c: c["model"].update(hidden_size=9), r"does not match the model: shapes differ"),
        (lambda c: c.update(task="adding"), r"is a checkpoint of task 'adding', not of a charlm model"),
        (lambda c: c.clear(), r"is a checkpoint of task None"),
    ])
    def test_generate_from_a_tampered_header(self, capsys, trained, change, expected):
        import re
        path = tamper(trained / "last.safetensors", change)
        assert re.search(expected, error_line(capsys, ["generate", "--checkpoint", path, "--length", "5"]))

    def test_resume_from_a_tampered_header(self, capsys, text, trained):
        tamper(trained / "last.safetensors", lambda c: c["model"].update(cell="tpu"))
        assert "must be one of" in error_line(capsys, charlm_args(text, trained, "--resume"))

    @pytest.mark.parametrize("state_change", [lambda s: s.pop("epoch"), lambda s: s.update(carry=[1, 2]),
                                              lambda s: s.update(optimizer_type=None), lambda s: s.update(rng={})])
    def test_resume_from_a_tampered_training_state(self, capsys, text, trained, state_change):
        tamper(trained / "last.safetensors", lambda c: None, state_change)
        line = error_line(capsys, charlm_args(text, trained, "--resume"))
        assert "checkpoint" in line and ("malformed training state" in line or "was trained with" in line)

    def test_resume_from_another_tasks_checkpoint(self, capsys, tmp_path, trained):
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "last.safetensors").write_bytes((trained / "last.safetensors").read_bytes())
        line = error_line(capsys, adding_args(tmp_path / "run", "--resume"))
        assert "is a checkpoint of task 'charlm', not of the adding task" in line


class TestResumeAndOverwrite:
    """Resuming takes the run's own options; a contradiction is refused; a previous run is never replaced silently."""

    @pytest.mark.parametrize("option,value", [("--cell", "rnn"), ("--hidden-size", "16"), ("--batch-size", "3"),
                                              ("--seq-len", "5"), ("--lr", "0.5")])
    def test_contradicting_options_are_refused(self, capsys, text, trained, option, value):
        line = error_line(capsys, charlm_args(text, trained, "--resume", option, value))
        assert "cannot resume" in line and f"{option} " in line and "the run has" in line

    def test_an_option_newer_than_the_checkpoint_must_keep_its_default(self, capsys, text, trained):
        """A run from before --beta-2 existed trained with its default: another value on resume is refused, not
        taken (the optimizer state would restore the old value under a header that records the new)."""
        tamper(trained / "last.safetensors", lambda c: c["options"].pop("beta_2"))
        line = error_line(capsys, charlm_args(text, trained, "--resume", "--beta-2", "0.99"))
        assert "cannot resume" in line and "--beta-2 0.99 (the run predates the option: 0.999)" in line
        argv = ["train", "charlm", "--out", str(trained), "--resume", "--max-steps", "3", "--quiet",
                "--sample-length", "0", "--beta-2", "0.999"]   # the default is what the run had: it resumes
        assert main(argv) == 0

    def test_resume_without_options_continues_with_the_runs_own(self, text, trained, capsys):
        argv = ["train", "charlm", "--out", str(trained), "--resume", "--max-steps", "4", "--quiet",
                "--sample-length", "0"]   # no --text, no sizes: all from the checkpoint
        assert main(argv) == 0
        ck = load_checkpoint(trained / "last.safetensors")
        assert ck.state["trainer"]["global_step"] == 4 and ck.config["options"]["text"] == [text]
        assert ck.config["model"]["hidden_size"] == 8

    def test_a_resumed_run_keeps_the_cell_auto_chose_for_it(self, text, tmp_path, monkeypatch):
        """--cell auto, the default dropout and --precision auto depend on the CPU: the checkpoint records what they
        were, and a run resumed on another CPU keeps them."""
        monkeypatch.setattr(charlm, "native_bf16", lambda: False)
        out = tmp_path / "run"
        assert main(charlm_args(text, out)) == 0   # auto in fp32, one minute: the GRU without dropout
        options = load_checkpoint(out / "last.safetensors").config["options"]
        assert (options["cell"], options["dropout"], options["precision"]) == ("gru", 0.0, "fp32")
        monkeypatch.setattr(charlm, "native_bf16", lambda: True)   # resumed where auto would mean the LSTM
        assert main(["train", "charlm", "--out", str(out), "--resume", "--max-steps", "4", "--quiet",
                     "--sample-length", "0"]) == 0
        ck = load_checkpoint(out / "last.safetensors")
        options = ck.config["options"]   # what the resumed run used (the model entry is the checkpoint's anyway)
        assert (options["cell"], options["dropout"], options["precision"]) == ("gru", 0.0, "fp32")
        assert ck.state["trainer"]["global_step"] == 4

    def test_a_new_run_does_not_replace_a_previous_one(self, capsys, text, trained):
        before = (trained / "last.safetensors").read_bytes()
        line = error_line(capsys, charlm_args(text, trained))
        assert "holds the checkpoints of a previous run" in line and "--resume" in line and "--overwrite" in line
        assert (trained / "last.safetensors").read_bytes() == before
        assert main(charlm_args(text, trained, "--overwrite", "--seed", "5")) == 0
        assert (trained / "last.safetensors").read_bytes() != before

    def test_resume_and_overwrite_together_are_refused(self, capsys, text, trained):
        assert "contradict" in error_line(capsys, charlm_args(text, trained, "--resume", "--overwrite"))


class TestOSErrors:
    def test_unreadable_text_file(self, capsys, text, tmp_path, monkeypatch):
        real = Path.read_bytes

        def read_bytes(self):
            if str(self) == text:
                raise PermissionError(errno.EACCES, "Permission denied", text)
            return real(self)
        monkeypatch.setattr(Path, "read_bytes", read_bytes)
        line = error_line(capsys, charlm_args(text, tmp_path / "run"))
        assert f"cannot read {text}: Permission denied" in line

    def test_unreadable_config_file(self, capsys, tmp_path, monkeypatch):
        config = tmp_path / "c.toml"
        config.write_text("lr = 0.1\n")

        def read_text(self, *args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")
        monkeypatch.setattr(Path, "read_text", read_text)
        assert "cannot read config file" in error_line(capsys, adding_args(tmp_path / "run", "--config", str(config)))

    def test_disk_full_while_saving_is_one_line_status_1(self, capsys, text, tmp_path, monkeypatch):
        import rnnkit.train.checkpoint as checkpoint

        def full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(checkpoint.os, "fsync", full)
        line = error_line(capsys, charlm_args(text, tmp_path / "run"), status=1)
        assert "No space left on device" in line
        assert not list((tmp_path / "run").glob(".*.tmp"))   # the failed write left no temporary file

    def test_temporaries_of_an_interrupted_write_are_removed_by_the_next_run(self, text, trained):
        stale = trained / ".last.safetensors.k2j4x9.tmp"   # what a write killed before os.replace leaves
        stale.write_bytes(b"partial")
        assert main(charlm_args(text, trained, "--resume", "--max-steps", "3")) == 0
        assert not stale.exists()

    def test_trainer_checks_its_out_dir_before_the_first_update(self, tmp_path):
        (tmp_path / "file").write_text("x")
        model = nn.Linear(2, 1)
        calls = []

        def step(batch, state):
            calls.append(1)
            return rnnkit.train.StepOutput(model(batch).pow(2).mean())
        trainer = Trainer(model, step, TrainConfig(verbose=0, out_dir=str(tmp_path / "file" / "run")))
        with pytest.raises(ValueError, match="cannot write checkpoints to .*file/run"):
            trainer.fit([torch.ones(3, 2)])
        assert not calls

    def test_check_out_dir_keeps_other_hidden_files(self, tmp_path):
        from rnnkit.tasks.options import check_out_dir
        (tmp_path / ".keep").write_text("")
        check_out_dir(str(tmp_path))
        assert (tmp_path / ".keep").exists()


class TestConverters:
    @pytest.mark.parametrize("module,expected", [
        (nn.Linear(3, 4), "expects torch.nn.RNN, LSTM or GRU, got Linear"),
        (nn.LSTMCell(3, 4), "got LSTMCell (a single-step cell"),
        (nn.Sequential(nn.LSTM(3, 4)), "got Sequential"),
        (None, "got NoneType"),
        (nn.GRU(3, 4, bias=False), "bias=False"),
        (nn.LSTM(3, 4, device="meta"), "needs floating-point weights with values"),
    ])
    def test_from_torch(self, module, expected):
        with pytest.raises(ValueError, match=expected.replace("(", r"\(")):
            rnnkit.from_torch(module)

    def test_to_torch(self):
        with pytest.raises(ValueError, match="expects an rnnkit SimpleRNN, LSTM or GRU layer, got torch.nn"):
            rnnkit.to_torch(nn.LSTM(3, 4))


class TestSubprocess:
    """As a user runs it: a separate process, one line on stderr, the status, no traceback."""

    def run(self, *argv):
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        return subprocess.run([sys.executable, "-m", "rnnkit", *argv], capture_output=True, text=True, env=env,
                              timeout=120)

    @pytest.mark.parametrize("argv,expected", [
        (["train", "charlm", "--temperature", "nan"], "option temperature must be a finite number"),
        (["train", "adding", "--max-steps", "-1"], "option max_steps"),
        (["generate", "--checkpoint", "nowhere.safetensors"], "checkpoint not found"),
    ])
    def test_one_line_status_2(self, tmp_path, argv, expected):
        r = self.run(*argv, *(["--out", str(tmp_path / "run")] if argv[0] == "train" else []))
        assert r.returncode == 2 and r.stderr.strip().startswith("rnnkit: error: ") and expected in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr

    def test_out_under_a_file(self, tmp_path):
        (tmp_path / "f").write_text("x")
        r = self.run("train", "adding", "--out", str(tmp_path / "f" / "run"))
        assert r.returncode == 2 and "lies under" in r.stderr and len(r.stderr.strip().splitlines()) == 1
