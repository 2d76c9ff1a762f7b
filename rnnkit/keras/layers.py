"""keras.layers on rnnkit: the recurrent layers with Keras's return_state convention, and the others."""
from ..layers import (Activation, Conv1D, Dense, Dropout, Embedding, Flatten, GlobalAveragePooling1D,
                      GlobalMaxPooling1D, Input, Masking, MaxPooling1D, RepeatVector, SpatialDropout1D,
                      TimeDistributed)
from ..layers.keras_rnn import GRU, LSTM, Bidirectional, SimpleRNN

__all__ = ["Activation", "Bidirectional", "Conv1D", "Dense", "Dropout", "Embedding", "Flatten",
           "GlobalAveragePooling1D", "GlobalMaxPooling1D", "GRU", "Input", "LSTM", "Masking", "MaxPooling1D",
           "RepeatVector", "SimpleRNN", "SpatialDropout1D", "TimeDistributed"]
