"""A text classifier (many-to-one): read a whole sequence of tokens, output one label.

    ids (B, T) -> embedding (B, T, E) -> recurrent encoder of any cell, bidirectional
    and stacked as asked, padding masked by lengths (B, T, H) -> pooling over the valid
    steps (B, H) -> dropout -> linear -> logits (B, C)

Pooling: "last" (the final state; with a bidirectional encoder the forward
direction's last valid step and the backward direction's first), "mean" and
"max" over the valid steps, or "attention": a learned score per step,
softmax over the valid steps, the weighted sum of the states (Bahdanau et al.
2015's additive score, as Yang et al. 2016 use it for documents). The
attention weights of the latest forward pass are kept in ``last_attention``
(B, T), zero on padding, for inspection.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .. import layers

CELLS = layers.BY_CELL
POOLINGS = ("last", "mean", "max", "attention")


@dataclass
class ClassifierConfig:
    """Everything needed to rebuild a TextClassifier (saved beside its weights)."""
    vocab_size: int
    num_classes: int
    cell: str = "lstm"
    embedding_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.3   # on the embeddings, between layers and before the head

    def to_dict(self) -> dict:
        return asdict(self)


class AttentionPooling(nn.Module):
    """score_t = v^T tanh(W h_t + b); a = softmax over valid t; pooled = sum_t a_t h_t."""

    def __init__(self, size: int):
        super().__init__()
        self.proj = nn.Linear(size, size)
        self.v = nn.Linear(size, 1, bias=False)

    def forward(self, seq: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.v(torch.tanh(self.proj(seq))).squeeze(-1)       # (B, T)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)  # (B, T), 0 on padding
        return torch.einsum("bt,bth->bh", weights, seq), weights


class TextClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig):
        super().__init__()
        if config.cell not in CELLS:
            raise ValueError(f"unknown cell {config.cell!r}; expected one of {sorted(CELLS)}")
        if config.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {config.pooling!r}; expected one of {POOLINGS}")
        if config.num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {config.num_classes}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.rnn = CELLS[config.cell](config.hidden_size, input_size=config.embedding_dim,
                                      num_layers=config.num_layers, bidirectional=config.bidirectional,
                                      dropout=config.dropout, return_sequences=config.pooling != "last")
        size = self.rnn.output_size
        self.attend = AttentionPooling(size) if config.pooling == "attention" else None
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(size, config.num_classes)
        self.last_attention: torch.Tensor | None = None

    @property
    def backend(self) -> str:
        return self.rnn.backend

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T), lengths (B,) -> the pooled text vectors (B, H)."""
        lengths = lengths.clamp(min=1)                                  # an empty text reads one pad token
        mask = layers.lengths_to_mask(lengths, ids.shape[1])            # (B, T)
        out = self.rnn(self.drop(self.embed(ids)), lengths=lengths)     # (B, T, H), or (B, H) for "last"
        pooling = self.config.pooling
        if pooling == "last":
            return out
        if pooling == "mean":
            return out.sum(1) / lengths[:, None].to(out.dtype)         # padded steps are zeros
        if pooling == "max":
            return out.masked_fill(~mask[..., None], float("-inf")).amax(1)
        pooled, self.last_attention = self.attend(out, mask)
        return pooled

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T) int64 right-padded, lengths (B,) -> logits (B, C)."""
        return self.head(self.drop(self.encode(ids, lengths)))
