"""A small causal transformer character model, written for the side-by-side benchmark (charlm_vs_transformer.py).

Pre-LayerNorm blocks (Xiong et al. 2020: x + attn(LN(x)), x + mlp(LN(x))),
learned absolute positions, tied input and output embeddings, causal
attention through torch's scaled_dot_product_attention, AdamW with weight
decay on the matrices only, linear warmup then cosine decay over a wall-clock
budget. Trained on random windows of the training text; scored on a whole
text with a sliding window: each window holds ``context`` characters, moves by
``stride``, and scores only the positions no earlier window scored, so every
character after the first ``context`` has at least ``context - stride``
characters of history.

This is benchmark code, not part of rnnkit.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TransformerConfig:
    vocab_size: int
    # the best of three settings tried for a 10-minute, 2-core budget on set A (benchmarks/charlm.md):
    # nanoGPT's documented CPU setting (4 x 128, context 64, batches of 12, lr 1e-3, no dropout)
    layers: int = 4
    width: int = 128
    heads: int = 4
    context: int = 64
    dropout: float = 0.0
    # training
    batch_size: int = 12
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 100
    min_lr_ratio: float = 0.1
    precision: str = "fp32"   # or "bf16": autocast the matrix products


class Block(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.heads, self.dropout = c.heads, c.dropout
        self.ln1, self.ln2 = nn.LayerNorm(c.width), nn.LayerNorm(c.width)
        self.qkv = nn.Linear(c.width, 3 * c.width)
        self.proj = nn.Linear(c.width, c.width)
        self.mlp = nn.Sequential(nn.Linear(c.width, 4 * c.width), nn.GELU(), nn.Linear(4 * c.width, c.width))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # 3×(B,h,T,d)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(B, T, C)))
        return x + self.drop(self.mlp(self.ln2(x)))


class CharTransformer(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        if c.width % c.heads:
            raise ValueError(f"width {c.width} is not a multiple of heads {c.heads}")
        self.config = c
        self.embed = nn.Embedding(c.vocab_size, c.width)
        self.pos = nn.Parameter(torch.zeros(c.context, c.width))
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln = nn.LayerNorm(c.width)
        self.apply(self._init)
        for name, p in self.named_parameters():   # residual projections scaled by depth (GPT-2)
            if name.endswith(("proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * c.layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T ≤ context) → logits (B, T, V)."""
        x = self.drop(self.embed(ids) + self.pos[:ids.shape[1]])
        for block in self.blocks:
            x = block(x)
        return self.ln(x) @ self.embed.weight.T   # tied output embedding


def optimizer(model: CharTransformer) -> torch.optim.AdamW:
    c = model.config
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and n != "pos"]
    other = [p for n, p in model.named_parameters() if p.dim() < 2 or n == "pos"]
    return torch.optim.AdamW([{"params": decay, "weight_decay": c.weight_decay},
                              {"params": other, "weight_decay": 0.0}], lr=c.lr, betas=(0.9, 0.99))


def lr_at(c: TransformerConfig, step: int, time_fraction: float) -> float:
    """Linear warmup over ``warmup`` updates, then cosine from lr to min_lr_ratio·lr over the time budget."""
    if step < c.warmup:
        return c.lr * (step + 1) / c.warmup
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, time_fraction)))
    return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * cos)


def windows(n: int, context: int, stride: int) -> list[tuple[int, int]]:
    """(begin, new) per window over n positions: the window is [begin, begin + min(context, n)) and scores its
    last ``new`` positions, those no earlier window scored; the last window is moved back to hold a full context."""
    size, spans, done = min(context, n), [], 0
    for begin in range(0, n, stride):
        begin = min(begin, n - size)
        spans.append((begin, begin + size - done))
        done = begin + size
        if done == n:
            break
    return spans


@torch.no_grad()
def sliding_loss(model: CharTransformer, ids: torch.Tensor, stride: int | None = None, batch: int = 64) -> float:
    """Mean next-character loss (nats) over all of ``ids`` (1-D), with a sliding window of the full context."""
    was_training = model.training
    model.eval()
    ctx = model.config.context
    n = len(ids) - 1                                   # positions to score: ids[1:] from ids[:-1]
    spans = windows(n, ctx, stride or ctx // 2)
    size = min(ctx, n)
    offsets = torch.arange(size)
    total, count = 0.0, 0
    for i in range(0, len(spans), batch):
        group = spans[i:i + batch]
        begins = torch.tensor([b for b, _ in group])
        x, y = ids[begins[:, None] + offsets], ids[begins[:, None] + offsets + 1]    # (b, size)
        logp = model(x).float().log_softmax(-1).gather(-1, y[..., None])[..., 0]     # (b, size)
        for row, (_, new) in enumerate(group):
            total -= float(logp[row, size - new:].sum())
            count += new
    model.train(was_training)
    assert count == n, (count, n)   # every character scored exactly once
    return total / count


def train(model: CharTransformer, train_ids: torch.Tensor, val_ids: torch.Tensor, seconds: float,
          eval_seconds: float, seed: int = 0, log=print) -> dict:
    """Train for ``seconds`` of wall clock (evaluation time not counted); the held-out curve every eval_seconds."""
    c = model.config
    g = torch.Generator().manual_seed(seed)
    opt = optimizer(model)
    curve, step, clock, next_eval = [], 0, 0.0, eval_seconds
    model.train()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=c.precision == "bf16")
    offsets = torch.arange(c.context + 1)
    train_loss = float("nan")
    while clock < seconds:
        t0 = time.monotonic()
        for group in opt.param_groups:
            group["lr"] = lr_at(c, step, clock / seconds)
        starts = torch.randint(0, len(train_ids) - c.context - 1, (c.batch_size,), generator=g)
        chunk = train_ids[starts[:, None] + offsets]                     # (B, context + 1)
        with autocast:
            logits = model(chunk[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), chunk[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        train_loss = 0.98 * train_loss + 0.02 * float(loss.detach()) if step > 1 else float(loss.detach())
        clock += time.monotonic() - t0
        if clock >= next_eval or clock >= seconds:
            val = sliding_loss(model, val_ids)
            curve.append({"time": round(clock, 1), "step": step, "train_loss": round(train_loss, 4),
                          "val_loss": round(val, 4)})
            log(f"transformer: {clock:6.0f} s, {step} updates, train {train_loss:.3f}, held-out {val:.4f}")
            next_eval += eval_seconds
    return {"updates": step, "train_seconds": round(clock, 1), "train_loss": round(train_loss, 4),
            "val_loss": curve[-1]["val_loss"], "curve": curve}
