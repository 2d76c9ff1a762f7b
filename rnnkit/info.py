"""The ``rnnkit info`` report: versions, threads, cells and the backend each one runs here.

Each listed layer runs one tiny batch, so the backend shown is the one that ran (this
builds the native kernels on first use, once per cache), and the native modules' state
(built, or why not) is listed with the cache directory.
"""
from __future__ import annotations

import platform
import warnings

import torch

from . import __version__, backends
from .cells import CELLS
from .kernels import build, native, scan
from .layers import Recurrent

# Configurations worth listing: (label, cell name, cell options, layer options).
VARIANTS = [
    ("Elman RNN (tanh)", "rnn", {}, {}),
    ("Elman RNN (relu)", "rnn", {"activation": "relu"}, {}),
    ("Jordan RNN", "jordan", {}, {}),
    ("LSTM", "lstm", {}, {}),
    ("LSTM + projection", "lstm", {"proj_size": 4}, {}),
    ("LSTM + peepholes", "lstm", {"peephole": True}, {}),
    ("GRU (reset after, torch/cuDNN form)", "gru", {}, {}),
    ("GRU (Cho et al. 2014 form)", "gru", {"reset_after": False}, {}),
    ("Layer-normalised LSTM", "lnlstm", {}, {}),
    ("LSTM + recurrent dropout", "lstm", {}, {"recurrent_dropout": 0.25}),
    ("LSTM + zoneout", "lstm", {}, {"zoneout": 0.1}),
    ("minGRU (Feng et al. 2024)", "mingru", {}, {}),
    ("minLSTM (Feng et al. 2024)", "minlstm", {}, {}),
]


def backend_that_runs(name: str, cell_opts: dict, layer_opts: dict) -> str:
    """Run a layer of this configuration on one tiny batch (float32, CPU) and say which backend ran."""
    layer = Recurrent(CELLS[name](1, 8, **cell_opts), **layer_opts)
    with torch.no_grad(), warnings.catch_warnings(), backends.flags(benchmark=False):
        warnings.simplefilter("ignore")  # the reasons are listed below the table
        x = torch.zeros(1, 2, 1)
        layer(x)
    return f"scan ({scan.path(x)})" if layer.backend == "scan" else layer.backend


def report() -> str:
    lines = [f"rnnkit {__version__}", f"PyTorch {torch.__version__}",
             f"Python {platform.python_version()} ({platform.machine()})",
             f"threads {torch.get_num_threads()}", "", "cell                                  backend"]
    for label, name, cell_opts, layer_opts in VARIANTS:
        lines.append(f"{label:<38}{backend_that_runs(name, cell_opts, layer_opts)}")
    lines += ["", f"native modules (cache {build.cache_dir()}):"]
    for module in (native.MODULE, "rnnkit_scan"):  # both loaded (or tried) by the rows above
        reason = build.failure(module) or build.unavailable_reason()
        lines.append(f"  {module:<15} " + ("loaded" if reason is None else f"unavailable: {reason}"))
    lines += ["", f"benchmark mode: {'on' if backends.benchmark else 'off'} (rnnkit.backends.benchmark: the backend "
              "per shape measured at its first call; Keras's fit turns it on); the table shows the static choice"]
    return "\n".join(lines)
