"""Image captioning: a convolutional encoder reads the image, the seq2seq decoder writes the caption.

    image (B, 3, H, W) → encoder (any nn.Module; default: ConvEncoder, a small CNN from scratch)
                       → feature grid (B, C, h, w) → + 2 coordinate channels (x, y in [-1, 1])
                       → regions (B, R = h*w, M) = ReLU(W_m [f; x; y])        the "memory"
    initial state:  tanh(W_s flatten(W_q regions) + b)   W_q: M → 32 per region, then one map per state
                    component (h, c) and layer: the whole layout, not only its mean, sets the state
    decoder:        models.seq2seq.Decoder, unchanged: y_{t-1} → embedding → RNN (any cell, stacked)
                    [→ attention over the R regions] → tanh readout → logits (B, V)

``attention="none"``: Show and Tell (Vinyals et al. 2015): the image reaches
the decoder only through its initial state (Vinyals feed the image as the
first input; here it sets the state, as the seq2seq bridge does).
``attention="additive"``: Show, Attend and Tell (Xu et al. 2015, soft
attention): each step attends over the regions with the previous state;
``general``/``dot`` (Luong) attend with the new state. The coordinate
channels give every region its position, so "to the left of" can be read
from where the attention falls (CoordConv, Liu et al. 2018).

``encode(images, lengths)`` returns (Memory, DecoderState) like
``Seq2Seq.encode``, so ``models.decoding.greedy`` and ``beam_search`` decode
captions unchanged (``lengths`` only sets the length limit there; pass ones
with max_len_a=0, max_len_b=the longest caption).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .seq2seq import (ATTENTIONS, RNN_LAYERS, Decoder, Memory, Seq2SeqConfig, reorder_state,  # noqa: F401
                      sequence_loss)

SQUEEZE = 32   # per-region width of the initial-state map's input

__all__ = ["CaptionerConfig", "ConvEncoder", "Captioner", "import_encoder", "sequence_loss"]


@dataclass
class CaptionerConfig:
    """Everything needed to rebuild a Captioner with the built-in encoder (saved beside its weights)."""

    vocab_size: int
    image_size: int = 64           # square images, pixels per side
    channels: tuple[int, ...] = (16, 32, 64, 128)   # ConvEncoder: one conv block per entry
    pools: int = 3                 # the first ``pools`` blocks halve the resolution: grid = image_size / 2**pools
    memory_size: int = 128         # M: the width of each region's vector
    cell: str = "gru"
    hidden_size: int = 256
    decoder_layers: int = 1
    embedding_dim: int = 64
    attention: str = "additive"    # additive (Xu et al.), general, dot (Luong), none (Vinyals et al.)
    dropout: float = 0.0
    encoder: str | None = None     # a custom encoder's "module:Class" (import_encoder); None: ConvEncoder

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if self.encoder is not None:
            split_spec(self.encoder)
        if self.cell not in RNN_LAYERS:
            raise ValueError(f"unknown cell {self.cell!r}; expected one of {sorted(RNN_LAYERS)}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {self.attention!r}; expected one of {ATTENTIONS}")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be positive integers, got {self.channels}")
        if not 0 <= self.pools <= len(self.channels):
            raise ValueError(f"pools must be in [0, {len(self.channels)}], got {self.pools}")
        if self.image_size < 2 ** self.pools or self.image_size % (2 ** self.pools):
            raise ValueError(f"image_size {self.image_size} must be a multiple of 2**pools = {2 ** self.pools}")
        for name in ("vocab_size", "memory_size", "hidden_size", "decoder_layers", "embedding_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.attention == "dot" and self.memory_size != self.hidden_size:
            raise ValueError(f"dot attention needs memory_size ({self.memory_size}) == hidden_size "
                             f"({self.hidden_size}); use 'general'")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def decoder_config(self) -> Seq2SeqConfig:
        """The seq2seq decoder's config (its encoder fields are unused here)."""
        return Seq2SeqConfig(1, self.vocab_size, self.cell, self.hidden_size, 1, self.decoder_layers,
                             self.embedding_dim, False, self.attention, dropout=self.dropout)

    def to_dict(self) -> dict:
        return asdict(self)


class ConvEncoder(nn.Module):
    """A small CNN trained from scratch: blocks of conv 3x3 → batch norm → ReLU (→ 2x2 max pool)."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 128), pools: int = 3):
        super().__init__()
        blocks, c_in = [], 3
        for i, c in enumerate(channels):
            blocks += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if i < pools:
                blocks.append(nn.MaxPool2d(2))
            c_in = c
        self.net = nn.Sequential(*blocks)
        self.out_channels = c_in

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) → feature grid (B, C, H / 2**pools, W / 2**pools).

        The convolutions run channels-last (NHWC): oneDNN's faster layout on CPU (measured 1.6x for this
        encoder's forward and backward, benchmarks/caption.md); the values are the same."""
        return self.net(images.contiguous(memory_format=torch.channels_last))


def repeat_rows(memory: Memory, state, per_image: torch.Tensor):
    """Memory (B, R, ·) and decoder state → the same for N = per_image.sum() rows, image b's repeated
    per_image[b] times in place."""
    if per_image.dim() != 1 or len(per_image) != memory.outputs.shape[0]:
        raise ValueError(f"per_image must hold one count per image ({memory.outputs.shape[0]}), "
                         f"got shape {tuple(per_image.shape)}")
    index = torch.arange(len(per_image), device=memory.outputs.device).repeat_interleave(per_image)   # (N,)
    return Memory(*(None if t is None else t.index_select(0, index) for t in memory)), reorder_state(state, index)


