"""The task contract, written once: every supervised task follows it.

    rnnkit train TASK [--train FILE] [--valid FILE] [--minutes N] [--epochs N] [--out DIR] [options]
    rnnkit train TASK --out DIR --resume [--minutes N] [--epochs N]   # the run's own options and vocabularies
    rnnkit evaluate --checkpoint CK --data FILE [--json]
    rnnkit predict --checkpoint CK [FILE|-]

A task module (tasks/classify.py, tasks/tag.py) declares ``Options`` as a
subclass of ``TaskOptions`` (the shared options below, its own added; a shared
option's default changed with ``shared``) and provides:

* ``run(options)``: call ``start(options, name)`` first (it checks --out and, with
  --resume, returns the run's options and checkpoint), read the data (``--train``,
  else its built-in set; with no ``--valid`` a seeded ``val_fraction`` of it is
  held out), build its model (from the checkpoint when resuming), call
  ``train(...)`` here, which runs the one Trainer, monitors validation accuracy,
  prints it per epoch and reports the best checkpoint at the end;
* ``evaluate(checkpoint, path, png) -> dict``: the task's metrics on a labelled
  file (flat names to values; nested dicts for per-class figures);
* ``report(metrics) -> str``: the same for people;
* ``predict(checkpoint, path, stream)``: unlabelled input in, predictions out.

The checkpoint (OUT/best.safetensors and OUT/last.safetensors) is the
Trainer's: safetensors weights and a JSON header whose task config holds
``task`` (the module's name), the model config, the vocabularies and label
names, and the options: nothing else is needed to predict.
"""
from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..train import Trainer, TrainConfig, load_checkpoint, restore_model, seed_everything
from ..train.optim import OPTIMIZERS, SCHEDULES
from .options import RunOptions, check_out_dir, check_out_file, option, resume_options


@dataclass
class TrainOptions(RunOptions):
    """The training options every task has, declared once: help, type, range and per_run. A task subclasses it
    (or TaskOptions) and changes an option's default with ``shared(name, default)``; --out, --resume,
    --overwrite and --quiet come from RunOptions."""
    minutes: float | None = option(10.0, "wall-clock budget for training (the schedule spans it)", "training",
                                   bounds="(0, 1e7]", per_run=True)
    epochs: int = option(20, "passes over the training data, if the budget lasts", "training", bounds="[1, 2**31]",
                         per_run=True)
    max_steps: int | None = option(None, "stop after this many updates", "training", bounds="[1, 2**62]",
                                   per_run=True)
    batch_size: int = option(32, "examples per batch", "training", bounds="[1, 2**20]")
    optimizer: str = option("adam", "optimizer", "training", choices=tuple(sorted(OPTIMIZERS)))
    lr: float = option(2e-3, "peak learning rate", "training", bounds="(0, inf)")
    schedule: str = option("cosine", "learning-rate schedule (cosine spans --minutes when given)", "training",
                           choices=SCHEDULES)
    clip_norm: float = option(5.0, "clip the global gradient norm to this (0: off)", "training", bounds="[0, inf)")
    seed: int = option(0, "random seed for the data, the weights and the order", "training", bounds="[0, 2**63)")
    threads: int | None = option(None, "torch threads for training (default: torch's own number)", "training",
                                 bounds="[1, 1024]", per_run=True)

    def __post_init__(self):
        super().__post_init__()   # types, choices, ranges, finiteness; --resume with --overwrite: tasks/options.py
        if self.schedule == "plateau" and getattr(self, "warmup_steps", None):   # a task that has the option
            raise UserError("option warmup_steps is not available with the plateau schedule; leave it out")


@dataclass
class TaskOptions(TrainOptions):
    """The options every supervised task shares (a task changes a default with ``shared``): the training
    options, its data files and the held-out part, weight decay and early stopping."""
    train: str | None = option(None, "labelled training file (default: the task's built-in data)", "data",
                               metavar="FILE")
    valid: str | None = option(None, "labelled validation file (default: a seeded val_fraction of --train)",
                               "data", metavar="FILE")
    val_fraction: float = option(0.1, "share of the training data held out for validation when there is "
                                      "no --valid", "data", bounds="(0, 0.5)")
    weight_decay: float = option(0.0, "weight decay", "training", bounds="[0, inf)")
    patience: int | None = option(None, "stop after this many validations without a better accuracy (one per "
                                        "epoch, plus one every --eval-every updates)", "training", bounds="[1, 2**31]")
    warmup_steps: int | None = option(None, "linear warmup updates (default: 50, at most one epoch's; none with "
                                            "plateau)", "training", bounds="[0, 2**31]")
    eval_every: int | None = option(None, "also validate every N updates (default: once per epoch)", "training",
                                    bounds="[1, 2**31]", per_run=True)

    def __post_init__(self):
        super().__post_init__()   # the training options' checks (TrainOptions)
        for name in ("train", "valid"):
            path = getattr(self, name)
            if path is not None and path != "-" and not Path(path).is_file():
                raise UserError(f"--{name} file not found: {path}" if not Path(path).exists()
                                else f"--{name} {path} is not a file")


