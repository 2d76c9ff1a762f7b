"""Sequence to sequence: an encoder reads the source, a decoder writes the target one token at a time.

    src ids (B, S) → embedding → encoder RNN (any cell, stacked, bidirectional, masked by lengths)
                   → memory (B, S, C), C = directions × hidden;  final state → bridge → decoder state
    decoder step t:  y_{t-1} → embedding (E) [+ context (additive) ] [+ a_{t-1} (input feeding)]
                   → decoder RNN (any cell, stacked) → s_t
                   → a_t = tanh(W_c [s_t; c_t])  (the "attentional vector", size R)
                   → logits = W_o a_t  (B, V)

Attention (``config.attention``, see attention.py):

* ``"additive"``: Bahdanau et al. 2015. The query is the previous top state
  s_{t-1}; the context c_t enters the RNN's input and the readout.
  (Bahdanau's readout is a maxout layer; here it is the tanh layer above.)
* ``"dot"``, ``"general"``: Luong et al. 2015. The query is the new top state
  s_t; ``input_feed`` feeds a_{t-1} into the next step's input.
* ``"none"``: the 2014 encoder-decoder (Sutskever et al.; Cho et al.):
  the source reaches the decoder only through its initial state.

Bridge: s_0 = tanh(W [h_fwd; h_bwd] + b) from the encoder's top layer's final
states (one map per state component, h and c for an LSTM), or zeros.
Tied embeddings (Press & Wolf 2017): W_o is the target embedding, R = E.

``Decoder.step`` runs one token with an explicit state; greedy and beam
search use it. ``forward`` (teacher forcing) runs the whole target at once
when nothing makes one step depend on the last (dot/general attention, no
input feeding, no scheduled sampling), and steps otherwise; both are tested
equal to stepping.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import layers
from ..layers import lengths_to_mask
from .attention import Attention

RNN_LAYERS = layers.BY_CELL
ATTENTIONS = ("additive", "general", "dot", "none")
BRIDGES = ("linear", "zeros")
PAD, UNK, BOS, EOS = 0, 1, 2, 3   # the special ids of every seq2seq vocabulary


@dataclass
class Seq2SeqConfig:
    """Everything needed to rebuild a Seq2Seq model (saved beside its weights)."""

    src_vocab_size: int
    tgt_vocab_size: int
    cell: str = "gru"
    hidden_size: int = 256
    num_layers: int = 1             # encoder layers
    decoder_layers: int = 1
    embedding_dim: int = 64
    bidirectional: bool = True      # the encoder
    attention: str = "additive"     # additive, general, dot, none
    input_feed: bool = False        # Luong's input feeding (dot/general)
    tie_embeddings: bool = False    # output layer = target embedding
    bridge: str = "linear"          # linear, zeros
    dropout: float = 0.0            # on embeddings, between layers, before the output layer

    def __post_init__(self):
        if self.cell not in RNN_LAYERS:
            raise ValueError(f"unknown cell {self.cell!r}; expected one of {sorted(RNN_LAYERS)}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {self.attention!r}; expected one of {ATTENTIONS}")
        if self.bridge not in BRIDGES:
            raise ValueError(f"unknown bridge {self.bridge!r}; expected one of {BRIDGES}")
        if self.input_feed and self.attention in ("none", "additive"):
            raise ValueError("input feeding (Luong et al. 2015) needs dot or general attention; additive attention "
                             "already feeds its context into the decoder's input")
        memory = self.hidden_size * (2 if self.bidirectional else 1)
        if self.attention == "dot" and memory != self.hidden_size:
            raise ValueError(f"dot attention needs encoder outputs ({memory}) as wide as the decoder state "
                             f"({self.hidden_size}): use a unidirectional encoder or 'general' attention")
        for name in ("src_vocab_size", "tgt_vocab_size", "hidden_size", "num_layers", "decoder_layers",
                     "embedding_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


class Memory(NamedTuple):
    """What the decoder attends to: outputs (B, S, C), their attention keys, and the source mask (B, S)."""
    outputs: torch.Tensor
    keys: torch.Tensor | None
    mask: torch.Tensor

    def repeat(self, k: int) -> "Memory":
        """Each sentence's rows repeated k times in place (beam search: B → B*k)."""
        return Memory(*(None if t is None else t.repeat_interleave(k, 0) for t in self))


# the decoder's state: (the RNN stack's state, a tuple of (L, B, S) tensors; a_{t-1} (B, R) or None)
DecoderState = tuple


