"""Tasks the CLI can train end to end: ``rnnkit train TASK``.

A task is a module with
* a docstring (its first line is the summary in ``rnnkit train --help``),
* ``Options``: a dataclass subclassing ``contract.TrainOptions`` (or ``contract.TaskOptions``), whose
  training and output options are declared once there (a task changes a default with
  ``contract.shared(name, default)``), plus its own fields made with ``options.option(default, help,
  group, choices=, bounds=, per_run=)``; its ``__post_init__`` calls ``super().__post_init__()``
  (``options.validate``: types, choices, ranges, finiteness, in one place) and then checks what involves
  several options (raise UserError),
* ``run(options) -> int | None``: train and report; the return value is the exit status. Before any
  work it calls ``options.check_out_dir(out, resume, overwrite)``; when resuming, it checks the
  checkpoint's header with ``options.check_declared`` and takes the run's own options with
  ``options.resume_options``.
Supervised tasks follow the shared contract of tasks/contract.py (options, data, training, evaluate,
predict, one checkpoint). Adding a task is one new module (and its model in models/) and one line below.
"""
from __future__ import annotations

import importlib

from ..errors import UserError

TASKS = {
    "adding": ("rnnkit.tasks.adding", "the adding problem (Hochreiter & Schmidhuber 1997): sum two marked numbers"),
    "copy": ("rnnkit.tasks.copy", "the copy/memory task (Arjovsky et al. 2016): recall symbols after a delay of T steps"),
    "charlm": ("rnnkit.tasks.charlm", "character-level language model: learn a text, then sample from it"),
    "forecast": ("rnnkit.tasks.forecast", "time-series forecasting, with naive, seasonal naive, ETS and ARIMA beside it"),
    "seq2seq": ("rnnkit.tasks.seq2seq", "sequence to sequence with attention: translation, addition, dates"),
    "classify": ("rnnkit.tasks.classify", "text classification: read a text, predict its label"),
    "tag": ("rnnkit.tasks.tag", "sequence tagging: one tag per token (part of speech, BIO entities)"),
    "caption": ("rnnkit.tasks.caption", "image captioning: a CNN encoder and a recurrent decoder with attention"),
}


def load_task(name: str):
    """The task's module; UserError for a name not in TASKS."""
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; available tasks: {', '.join(sorted(TASKS))}")
    return importlib.import_module(TASKS[name][0])
