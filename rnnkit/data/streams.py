"""Stream-contiguous batching (char-rnn's loader): a long sequence as B parallel streams.

The tokens are cut into ``batch_size`` equal contiguous streams, one per
batch row; batch i holds steps [i*T, (i+1)*T) of every stream. Row b of
batch i+1 continues row b of batch i, so the state after one batch is the
right initial state for the next (TrainConfig(stateful=True)).

With ``shift=True`` each pass starts at a random offset in [0, T), drawn
from torch's generator when the pass begins: the chunk boundaries, where
truncated BPTT cuts the gradient, fall on other characters every epoch (the
aim of AWD-LSTM's variable BPTT length, Merity et al. 2018, section 4.1).
"""
from __future__ import annotations

import math

import torch


class StreamBatches:
    """(input, target) chunks of (B, T) from a 1-D tensor, the target the next token.

    Streams have length L = (N - 1) // B, or (N - T) // B with ``shift`` so that
    every offset fits; a final chunk shorter than T is kept unless
    ``drop_last``. ``streams(offset)`` gives the whole (B, L) layout.
    """

    def __init__(self, tokens: torch.Tensor, batch_size: int, seq_len: int, drop_last: bool = False,
                 shift: bool = False):
        if tokens.dim() != 1:
            raise ValueError(f"expected a 1-D tensor of tokens, got shape {tuple(tokens.shape)}")
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be positive, got {batch_size} and {seq_len}")
        self.length = (len(tokens) - (seq_len if shift else 1)) // batch_size
        if self.length < 1:
            raise ValueError(f"{len(tokens)} tokens are too few for {batch_size} streams"
                             + (f" shifted by up to {seq_len - 1}" if shift else ""))
        self.tokens, self.batch_size, self.seq_len, self.drop_last = tokens, batch_size, seq_len, drop_last
        self.shift, self.offset = shift, 0   # offset: where the pass under way started

    def streams(self, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), each (B, L): stream b is tokens[o + b*L : o + (b+1)*L] and its successors."""
        B, L, o = self.batch_size, self.length, offset
        x = self.tokens[o:o + B * L].view(B, L)
        y = self.tokens[o + 1:o + B * L + 1].view(B, L)
        return x, y

    def __len__(self) -> int:
        n = self.length / self.seq_len
        return math.floor(n) if self.drop_last else math.ceil(n)

    def __iter__(self):
        self.offset = int(torch.randint(self.seq_len, ())) if self.shift else 0
        x, y = self.streams(self.offset)
        for i in range(len(self)):
            cut = slice(i * self.seq_len, (i + 1) * self.seq_len)
            yield x[:, cut], y[:, cut]