def reorder_state(state: DecoderState, index: torch.Tensor) -> DecoderState:
    """The state of rows ``index`` (B',): beam search's reordering."""
    rnn, feed = state
    return tuple(s.index_select(1, index) for s in rnn), None if feed is None else feed.index_select(0, index)


class Encoder(nn.Module):
    def __init__(self, c: Seq2SeqConfig):
        super().__init__()
        self.embed = nn.Embedding(c.src_vocab_size, c.embedding_dim, padding_idx=PAD)
        self.rnn = RNN_LAYERS[c.cell](c.hidden_size, input_size=c.embedding_dim, num_layers=c.num_layers,
                                      bidirectional=c.bidirectional, dropout=c.dropout,
                                      return_sequences=True, return_state=True)
        self.drop = nn.Dropout(c.dropout)
        self.directions = 2 if c.bidirectional else 1

    def forward(self, src: torch.Tensor, lengths: torch.Tensor):
        """src (B, S), lengths (B,) ≥ 1 → outputs (B, S, C) (zeros at padding), final state (L*D, B, ·) each."""
        return self.rnn(self.drop(self.embed(src)), lengths=lengths)


class Bridge(nn.Module):
    """Encoder final state → decoder initial state: tanh of a linear map of the top layer's final states."""

    def __init__(self, c: Seq2SeqConfig, enc_sizes: tuple[int, ...], dec_sizes: tuple[int, ...], directions: int):
        super().__init__()
        self.kind, self.layers, self.directions, self.dec_sizes = c.bridge, c.decoder_layers, directions, dec_sizes
        # decoder component i reads encoder component i (h → h, c → c), or h if the encoder has no such component
        self.sources = [i if i < len(enc_sizes) else 0 for i in range(len(dec_sizes))]
        if c.bridge == "linear":
            self.maps = nn.ModuleList(nn.Linear(directions * enc_sizes[j], c.decoder_layers * n)
                                      for j, n in zip(self.sources, dec_sizes))

    def forward(self, enc_state: tuple, batch: int, like: torch.Tensor) -> tuple:
        if self.kind == "zeros":
            return tuple(like.new_zeros(self.layers, batch, n) for n in self.dec_sizes)
        out = []
        for j, n, lin in zip(self.sources, self.dec_sizes, self.maps):
            top = enc_state[j][-self.directions:]                          # (D, B, S): top layer, both directions
            s0 = torch.tanh(lin(top.transpose(0, 1).flatten(1)))          # (B, L*n)
            out.append(s0.view(batch, self.layers, n).transpose(0, 1).contiguous())   # (L, B, n)
        return tuple(out)


