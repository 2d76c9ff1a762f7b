"""The ``rnnkit info`` report: versions, threads, cells and their backends."""
from __future__ import annotations

import platform

import torch

from . import __version__
from .cells import CELLS
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


def report() -> str:
    lines = [f"rnnkit {__version__}", f"PyTorch {torch.__version__}",
             f"Python {platform.python_version()} ({platform.machine()})",
             f"threads {torch.get_num_threads()}", "", "cell                                  backend"]
    for label, name, cell_opts, layer_opts in VARIANTS:
        layer = Recurrent(CELLS[name](1, 8, **cell_opts), **layer_opts)
        lines.append(f"{label:<38}{layer.backend}")
    return "\n".join(lines)
