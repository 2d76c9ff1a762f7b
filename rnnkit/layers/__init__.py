"""Sequence layers: the runner, the wrappers and the textbook constructors."""
from .basic import Dense, Embedding
from .base import SequenceLayer, lengths_to_mask
from .recurrent import Recurrent, recur
from .rnn import GRU, LSTM, RNN, JordanRNN, LayerNormLSTM, MinGRU, MinLSTM, SimpleRNN
from .wrappers import Bidirectional, Stacked

# A cell's name (as in rnnkit.cells.CELLS) -> the textbook layer that runs it: models take cells by name.
BY_CELL = {"rnn": SimpleRNN, "jordan": JordanRNN, "lstm": LSTM, "gru": GRU, "lnlstm": LayerNormLSTM,
           "mingru": MinGRU, "minlstm": MinLSTM}

__all__ = ["SequenceLayer", "lengths_to_mask", "Recurrent", "recur", "RNN", "SimpleRNN", "LSTM", "GRU",
           "JordanRNN", "LayerNormLSTM", "MinGRU", "MinLSTM", "Bidirectional", "Stacked", "Embedding", "Dense", "BY_CELL"]
