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
TRAINING = [f.name for f in fields(contract.TaskOptions) if f.metadata["group"] == "training"
            and f.name not in ("weight_decay", "patience")]   # every task's; the other two: the supervised tasks'


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