def split_spec(spec: str) -> tuple[str, str]:
    """"package.module:Class" → ("package.module", "Class"); ValueError naming the expected form."""
    module, _, name = spec.partition(":")
    if not module or not name.isidentifier() or not all(p.isidentifier() for p in module.split(".")):
        raise ValueError(f"encoder {spec!r} is not of the form 'package.module:Class'")
    return module, name


def import_encoder(spec: str) -> nn.Module:
    """A custom encoder by name: imports ``module`` and calls ``Class()`` with no arguments; it must map images
    (B, 3, S, S) to a feature grid (B, C, h, w). Only call this with a name the user gave: importing a module
    runs its code (a checkpoint stores the name, never the code, and is never unpickled)."""
    import importlib
    module, name = split_spec(spec)
    try:
        cls = getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise ValueError(f"encoder {spec!r}: cannot import {module} ({e})") from None
    except AttributeError:
        raise ValueError(f"encoder {spec!r}: {module} has no {name}") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"encoder {spec!r} is not a torch.nn.Module class")
    try:
        return cls()
    except TypeError as e:
        raise ValueError(f"encoder {spec!r} must be buildable with no arguments ({e})") from None


def coordinates(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(2, h, w): x and y of each cell's centre in [-1, 1]."""
    ys = torch.linspace(-1, 1, h, dtype=like.dtype, device=like.device)
    xs = torch.linspace(-1, 1, w, dtype=like.dtype, device=like.device)
    return torch.stack([xs.expand(h, w), ys[:, None].expand(h, w)])


class Captioner(nn.Module):
    """CNN encoder, initial-state map and the seq2seq Decoder; see the module docstring.

    encoder: any module mapping images (B, 3, S, S) to a grid (B, C, h, w); default ConvEncoder(config).
    With ``config.encoder`` set (a "module:Class" name) the module must be given: the caller imports it
    (import_encoder) when the user names it, so that loading a checkpoint never imports code on its own.
    The grid size is found once by running the encoder on a blank image of ``config.image_size``."""

    def __init__(self, config: CaptionerConfig, encoder: nn.Module | None = None):
        super().__init__()
        self.config = c = config
        if c.encoder is not None and encoder is None:
            raise ValueError(f"this config names the custom encoder {c.encoder!r}: pass its module as encoder= "
                             f"(import_encoder({c.encoder!r}) imports it)")
        self.encoder = encoder if encoder is not None else ConvEncoder(c.channels, c.pools)
        was_training = self.encoder.training
        with torch.no_grad():
            grid = self.encoder.eval()(torch.zeros(1, 3, c.image_size, c.image_size))
        self.encoder.train(was_training)
        if grid.dim() != 4:
            raise ValueError(f"the encoder must return a feature grid (B, C, h, w), got shape {tuple(grid.shape)}")
        _, C, h, w = grid.shape
        self.grid = (h, w)
        self.project = nn.Linear(C + 2, c.memory_size)
        self.decoder = Decoder(c.decoder_config(), c.memory_size)
        self.state_sizes = self.decoder.rnn.state_sizes
        self.squeeze = nn.Linear(c.memory_size, SQUEEZE)
        self.init_maps = nn.ModuleList(nn.Linear(h * w * SQUEEZE, c.decoder_layers * n) for n in self.state_sizes)
        self.drop = nn.Dropout(c.dropout)

    def regions(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, S, S) → regions (B, R, M), R = h*w in row-major order (row 0 is the top)."""
        f = self.encoder(images)                                               # (B, C, h, w)
        if tuple(f.shape[2:]) != self.grid:
            raise ValueError(f"images of {tuple(images.shape[2:])} pixels give a {tuple(f.shape[2:])} grid; this "
                             f"model was built for {self.config.image_size}x{self.config.image_size} ({self.grid})")
        f = torch.cat([f, coordinates(*self.grid, f)[None].expand(f.shape[0], -1, -1, -1)], 1)
        return torch.relu(self.project(f.flatten(2).transpose(1, 2)))         # (B, R, M)

    def encode(self, images: torch.Tensor, lengths: torch.Tensor | None = None):
        """images (B, 3, S, S) → (Memory over the regions, the decoder's initial state). ``lengths`` is unused
        (it is the decoding functions' length limit)."""
        B = images.shape[0]
        mem = self.regions(images)
        flat = self.drop(self.squeeze(mem).flatten(1))                         # (B, R*32)
        L = self.config.decoder_layers
        rnn_state = tuple(torch.tanh(m(flat)).view(B, L, n).transpose(0, 1).contiguous()   # (L, B, n)
                          for m, n in zip(self.init_maps, self.state_sizes))
        att = self.decoder.attention
        mask = torch.ones(B, mem.shape[1], dtype=torch.bool, device=images.device)
        memory = Memory(mem, None if att is None else att.keys(mem), mask)
        return memory, self.decoder.init_state(rnn_state, B, mem)

    def forward(self, images: torch.Tensor, tgt_in: torch.Tensor, per_image: torch.Tensor | None = None):
        """Teacher forcing: tgt_in (N, T) (BOS first) → logits (N, T, V), attention (N, T, R) or None.

        per_image (B,): how many rows of tgt_in belong to each image, in order (N = per_image.sum()): each
        image is encoded once and its memory and initial state repeated for its captions. None: one each."""
        memory, state = self.encode(images)
        if per_image is not None:
            memory, state = repeat_rows(memory, state, per_image)
        return self.decoder(tgt_in, state, memory)

    def step(self, prev, state, memory):
        """One token per row (the decoding functions' protocol): logits (B, V), next state, weights (B, R)."""
        return self.decoder.step(prev, state, memory)
