"""The options every task shares are declared once (tasks/contract.py): a task changes only their defaults."""
from dataclasses import fields

import pytest
import torch

from helpers import error_of
from rnnkit.cli import main
from rnnkit.tasks import TASKS, contract, load_task
from rnnkit.tasks.options import option_types

SHARED = {f.name: f for f in fields(contract.TaskOptions)}
OWN = {("charlm", "train")}   # declared by the task itself: charlm's --train takes several text files
OPT_IN = ("weight_decay", "patience", "warmup_steps", "eval_every")   # the supervised tasks', and charlm's, seq2seq's
TRAINING = [f.name for f in fields(contract.TaskOptions) if f.metadata["group"] == "training"
            and f.name not in OPT_IN]   # every task's


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_task_takes_the_shared_declarations_and_changes_only_defaults(task):
    """Type, range, choices, group, metavar and per_run (out, the time budget: per run, as resume expects) of a
    shared option are the one declaration's in every task; only the default (and what a batch item is, what the
    output directory holds: the help) may be the task's."""
    options = load_task(task).Options
    own, types = {f.name: f for f in fields(options)}, option_types(options)
    shared_types = option_types(contract.TaskOptions)
    assert set(TRAINING) <= set(own), sorted(set(TRAINING) - set(own))   # the same training options everywhere
    for name, declared in SHARED.items():
        if name not in own or (task, name) in OWN:
            continue
        meta = {k: v for k, v in own[name].metadata.items() if k != "help"}
        assert meta == {k: v for k, v in declared.metadata.items() if k != "help"}, name
        assert types[name] == shared_types[name], name
    assert own["out"].metadata["per_run"] and own["minutes"].metadata["per_run"]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_threads_is_checked_before_any_work_in_every_task(task, tmp_path, capsys):
    out = tmp_path / "run"
    line = error_of(capsys, ["train", task, "--threads", "0", "--out", str(out)])
    assert "option threads must be an integer in [1, 1024], got 0" in line
    assert not out.exists()


@pytest.mark.parametrize("argv, expected", [(["--threads", "3"], 3), ([], None)])
def test_threads_hold_for_the_run_and_are_restored(monkeypatch, tmp_path, argv, expected):
    """--threads sets torch's intra-op threads for the run; without it a task leaves torch's number alone."""
    from rnnkit.tasks import adding
    seen = []
    monkeypatch.setattr(adding, "run", lambda o: seen.append(torch.get_num_threads()) or 0)
    before = torch.get_num_threads()
    assert main(["train", "adding", "--out", str(tmp_path / "run"), *argv]) == 0
    assert seen == [expected or before] and torch.get_num_threads() == before


def test_the_help_of_a_shared_option_reads_the_same_in_every_task():
    """Where the task gives no meaning of its own, a shared option's help is the one declaration's."""
    for task in TASKS:
        own = {f.name: f for f in fields(load_task(task).Options)}
        for name in ("minutes", "lr", "schedule", "clip_norm", "seed", "max_steps", "optimizer"):
            assert own[name].metadata["help"] == SHARED[name].metadata["help"], (task, name)


WARMUP_TASKS = sorted(t for t in TASKS if "warmup_steps" in {f.name for f in fields(load_task(t).Options)})


def test_warmup_and_eval_every_are_declared_once_with_each_tasks_default_and_meaning():
    """Each task kept its default and its help's meaning when the declarations moved to contract.TaskOptions;
    the range, group and per_run are the one declaration's (the test above)."""
    defaults = {"charlm": 20, "seq2seq": 50, "caption": 50, "forecast": 0}   # the warmup each task had
    assert set(WARMUP_TASKS) == {"caption", "charlm", "classify", "forecast", "seq2seq", "tag"}
    for task in WARMUP_TASKS:
        o = load_task(task).Options
        own = {f.name: f for f in fields(o)}
        assert own["warmup_steps"].default is None and own["eval_every"].default is None, task
        if task in defaults:
            assert f"default: {defaults[task] or 'none'}" in own["warmup_steps"].metadata["help"], task
        assert "every N updates (default: once per epoch)" in own["eval_every"].metadata["help"], task
    assert contract.warmup(contract.TaskOptions(), min(50, 7)) == 7   # classify, tag: 50, at most one epoch
    assert contract.warmup(contract.TaskOptions(schedule="plateau"), 50) == 0
    assert contract.warmup(contract.TaskOptions(warmup_steps=3), 50) == 3


@pytest.mark.parametrize("task", WARMUP_TASKS)
def test_warmup_with_plateau_is_one_line_before_any_work(task, tmp_path, capsys):
    out = tmp_path / "run"
    line = error_of(capsys, ["train", task, "--schedule", "plateau", "--warmup-steps", "5", "--out", str(out)])
    assert "warmup_steps is not available with the plateau schedule" in line
    line = error_of(capsys, ["train", task, "--eval-every", "0", "--out", str(out)])
    assert "option eval_every must be an integer in [1, 2**31], got 0" in line
    assert not out.exists()


def test_the_plateau_schedule_trains_a_supervised_task(tmp_path, capsys):
    """The plateau schedule cannot warm up: the task's default warmup is none with it (it was a traceback)."""
    assert main(["train", "classify", "--schedule", "plateau", "--max-steps", "2", "--epochs", "1",
                 "--embedding-dim", "8", "--hidden-size", "8", "--quiet", "--out", str(tmp_path / "run")]) == 0


def test_a_supervised_task_validates_every_n_updates_with_eval_every(tmp_path):
    import json
    out = tmp_path / "run"
    assert main(["train", "classify", "--eval-every", "3", "--max-steps", "7", "--epochs", "1", "--embedding-dim", "8",
                 "--hidden-size", "8", "--quiet", "--out", str(out)]) == 0
    steps = [r["step"] for r in json.loads((out / "history.json").read_text()) if r.get("val_acc") is not None]
    assert steps == [3, 6, 7], steps
