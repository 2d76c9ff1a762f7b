"""Sequence layers: the runner, the wrappers and the textbook constructors."""
from .base import SequenceLayer, lengths_to_mask
from .recurrent import Recurrent, recur
from .rnn import GRU, LSTM, RNN, JordanRNN, LayerNormLSTM, SimpleRNN
from .wrappers import Bidirectional, Stacked

__all__ = ["SequenceLayer", "lengths_to_mask", "Recurrent", "recur", "RNN", "SimpleRNN", "LSTM", "GRU",
           "JordanRNN", "LayerNormLSTM", "Bidirectional", "Stacked"]
