"""Data: stream-contiguous batching for long sequences, text and vocabularies."""
from .streams import StreamBatches
from .text import UNK, Vocabulary, builtin_corpus, read_text, read_texts
from .vectorizer import TextVectorizer

__all__ = ["StreamBatches", "UNK", "Vocabulary", "builtin_corpus", "read_text", "read_texts", "TextVectorizer"]
