"""rnnkit: recurrent neural networks on PyTorch, readable and fast."""
from . import backends, cells, data, kernels, layers
from .errors import UserError
from .export import export_onnx
from .layers import (GRU, LSTM, RNN, Bidirectional, JordanRNN, LayerNormLSTM, MinGRU, MinLSTM, Recurrent,
                     SimpleRNN, Stacked)
from .layers.convert import from_torch, to_torch
from .models import Sequential
from .models.saving import load_model

__version__ = "0.1.0"

__all__ = ["backends", "cells", "data", "kernels", "layers", "RNN", "SimpleRNN", "LSTM", "GRU", "JordanRNN", "LayerNormLSTM",
           "MinGRU", "MinLSTM", "Recurrent", "Bidirectional", "Stacked", "from_torch", "to_torch", "Sequential",
           "load_model", "export_onnx", "UserError", "__version__"]
