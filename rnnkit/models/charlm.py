"""A character-level language model: characters in, the next character out.

    ids (B, T) → embedding (B, T, E), or one-hot (B, T, V) → RNN stack (B, T, H)
               → dropout → linear → logits (B, T, V)

Regularisers for a text seen many times (AWD-LSTM, Merity et al. 2018):
embedding dropout (whole characters' embedding rows, one mask per batch),
dropout on each layer's inputs and before the output, weight dropping on the
recurrent matrices (layers/weight_drop.py), and tied input and output
embeddings (Press & Wolf 2017; Inan et al. 2017): the output layer's weight
is the embedding matrix, after a linear projection H → E when H ≠ E.

The state of the RNN stack is explicit: passed in and returned, so a caller
can carry it across the chunks of a long text (truncated BPTT) and across
the characters of a generated sample.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import layers

RNN_LAYERS = layers.BY_CELL   # --cell name -> the layer that runs it


@dataclass
class CharLMConfig:
    """Everything needed to rebuild a CharLM (saved beside its weights)."""

    vocab_size: int
    cell: str = "gru"
    hidden_size: int = 512
    num_layers: int = 2
    embedding_dim: int = 64  # 0: one-hot inputs (the textbook form)
    dropout: float = 0.0  # between layers and before the output layer
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    weight_dropout: float = 0.0  # DropConnect on the recurrent matrices (AWD-LSTM)
    embedding_dropout: float = 0.0  # drops whole characters' embedding rows, one mask per batch
    tie_weights: bool = False  # the output layer reuses the embedding matrix
    backend: str = "auto"  # the RNN layers' backend (see rnnkit.kernels)

    def to_dict(self) -> dict:
        return asdict(self)


class CharLM(nn.Module):
    def __init__(self, config: CharLMConfig):
        super().__init__()
        if config.cell not in RNN_LAYERS:
            raise ValueError(f"unknown cell {config.cell!r}; expected one of {sorted(RNN_LAYERS)}")
        if config.tie_weights and not config.embedding_dim:
            raise ValueError("tie_weights needs an embedding (embedding_dim > 0), not one-hot inputs")
        if not 0.0 <= config.embedding_dropout < 1.0:
            raise ValueError(f"embedding_dropout must be in [0, 1), got {config.embedding_dropout!r}")
        self.config = config
        V, E = config.vocab_size, config.embedding_dim
        self.embed = nn.Embedding(V, E) if E else None
        if config.tie_weights:   # N(0, 1/E): the tied logits start near zero, not at std sqrt(E)
            nn.init.normal_(self.embed.weight, std=E ** -0.5)
        self.rnn = RNN_LAYERS[config.cell](
            config.hidden_size, input_size=E or V, num_layers=config.num_layers, dropout=config.dropout,
            recurrent_dropout=config.recurrent_dropout, zoneout=config.zoneout,
            weight_dropout=config.weight_dropout, backend=config.backend,
            return_sequences=True, return_state=True)
        self.drop = layers.Dropout(config.dropout)
        self.head = TiedHead(self.embed, self.rnn.output_size) if config.tie_weights else \
            nn.Linear(self.rnn.output_size, V)

    def inputs(self, ids: torch.Tensor) -> torch.Tensor:
        """(…,) int64 ids → (…, E) embeddings or (…, V) one-hot vectors."""
        if self.embed is not None and self.training and self.config.embedding_dropout:
            # Gal & Ghahramani 2016, as AWD-LSTM: a dropped character has a zero embedding in the whole batch
            keep = 1.0 - self.config.embedding_dropout
            rows = torch.bernoulli(self.embed.weight.new_full((self.embed.num_embeddings, 1), keep)) / keep
            return F.embedding(ids, self.embed.weight * rows)                  # (…, E)
        if self.embed is not None:
            return self.embed(ids)
        return F.one_hot(ids, self.config.vocab_size).to(self.head.weight.dtype)

    def forward(self, ids: torch.Tensor, state=None):
        """ids (B, T) → logits (B, T, V), final state of the RNN stack."""
        seq, state = self.rnn(self.inputs(ids), state)
        return self.head(self.drop(seq)), state

    @torch.no_grad()
    def step(self, ids: torch.Tensor, state=None):
        """One character per row: ids (B,) → logits (B, V), the next state (evaluation mode)."""
        y, state = self.rnn.step(self.inputs(ids), state)
        return self.head(y), state


class TiedHead(nn.Module):
    """Logits from the embedding matrix: (…, H) → projection (…, E) → (…, V) = proj · embedᵀ + bias.

    The embedding is shared, not owned: its weight is saved once, as ``embed.weight``.
    """

    def __init__(self, embed: nn.Embedding, in_size: int):
        super().__init__()
        V, E = embed.weight.shape
        self.proj = nn.Linear(in_size, E) if in_size != E else nn.Identity()
        self.bias = nn.Parameter(torch.zeros(V))
        self.__dict__["embed"] = embed   # not a submodule: no second copy in state_dict

    @property
    def weight(self) -> torch.Tensor:
        return self.embed.weight

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return F.linear(self.proj(y), self.embed.weight, self.bias)


def sample_next(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator) -> torch.Tensor:
    """(B, V) logits → (B,) ids drawn from softmax(logits / temperature), restricted to the top k."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, -1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
