"""Attention over the encoder's outputs: additive (Bahdanau) and multiplicative (Luong), masked.

Scores of a query q against every encoder output h_j (the "memory"):

    additive  (Bahdanau et al. 2015)  e_j = v^T tanh(W_q q + W_k h_j + b)
    general   (Luong et al. 2015)     e_j = q^T W h_j
    dot       (Luong et al. 2015)     e_j = q^T h_j          (needs size(q) == size(h))

    α = softmax(e) over the valid source positions (padding gets exactly 0),
    context c = Σ_j α_j h_j

The key side (W_k h_j, W h_j) does not depend on the query: ``keys`` computes
it once per sentence and every decoding step reuses it.
"""
from __future__ import annotations

import torch
from torch import nn

KINDS = ("additive", "general", "dot")


class Attention(nn.Module):
    """Scores, masked softmax and context; ``forward`` returns (context, weights)."""

    def __init__(self, kind: str, query_size: int, memory_size: int, attention_size: int | None = None):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown attention {kind!r}; expected one of {KINDS}")
        if kind == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs the decoder's hidden size ({query_size}) to equal the encoder's "
                             f"output size ({memory_size}); use 'general' to learn a map between them")
        self.kind = kind
        if kind == "additive":
            A = attention_size or query_size
            self.query_proj = nn.Linear(query_size, A, bias=False)
            self.key_proj = nn.Linear(memory_size, A)
            self.v = nn.Linear(A, 1, bias=False)
        elif kind == "general":
            self.key_proj = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (B, S, C) -> keys (B, S, A) for additive, (B, S, Q) for general, memory itself for dot."""
        return memory if self.kind == "dot" else self.key_proj(memory)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor):
        """query (B, Q) or (B, T, Q); mask (B, S) True at real source tokens.

        Returns context (B, [T,] C) and weights (B, [T,] S), each row summing to 1 over the valid positions."""
        single = query.dim() == 2
        q = query[:, None] if single else query                                 # (B, T, Q)
        if self.kind == "additive":
            # (B, T, 1, A) + (B, 1, S, A) -> (B, T, S)
            scores = self.v(torch.tanh(self.query_proj(q)[:, :, None] + keys[:, None])).squeeze(-1)
        else:
            scores = q @ keys.transpose(1, 2)                                   # (B, T, S)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        weights = scores.softmax(-1)                                            # exp(-inf) = 0 at padding
        context = weights @ memory                                              # (B, T, C)
        return (context[:, 0], weights[:, 0]) if single else (context, weights)
