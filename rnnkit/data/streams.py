"""Stream-contiguous batching (char-rnn's loader): a long sequence as B parallel streams.

The tokens are cut into ``batch_size`` equal contiguous streams, one per
batch row; batch i holds steps [i*T, (i+1)*T) of every stream. Row b of
batch i+1 continues row b of batch i, so the state after one batch is the
right initial state for the next (TrainConfig(stateful=True)).
"""
from __future__ import annotations

import math

import torch


class StreamBatches:
    """(input, target) chunks of (B, T) from a 1-D tensor, the target the next token.

    Streams have length L = (N - 1) // B; a final chunk shorter than T is kept
    unless ``drop_last``. ``streams()`` gives the whole (B, L) layout.
    """

    def __init__(self, tokens: torch.Tensor, batch_size: int, seq_len: int, drop_last: bool = False):
        if tokens.dim() != 1:
            raise ValueError(f"expected a 1-D tensor of tokens, got shape {tuple(tokens.shape)}")
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be positive, got {batch_size} and {seq_len}")
        self.length = (len(tokens) - 1) // batch_size
        if self.length < 1:
            raise ValueError(f"{len(tokens)} tokens are too few for {batch_size} streams")
        self.tokens, self.batch_size, self.seq_len, self.drop_last = tokens, batch_size, seq_len, drop_last

    def streams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), each (B, L): stream b is tokens[b*L : (b+1)*L] and its successors."""
        B, L = self.batch_size, self.length
        x = self.tokens[:B * L].view(B, L)
        y = self.tokens[1:B * L + 1].view(B, L)
        return x, y

    def __len__(self) -> int:
        n = self.length / self.seq_len
        return math.floor(n) if self.drop_last else math.ceil(n)

    def __iter__(self):
        x, y = self.streams()
        for i in range(len(self)):
            cut = slice(i * self.seq_len, (i + 1) * self.seq_len)
            yield x[:, cut], y[:, cut]
