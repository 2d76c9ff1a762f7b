"""A sequence tagger (many-to-many, aligned): one tag per token.

    words (B, T) -> word embedding (B, T, E)  ┐
    chars (B, T, L) -> per-word character    ├ concat -> dropout -> bidirectional recurrent encoder
        encoder (B, T, C)                     ┘   of any cell, padding masked (B, T, H) -> dropout
    -> linear -> emission scores (B, T, K) -> softmax per token, or a CRF over the sentence

The character encoder reads each word's characters, so an unseen word still
gets a vector from its spelling (Lample et al. 2016 use a character BiLSTM,
Ma & Hovy 2016 a character CNN; both are here: ``char_encoder`` "lstm" or
"cnn"). The loss is the per-token cross-entropy over valid tokens only, or the
CRF's negative log-likelihood of the whole tag sequence.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import layers
from .crf import CRF

CELLS = layers.BY_CELL
CHAR_ENCODERS = ("cnn", "lstm", "none")


@dataclass
class TaggerConfig:
    """Everything needed to rebuild a Tagger (saved beside its weights)."""
    vocab_size: int
    char_vocab_size: int
    num_tags: int
    cell: str = "lstm"
    word_dim: int = 100
    char_dim: int = 32
    char_size: int = 64          # the character encoder's output per word
    char_encoder: str = "cnn"
    hidden_size: int = 128       # per direction
    num_layers: int = 1
    dropout: float = 0.33
    crf: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class CharEncoder(nn.Module):
    """chars (N, L) of N words -> (N, C): a width-3 CNN with max over time, or a BiLSTM's final states."""

    def __init__(self, kind: str, vocab: int, dim: int, size: int):
        super().__init__()
        self.kind = kind
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        if kind == "cnn":
            self.conv = nn.Conv1d(dim, size, kernel_size=3, padding=1)
        else:
            self.rnn = layers.LSTM(size // 2, input_size=dim, bidirectional=True)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        lengths = (chars != 0).sum(1).clamp(min=1)
        x = self.embed(chars)                                               # (N, L, D)
        if self.kind == "cnn":
            h = self.conv(x.transpose(1, 2)).transpose(1, 2)                # (N, L, C)
            mask = layers.lengths_to_mask(lengths, chars.shape[1])
            return torch.relu(h.masked_fill(~mask[..., None], float("-inf")).amax(1))
        return self.rnn(x, lengths=lengths)                                 # (N, C)


class Tagger(nn.Module):
    def __init__(self, config: TaggerConfig):
        super().__init__()
        if config.cell not in CELLS:
            raise ValueError(f"unknown cell {config.cell!r}; expected one of {sorted(CELLS)}")
        if config.char_encoder not in CHAR_ENCODERS:
            raise ValueError(f"unknown char_encoder {config.char_encoder!r}; expected one of {CHAR_ENCODERS}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.word_dim)
        with_chars = config.char_encoder != "none"
        self.chars = CharEncoder(config.char_encoder, config.char_vocab_size, config.char_dim,
                                 config.char_size) if with_chars else None
        size = config.word_dim + (config.char_size if with_chars else 0)
        self.rnn = CELLS[config.cell](config.hidden_size, input_size=size, num_layers=config.num_layers,
                                      bidirectional=True, dropout=config.dropout, return_sequences=True)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.rnn.output_size, config.num_tags)
        self.crf = CRF(config.num_tags) if config.crf else None

    @property
    def backend(self) -> str:
        return self.rnn.backend

    def forward(self, words: torch.Tensor, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """words (B, T), chars (B, T, L) (0-padded), lengths (B,) -> emission scores (B, T, K)."""
        mask = layers.lengths_to_mask(lengths, words.shape[1])              # (B, T)
        x = self.embed(words)                                               # (B, T, E)
        if self.chars is not None:
            c = x.new_zeros(*words.shape, self.config.char_size)            # (B, T, C)
            c[mask] = self.chars(chars[mask]).to(x.dtype)                   # only the real words
            x = torch.cat([x, c], -1)
        h = self.rnn(self.drop(x), lengths=lengths)                         # (B, T, H)
        return self.head(self.drop(h))

    def loss(self, emissions: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mean per-token cross-entropy over valid tokens, or the CRF's mean negative log-likelihood per token."""
        mask = layers.lengths_to_mask(lengths, tags.shape[1])
        if self.crf is not None:
            return self.crf.nll(emissions.float(), tags, mask) * len(lengths) / mask.sum()
        return F.cross_entropy(emissions.float()[mask], tags[mask])

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The predicted tags (B, T): per-token argmax, or the CRF's Viterbi path."""
        mask = layers.lengths_to_mask(lengths, emissions.shape[1])
        if self.crf is not None:
            return self.crf.viterbi(emissions.float(), mask)[0]
        return emissions.argmax(-1).masked_fill(~mask, 0)
