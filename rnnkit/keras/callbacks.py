"""keras.callbacks on rnnkit."""
from ..train.callbacks import (Callback, CSVLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint,
                               ReduceLROnPlateau, TerminateOnNaN)

__all__ = ["Callback", "CSVLogger", "EarlyStopping", "LearningRateScheduler", "ModelCheckpoint", "ReduceLROnPlateau",
           "TerminateOnNaN"]
