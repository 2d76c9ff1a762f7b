"""A character-level language model: characters in, the next character out.

    ids (B, T) → embedding (B, T, E), or one-hot (B, T, V) → RNN stack (B, T, H)
               → dropout → linear → logits (B, T, V)

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

    def to_dict(self) -> dict:
        return asdict(self)


class CharLM(nn.Module):
    def __init__(self, config: CharLMConfig):
        super().__init__()
        if config.cell not in RNN_LAYERS:
            raise ValueError(f"unknown cell {config.cell!r}; expected one of {sorted(RNN_LAYERS)}")
        self.config = config
        V, E = config.vocab_size, config.embedding_dim
        self.embed = nn.Embedding(V, E) if E else None
        self.rnn = RNN_LAYERS[config.cell](
            config.hidden_size, input_size=E or V, num_layers=config.num_layers, dropout=config.dropout,
            recurrent_dropout=config.recurrent_dropout, zoneout=config.zoneout,
            return_sequences=True, return_state=True)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.rnn.output_size, V)

    def inputs(self, ids: torch.Tensor) -> torch.Tensor:
        """(…,) int64 ids → (…, E) embeddings or (…, V) one-hot vectors."""
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


def sample_next(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator) -> torch.Tensor:
    """(B, V) logits → (B,) ids drawn from softmax(logits / temperature), restricted to the top k."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, -1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
