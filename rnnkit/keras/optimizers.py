"""keras.optimizers on rnnkit, with Keras's defaults (train/keras_optim.py)."""
from ..train.keras_optim import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Nadam, RMSprop

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "Adamax", "AdamW", "Nadam", "RMSprop"]
