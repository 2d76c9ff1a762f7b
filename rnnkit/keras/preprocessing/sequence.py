"""keras.preprocessing.sequence on rnnkit."""
from ...data.sequences import pad_sequences

__all__ = ["pad_sequences"]
