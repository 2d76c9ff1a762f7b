"""keras.preprocessing (Keras 2's path) on rnnkit: ``sequence.pad_sequences``.

Keras's TextVectorization / Tokenizer map to rnnkit.data.TextVectorizer (docs/keras.md).
"""
from . import sequence

__all__ = ["sequence"]
