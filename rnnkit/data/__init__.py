"""Data: stream-contiguous batching for long sequences, text and vocabularies."""
from .sequences import pad_sequences
from .streams import StreamBatches
from .text import UNK, Vocabulary, builtin_corpus, read_text, read_texts
from .vectorizer import TextVectorizer

__all__ = ["pad_sequences", "StreamBatches", "UNK", "Vocabulary", "builtin_corpus", "read_text", "read_texts",
           "TextVectorizer"]