SHARED = {f.name: f for f in fields(TaskOptions)}   # every shared declaration, by name


def shared(name: str, default, help: str | None = None):
    """The shared option ``name`` (TaskOptions and its bases) with this task's ``default``: its type, range,
    choices, group and per_run stay the one declaration's. ``help``: only where the option means something
    of this task's own (what one item of a batch is, what the output directory holds)."""
    declared = SHARED[name]
    return field(default=default, metadata={**declared.metadata, "help": help or declared.metadata["help"]})


def warmup(o: TrainOptions, default: int) -> int:
    """The linear warmup updates of a run: its --warmup-steps, else the task's ``default``; none with the plateau
    schedule (which cannot warm up: TaskOptions refuses --warmup-steps with it)."""
    if o.warmup_steps is not None:
        return o.warmup_steps
    return 0 if o.schedule == "plateau" else default


def start(o: TaskOptions, task: str | None = None):
    """The first thing a task's ``run`` does: check the output directory before any work (a file, under a file,
    not writable, or holding a previous run without --resume or --overwrite: one line, exit 2), then seed.

    ``task``: the name of a task that can resume. With --resume, OUT/last.safetensors must be that task's, the
    run's own options replace the defaults (one the user set to another value is refused: resume_options), and
    a run whose budget is spent is refused. Returns (options, the checkpoint to resume from or None)."""
    if o.resume and task is None:
        raise UserError("this task cannot --resume a run yet; start a new run (--overwrite, or another --out)")
    path = check_out_dir(o.out, o.resume, o.overwrite)
    ck = None
    if path is not None:
        ck = load_checkpoint(path)
        found = ck.config.get("task") if isinstance(ck.config, dict) else None
        if found != task:
            raise UserError(f"{path} is a checkpoint of task {found!r}, not of the {task} task")
        o = resume_options(o, ck.config.get("options"), str(path))
        check_budget_left(o, ck.state.get("trainer") if isinstance(ck.state, dict) else None, path)
    seed_everything(o.seed)
    return o, ck


def run_task(task, o: TrainOptions) -> int:
    """``task.run(o)`` under its --threads; the exit status."""
    with torch_threads(o.threads):
        return task.run(o) or 0


@contextlib.contextmanager
def torch_threads(n: int | None):
    """torch's intra-op threads set to ``n`` for a run (a task's --threads), restored after it; None: torch's
    own number, left alone."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_budget_left(o: TaskOptions, state, path) -> None:
    """UserError when the run saved in ``path`` has already spent the budget it is resumed with."""
    if not isinstance(state, dict):
        return   # the Trainer refuses a checkpoint without a training state when it resumes
    spent = []   # (what was done, the option that extends it)
    if isinstance(state.get("epoch"), int) and state["epoch"] >= o.epochs:
        spent.append((f"{o.epochs} epochs", "--epochs"))
    if o.max_steps is not None and isinstance(state.get("global_step"), int) and state["global_step"] >= o.max_steps:
        spent.append((f"{o.max_steps} updates", "--max-steps"))
    if o.minutes is not None and isinstance(state.get("elapsed"), (int, float)) and state["elapsed"] >= 60 * o.minutes:
        spent.append((f"{o.minutes:g} minutes", "--minutes"))
    if spent:
        raise UserError(f"the run in {path} has already done its {' and '.join(w for w, _ in spent)}; to continue "
                        f"it, pass a larger {' and '.join(f for _, f in spent)} with --resume")


def check_rate(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise UserError(f"option {name} must be in [0, 1), got {value}")


def holdout(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices: a seeded random ``fraction`` of range(n) is validation."""
    n_val = int(round(n * fraction))
    if n_val < 1 or n - n_val < 1:
        raise UserError(f"{n} examples are too few to hold out {fraction:.0%} for validation; "
                        "pass more data or a --valid file")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[n_val:]), sorted(order[:n_val])


def check_labels(labels, known: list[str], path: str, what: str = "labels") -> None:
    """UserError naming the labels of ``path`` that the model does not know."""
    unknown = sorted(set(labels) - set(known))
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise UserError(f"{path} has {what} the checkpoint does not know: {shown} "
                        f"(it knows {', '.join(map(repr, known[:10]))}{'...' if len(known) > 10 else ''})")


