"""Sequence layers: the runner, the wrappers, the textbook constructors and Keras's other layers."""
from .basic import Dense, Embedding
from .base import SequenceLayer, lengths_to_mask
from .conv import Conv1D, GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D
from .keras_layers import (Activation, Dropout, Flatten, Input, Masking, RepeatVector, SpatialDropout1D,
                           TimeDistributed)
from .recurrent import Recurrent, recur
from .rnn import GRU, LSTM, RNN, JordanRNN, LayerNormLSTM, MinGRU, MinLSTM, SimpleRNN
from .wrappers import Bidirectional, Stacked
from . import keras_rnn

# A cell's name (as in rnnkit.cells.CELLS) -> the textbook layer that runs it: models take cells by name.
BY_CELL = {"rnn": SimpleRNN, "jordan": JordanRNN, "lstm": LSTM, "gru": GRU, "lnlstm": LayerNormLSTM,
           "mingru": MinGRU, "minlstm": MinLSTM}

# Keras's layers that are not recurrent (rnnkit.keras.layers exports these and keras_rnn's).
KERAS_LAYERS = ["Input", "Embedding", "Dense", "Masking", "Dropout", "SpatialDropout1D", "TimeDistributed",
                "RepeatVector", "Flatten", "Activation", "Conv1D", "MaxPooling1D", "GlobalMaxPooling1D",
                "GlobalAveragePooling1D"]

KerasSimpleRNN, KerasLSTM, KerasGRU, KerasBidirectional = (keras_rnn.SimpleRNN, keras_rnn.LSTM, keras_rnn.GRU,
                                                           keras_rnn.Bidirectional)

__all__ = ["SequenceLayer", "lengths_to_mask", "Recurrent", "recur", "RNN", "SimpleRNN", "LSTM", "GRU",
           "JordanRNN", "LayerNormLSTM", "MinGRU", "MinLSTM", "Bidirectional", "Stacked", "BY_CELL",
           "KerasSimpleRNN", "KerasLSTM", "KerasGRU", "KerasBidirectional"] + KERAS_LAYERS