class Decoder(nn.Module):
    def __init__(self, c: Seq2SeqConfig, memory_size: int):
        super().__init__()
        E, H, V = c.embedding_dim, c.hidden_size, c.tgt_vocab_size
        self.kind, self.input_feed, self.dropout = c.attention, c.input_feed, c.dropout
        self.embed = nn.Embedding(V, E, padding_idx=PAD)
        self.attention = None if c.attention == "none" else Attention(c.attention, H, memory_size)
        self.readout_size = E if c.tie_embeddings else H
        extra = (memory_size if c.attention == "additive" else 0) + (self.readout_size if c.input_feed else 0)
        self.rnn = RNN_LAYERS[c.cell](H, input_size=E + extra, num_layers=c.decoder_layers, dropout=c.dropout,
                                      return_sequences=True, return_state=True)
        self.combine = nn.Linear(H + (0 if self.attention is None else memory_size), self.readout_size)
        self.out = nn.Linear(self.readout_size, V)
        if c.tie_embeddings:
            self.out.weight = self.embed.weight
        self.drop = nn.Dropout(c.dropout)

    @property
    def parallel(self) -> bool:
        """Whether teacher forcing can run all target steps at once (nothing feeds step t-1 into step t)."""
        return self.kind != "additive" and not self.input_feed

    def init_state(self, rnn_state: tuple, batch: int, like: torch.Tensor) -> DecoderState:
        return rnn_state, like.new_zeros(batch, self.readout_size) if self.input_feed else None

    def readout(self, s: torch.Tensor, memory: Memory, context=None, weights=None):
        """Top states s (B, [T,] H) → logits (B, [T,] V) and attention weights (or None)."""
        if self.attention is not None and context is None:     # Luong: attend with the new state
            context, weights = self.attention(s, memory.keys, memory.outputs, memory.mask)
        a = torch.tanh(self.combine(s if context is None else torch.cat([s, context], -1)))
        return self.out(self.drop(a)), a, weights

    def run_cells(self, x: torch.Tensor, rnn_state: tuple):
        """One step of the stacked cells with autograd: x (B, I) → top output (B, H), new state."""
        new = []
        for n, (cell,) in enumerate(self.rnn.cells()):
            if n:
                x = F.dropout(x, self.dropout, self.training)
            out = cell(x, tuple(s[n] for s in rnn_state))
            new.append(out)
            x = out[0]
        return x, tuple(torch.stack(parts) for parts in zip(*new))

    def step(self, prev: torch.Tensor, state: DecoderState, memory: Memory):
        """One token per row: prev ids (B,) → logits (B, V), the next state, attention weights (B, S) or None."""
        rnn_state, feed = state
        x, context, weights = self.drop(self.embed(prev)), None, None
        if self.kind == "additive":    # Bahdanau: attend with the previous top state, feed the context in
            context, weights = self.attention(rnn_state[0][-1], memory.keys, memory.outputs, memory.mask)
            x = torch.cat([x, context], -1)
        if self.input_feed:
            x = torch.cat([x, feed], -1)
        s, rnn_state = self.run_cells(x, rnn_state)
        logits, a, weights = self.readout(s, memory, context, weights)
        return logits, (rnn_state, a if self.input_feed else None), weights

    def forward(self, tgt_in: torch.Tensor, state: DecoderState, memory: Memory, sampling_ratio: float = 0.0):
        """Teacher forcing: tgt_in (B, T) (BOS first) → logits (B, T, V), weights (B, T, S) or None.

        sampling_ratio: in training, each step's input is the model's own previous prediction
        (its argmax) instead of the true token with this probability (Bengio et al. 2015)."""
        sampling = self.training and sampling_ratio > 0
        if self.parallel and not sampling:
            seq, _ = self.rnn(self.drop(self.embed(tgt_in)), state[0])         # (B, T, H)
            logits, _, weights = self.readout(seq, memory)
            return logits, weights
        logits, weights, prev = [], [], tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            if sampling and t:
                own = logits[-1].detach().argmax(-1)
                coin = torch.rand(prev.shape, device=prev.device) < sampling_ratio
                prev = torch.where(coin, own, tgt_in[:, t])
            elif t:
                prev = tgt_in[:, t]
            out, state, w = self.step(prev, state, memory)
            logits.append(out)
            weights.append(w)
        return torch.stack(logits, 1), None if weights[0] is None else torch.stack(weights, 1)


class Seq2Seq(nn.Module):
    """Encoder, bridge and attentional decoder; see the module docstring."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = c = config
        self.encoder = Encoder(c)
        memory_size = self.encoder.rnn.output_size
        self.decoder = Decoder(c, memory_size)
        self.bridge = Bridge(c, self.encoder.rnn.state_sizes, self.decoder.rnn.state_sizes, self.encoder.directions)

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[Memory, DecoderState]:
        """src (B, S) ids, lengths (B,) → the memory to attend to and the decoder's initial state."""
        if int(lengths.min()) < 1:
            raise ValueError("every source sentence needs at least one token (append EOS to each)")
        outputs, enc_state = self.encoder(src, lengths)
        att = self.decoder.attention
        memory = Memory(outputs, None if att is None else att.keys(outputs), lengths_to_mask(lengths, src.shape[1]))
        rnn_state = self.bridge(enc_state, src.shape[0], outputs)
        return memory, self.decoder.init_state(rnn_state, src.shape[0], outputs)

    def forward(self, src, lengths, tgt_in, sampling_ratio: float = 0.0):
        """Teacher forcing: logits (B, T, V) for tgt_in (B, T), attention weights (B, T, S) or None."""
        memory, state = self.encode(src, lengths)
        return self.decoder(tgt_in, state, memory, sampling_ratio)

    def step(self, prev, state, memory):
        return self.decoder.step(prev, state, memory)


def sequence_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean token cross-entropy over the non-PAD targets; label smoothing ε spreads ε over the vocabulary
    (Szegedy et al. 2016)."""
    return F.cross_entropy(logits.float().flatten(0, 1), target.flatten(), ignore_index=PAD,
                           label_smoothing=label_smoothing)
