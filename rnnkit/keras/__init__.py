"""Keras's import paths on rnnkit: change ``keras`` to ``rnnkit.keras`` and the program runs.

    from rnnkit.keras.models import Sequential, load_model
    from rnnkit import keras; keras.Model(inputs, outputs)       # the functional API, for chains of layers
    from rnnkit.keras.layers import Embedding, LSTM, Dense
    from rnnkit.keras import optimizers, callbacks, metrics, losses
    from rnnkit.keras.utils import pad_sequences, to_categorical

Mirrors ``keras.models``, ``keras.layers``, ``keras.callbacks``, ``keras.metrics``,
``keras.losses``, ``keras.optimizers``, ``keras.utils`` and Keras 2's
``keras.preprocessing.sequence``. docs/keras.md lists every difference.
"""
from . import callbacks, layers, losses, metrics, models, optimizers, preprocessing, utils
from .layers import Input
from .models import Model, Sequential, load_model

__all__ = ["callbacks", "layers", "losses", "metrics", "models", "optimizers", "preprocessing", "utils", "Input",
           "Model", "Sequential", "load_model"]
