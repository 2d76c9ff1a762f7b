"""RNNs from scratch in NumPy: the textbook equations, forward and backward, with no framework.

NumPy only (no torch import anywhere in this package), so a learner can read
every derivative. The gate order and parameter layout are torch's, the same
as rnnkit's cells (``rnnkit/cells/``): weights copy one to one, and the tests
check these hand gradients against finite differences and against torch
autograd through rnnkit's cells.

    cells     one step of the Elman RNN, LSTM and GRU, and its backward step
    sequence  softmax output, cross-entropy, backpropagation through time (full and truncated)
    optim     Adagrad and Adam
    charmodel the character model with one-hot inputs ("hello" -> "ello")

Shapes: x (B, T, I) batch first, as in rnnkit; a state is a tuple of (B, S)
arrays: (h,) for the RNN and GRU, (h, c) for the LSTM.
"""
from .sequence import bptt, forward, output_backward, softmax, softmax_cross_entropy, tbptt
from .cells import CELLS, init_params, params_from
from .charmodel import CharModel, one_hot
from .optim import Adagrad, Adam

__all__ = ["CELLS", "init_params", "params_from", "forward", "bptt", "tbptt", "softmax", "softmax_cross_entropy",
           "output_backward", "Adagrad", "Adam", "CharModel", "one_hot"]
