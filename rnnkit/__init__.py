"""rnnkit: recurrent neural networks on PyTorch, readable and fast."""
from . import cells, kernels, layers
from .layers import (GRU, LSTM, RNN, Bidirectional, JordanRNN, LayerNormLSTM, Recurrent, SimpleRNN,
                     Stacked)
from .layers.convert import from_torch, to_torch

__version__ = "0.1.0"

__all__ = ["cells", "kernels", "layers", "RNN", "SimpleRNN", "LSTM", "GRU", "JordanRNN", "LayerNormLSTM",
           "Recurrent", "Bidirectional", "Stacked", "from_torch", "to_torch", "__version__"]
