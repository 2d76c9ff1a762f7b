"""TextVectorizer: texts to integer token ids, fitted on a corpus (Keras's TextVectorization in spirit).

    vec = TextVectorizer(max_tokens=20000).fit(train_texts)
    ids, lengths = vec.encode_batch(["a fine film", "dull"])    # (2, T) int64, (2,) int64
    vec.vocabulary()[:4]                                        # ['', '[UNK]', 'the', ',']

Index 0 is padding and index 1 the out-of-vocabulary token (OOV), as in
Keras; the rest of the vocabulary is ordered by frequency in the fitted texts
(ties alphabetically), cut to ``max_tokens`` entries in all. Steps:

1. standardize: "lower_and_strip_punctuation" (Keras's default), "lower", or None;
2. split: "whitespace" (Keras's default), "word" (runs of letters and digits,
   and every punctuation mark as its own token: "isn't great!" -> isn ' t great !),
   "character", or "subword" (a WordPiece vocabulary of ``max_tokens`` pieces
   learned from the fitted texts with the Hugging Face ``tokenizers`` package);
3. map to ids; ``max_length`` keeps the first tokens of a long text.

``to_dict`` / ``from_dict`` give a JSON-able form, stored in checkpoints.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Iterable

import torch

PAD, OOV = "", "[UNK]"
STANDARDIZE = ("lower_and_strip_punctuation", "lower", None)
SPLIT = ("whitespace", "word", "character", "subword")
WORD = re.compile(r"\w+|[^\w\s]")
PUNCTUATION = re.compile("[" + re.escape(string.punctuation) + "]")


def missing_extra(package: str, what: str) -> ImportError:
    return ImportError(f"{what} needs the {package!r} package: pip install 'rnnkit[text]'")


class TextVectorizer:
    def __init__(self, max_tokens: int | None = 20000, standardize: str | None = "lower_and_strip_punctuation",
                 split: str = "whitespace", max_length: int | None = None, min_count: int = 1):
        if standardize not in STANDARDIZE:
            raise ValueError(f"unknown standardize {standardize!r}; expected one of {STANDARDIZE}")
        if split not in SPLIT:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLIT}")
        if max_tokens is not None and max_tokens < 3:
            raise ValueError(f"max_tokens counts padding and OOV too: it must be at least 3, got {max_tokens}")
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be a positive integer or None, got {max_length}")
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        self.max_tokens, self.standardize, self.split = max_tokens, standardize, split
        self.max_length, self.min_count = max_length, min_count
        self.tokens: list[str] = []       # the vocabulary, PAD and OOV first
        self.index: dict[str, int] = {}
        self.subword = None               # a tokenizers.Tokenizer for split="subword"

    # ---- fitting ----------------------------------------------------------------------------------
    def fit(self, texts: Iterable[str]) -> "TextVectorizer":
        """Learn the vocabulary from ``texts`` (Keras's ``adapt``); returns self."""
        texts = [self.clean(t) for t in texts]
        if self.split == "subword":
            self.subword = train_wordpiece(texts, self.max_tokens or 30000)
            self.tokens = [PAD] + [self.subword.id_to_token(i) for i in range(1, self.subword.get_vocab_size())]
        else:
            counts = Counter(tok for t in texts for tok in self.pieces(t))
            kept = sorted(((c, w) for w, c in counts.items() if c >= self.min_count and w not in (PAD, OOV)),
                          key=lambda cw: (-cw[0], cw[1]))
            room = None if self.max_tokens is None else self.max_tokens - 2
            self.tokens = [PAD, OOV] + [w for _, w in kept[:room]]
        self.index = {w: i for i, w in enumerate(self.tokens)}
        return self

    adapt = fit   # the Keras name

    def vocabulary(self) -> list[str]:
        """The tokens by id: '' (padding), '[UNK]' (OOV), then the fitted tokens."""
        return list(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    # ---- mapping ----------------------------------------------------------------------------------
    def clean(self, text: str) -> str:
        if self.standardize is None:
            return text
        text = text.lower()
        return PUNCTUATION.sub("", text) if self.standardize == "lower_and_strip_punctuation" else text

    def pieces(self, cleaned: str) -> list[str]:
        """The tokens of an already standardized text."""
        if self.split == "whitespace":
            return cleaned.split()
        if self.split == "word":
            return WORD.findall(cleaned)
        if self.split == "character":
            return list(cleaned)
        return self.subword.encode(cleaned).tokens

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` after standardizing and splitting (before mapping to ids)."""
        self.check_fitted()
        return self.pieces(self.clean(text))[:self.max_length]

    def encode(self, text: str) -> list[int]:
        """Token ids of one text; unknown tokens are 1 (OOV)."""
        self.check_fitted()
        cleaned = self.clean(text)
        if self.split == "subword":
            return self.subword.encode(cleaned).ids[:self.max_length]
        get = self.index.get
        return [get(tok, 1) for tok in self.pieces(cleaned)[:self.max_length]]

    def encode_batch(self, texts: Iterable[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, T) right-padded with 0, and lengths (B,): the batch a model reads."""
        return pad([self.encode(t) for t in texts])

    def __call__(self, texts) -> torch.Tensor:
        """Keras's call: a batch of texts (or one text) -> padded ids (B, T)."""
        return self.encode_batch([texts] if isinstance(texts, str) else texts)[0]

    def decode(self, ids) -> list[str]:
        return [self.tokens[int(i)] for i in ids if int(i) != 0]

    def oov_rate(self, texts: Iterable[str]) -> float:
        """The fraction of tokens in ``texts`` that map to OOV."""
        ids = [i for t in texts for i in self.encode(t)]
        return sum(i == 1 for i in ids) / max(len(ids), 1)

    def check_fitted(self) -> None:
        if not self.tokens:
            raise ValueError("the TextVectorizer has no vocabulary yet: call fit(texts) first")

    # ---- saving -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"max_tokens": self.max_tokens, "standardize": self.standardize, "split": self.split,
                "max_length": self.max_length, "min_count": self.min_count, "vocabulary": self.tokens,
                "subword": self.subword.to_str() if self.subword is not None else None}

    @classmethod
    def from_dict(cls, d: dict) -> "TextVectorizer":
        vec = cls(d["max_tokens"], d["standardize"], d["split"], d["max_length"], d["min_count"])
        vec.tokens = list(d["vocabulary"])
        vec.index = {w: i for i, w in enumerate(vec.tokens)}
        if d.get("subword"):
            try:
                from tokenizers import Tokenizer
            except ImportError:
                raise missing_extra("tokenizers", "a subword vocabulary") from None
            vec.subword = Tokenizer.from_str(d["subword"])
        return vec


def pad(rows: list[list[int]], value: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Lists of ids -> (B, T) right-padded int64 and (B,) lengths (T at least 1)."""
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    out = torch.full((len(rows), max(1, int(lengths.max()) if len(rows) else 1)), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out, lengths


def train_wordpiece(texts: list[str], vocab_size: int):
    """A WordPiece vocabulary learned from ``texts`` (Hugging Face tokenizers); ids 0 and 1 are PAD and OOV."""
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    except ImportError:
        raise missing_extra("tokenizers", "split='subword'") from None
    tok = Tokenizer(models.WordPiece(unk_token=OOV))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()     # \w+ and punctuation runs, as split="word"
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[PAD]", OOV], show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok
