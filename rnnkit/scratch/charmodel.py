"""The character model with one-hot inputs: read a character, predict the next one (NumPy).

    "hello":  inputs h, e, l, l   targets e, l, l, o      vocabulary e, h, l, o
    x_t = one_hot(char_t)  (4 values, one of them 1)  ->  state_t = cell(x_t, state_{t-1})
        ->  p_t = softmax(W_hy h_t + b_y)  =  the distribution of char_{t+1}

After training on "hello", starting from "h" and feeding each predicted
character back in gives "ello": the state remembers whether one "l" or two
have been seen, which a model of the current character alone cannot.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .sequence import CELL_KEYS, bptt, softmax, zero_state
from .cells import check_cell, init_params
from .optim import Adagrad, Adam, clip_global_norm


def one_hot(ids, size: int, dtype=np.float64):
    """ids (...,) ints -> (..., size) with a 1 at each id."""
    return np.eye(size, dtype=dtype)[np.asarray(ids)]


@dataclass
class CharModel:
    """A one-layer character model: a vocabulary, a cell name and its parameters (dict, torch layout)."""
    chars: str
    cell: str = "rnn"
    hidden_size: int = 16
    seed: int = 0
    params: dict = field(default=None, repr=False)

    def __post_init__(self):
        check_cell(self.cell)
        self.index = {c: i for i, c in enumerate(self.chars)}
        if self.params is None:
            V = len(self.chars)
            self.params = init_params(self.cell, V, self.hidden_size, output_size=V, seed=self.seed)

    @classmethod
    def for_text(cls, text: str, **options) -> "CharModel":
        """A fresh model whose vocabulary is the text's characters, sorted."""
        return cls("".join(sorted(set(text))), **options)

    def encode(self, text: str) -> np.ndarray:
        unknown = set(text) - set(self.index)
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {''.join(sorted(unknown))!r}")
        return np.array([self.index[c] for c in text])

    def fit(self, text: str, steps: int, seq_len: int = 25, lr: float = 0.1, optimizer: str = "adagrad",
            clip: float = 5.0) -> list[float]:
        """Train on ``text`` for ``steps`` updates of ``seq_len`` characters each, carrying the state
        from chunk to chunk (truncated BPTT with k1 = k2 = seq_len) and starting over at the end.

        Returns the loss per character of every update."""
        ids = self.encode(text)
        if len(ids) < 2:
            raise ValueError("the text needs at least two characters (an input and its next character)")
        opt = (Adagrad if optimizer == "adagrad" else Adam)(self.params, lr=lr)
        V, pos, state, losses = len(self.chars), 0, None, []
        for _ in range(steps):
            if pos + 1 >= len(ids):
                pos, state = 0, None                      # back to the start: a fresh state
            chunk = ids[pos:pos + seq_len + 1]
            x, y = one_hot(chunk[:-1], V)[None], chunk[1:][None]   # (1, T, V), (1, T)
            loss, grads, state = bptt(self.params, self.cell, x, y, state)
            clip_global_norm(grads, clip, CELL_KEYS + ("weight_hy", "bias_y"))
            opt.step(grads)
            losses.append(loss / y.size)
            pos += seq_len
        return losses

    def sample(self, prime: str, length: int, temperature: float = 0.0, seed: int = 0) -> str:
        """``length`` characters after ``prime``, each fed back as the next input.

        temperature 0: the likeliest character (greedy); else drawn from softmax(logits / temperature)."""
        step = check_cell(self.cell)[0]
        rng, V = np.random.default_rng(seed), len(self.chars)
        state = zero_state(self.cell, 1, self.hidden_size)
        for i in self.encode(prime):
            state, _ = step(one_hot([i], V), state, self.params)
        out = []
        for _ in range(length):
            logits = (state[0] @ self.params["weight_hy"].T + self.params["bias_y"])[0]
            if temperature > 0:
                i = int(rng.choice(V, p=softmax(logits / temperature)))
            else:
                i = int(logits.argmax())
            out.append(self.chars[i])
            state, _ = step(one_hot([i], V), state, self.params)
        return "".join(out)