def train(model: torch.nn.Module, step, train_data, val_data, o: TaskOptions, task_config: dict,
          resume=None) -> Trainer:
    """The one training run of every task: validation accuracy chooses the best checkpoint. ``resume``: the
    checkpoint ``start`` returned, to continue from."""
    config = TrainConfig(epochs=o.epochs, max_steps=o.max_steps, max_minutes=o.minutes, optimizer=o.optimizer,
                         lr=o.lr, weight_decay=o.weight_decay, schedule=o.schedule,
                         warmup_steps=warmup(o, min(50, len(train_data))), min_lr_ratio=0.05,
                         clip_norm=o.clip_norm or None, monitor="val_acc", patience=o.patience,
                         eval_every=o.eval_every, seed=o.seed, verbose=0 if o.quiet else 1, out_dir=o.out)
    check_out_dir(o.out, o.resume, o.overwrite)   # again, for a caller that did not start with start(o)
    options = {k: v for k, v in asdict(o).items() if k not in ("resume", "overwrite")}
    trainer = Trainer(model, step, config, task_config={**task_config, "options": options})
    trainer.fit(train_data, val_data, resume=str(resume.path) if resume is not None else None)
    return trainer


def best_row(trainer: Trainer) -> dict:
    rows = [r for r in trainer.history.rows if r.get("val_acc") is not None]
    return max(rows, key=lambda r: r["val_acc"]) if rows else {}


def load_best(trainer: Trainer, model: torch.nn.Module) -> str:
    """Load OUT/best.safetensors into ``model``; its path."""
    path = str(Path(trainer.config.out_dir) / "best.safetensors")
    restore_model(model, load_checkpoint(path))
    return path


def load_task_checkpoint(path: str):
    """(task module, checkpoint) of a checkpoint written by any task."""
    from . import load_task
    if not Path(path).is_file():
        raise UserError(f"checkpoint not found: {path}")
    ck = load_checkpoint(path)
    name = ck.config.get("task")
    if not isinstance(name, str):
        raise UserError(f"{path} holds no task name: it was not written by rnnkit train")
    return load_task(name), ck


# ---- rnnkit evaluate / rnnkit predict -------------------------------------------------------------

def evaluate_command(checkpoint: str, data: list[str], as_json: bool, png: str | None) -> int:
    task, ck = load_task_checkpoint(checkpoint)
    if ck.config["task"] == "charlm":   # the language model predates the contract: its figures, same form
        result, report = charlm_metrics(checkpoint, data), None
    elif hasattr(task, "evaluate_file"):
        result = task.evaluate_file(ck, data, png)
        report = task.report
    else:
        raise UserError(f"task {ck.config['task']!r} cannot evaluate a data file")
    if as_json:
        print(json.dumps(result))
    else:
        print(report(result) if report else ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v:,}"
                                                      for k, v in result.items()))
    return 0


def charlm_metrics(checkpoint: str, data: str) -> dict:
    from ..data.text import read_text
    from . import charlm
    model, vocab = charlm.load_model(checkpoint)
    return charlm.evaluate(model, vocab, read_text(data))


def predict_command(checkpoint: str, source: str) -> int:
    task, ck = load_task_checkpoint(checkpoint)
    if not hasattr(task, "predict"):
        hint = ": use rnnkit generate" if ck.config["task"] == "charlm" else ""
        raise UserError(f"task {ck.config['task']!r} has no predict{hint}")
    task.predict(ck, source, sys.stdout)
    return 0


def check_png(png: str | None, what: str, overwrite: bool = False, name: str = "--attention-png") -> Path | None:
    """Validated before any work, as every output file (options.check_out_file): ``png`` is a .png path in a
    folder that exists and can be written, not an existing file unless ``overwrite``; and matplotlib is
    installed (UserError naming ``what``, e.g. "the attention map"). ``name``: the option that gave it. None
    passes."""
    if png is None:
        return None
    path = check_out_file(png, (".png",), overwrite, name)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError(f"{what} needs matplotlib: pip install 'rnnkit[plot]'") from None
    return path


def save_confusion_png(matrix, labels: list[str], path: Path) -> str | None:
    """The confusion matrix as a PNG (scikit-learn's display); None with a note if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from sklearn.metrics import ConfusionMatrixDisplay
    except ImportError:
        print("rnnkit: note: the confusion-matrix PNG needs matplotlib: pip install 'rnnkit[plot]'", file=sys.stderr)
        return None
    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    display = ConfusionMatrixDisplay(np.asarray(matrix), display_labels=labels)
    display.plot(ax=ax, colorbar=False, xticks_rotation="vertical")
    ax.set_title("confusion matrix (rows: true, columns: predicted)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return str(path)
