"""Dynamic evaluation (Krause, Kahembwe, Murray & Renals 2018): the weights adapt to the text as it is read.

The held-out text is read once, in order, as one stream cut into segments of
``segment`` characters, the state carried from segment to segment. Each
segment is first scored with the current weights (its loss is the figure),
then the model takes one gradient step on that same segment, so every
character is predicted by weights that have seen only the characters before
it. The loss is a different metric from static evaluation (fixed weights):
report it under its own name, never in place of the static figure.

Update rules for a segment's mean loss gradient g (per parameter θ, θ₀ the
weights before evaluation):

    sgd:  θ ← θ − η g + λ (θ₀ − θ)
    rms:  θ ← θ − η g / (√MS + ε) + λ r ⊙ (θ₀ − θ),   r = √MS / mean(√MS), λ r clipped at 1

MS is the mean of g² over the segments read so far (Krause et al. collect it
on training data; a running mean over the evaluated text needs no training
text and uses only characters already scored). λ pulls the weights back
toward the trained ones (the paper's "global prior"); r makes parameters with
larger typical gradients decay faster, as in the paper.

The model passed in is never changed: the adaptation runs on a copy.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

METHODS = ("rms", "sgd")
EPS = 1e-8


@dataclass
class DynamicEvalConfig:
    """The options of dynamic evaluation, validated on construction (ValueError naming the value)."""

    method: str = "rms"
    lr: float = 2e-4          # η
    decay: float = 0.0        # λ: pull toward the trained weights per segment, in [0, 1]
    segment: int = 50         # characters per update

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"dynamic evaluation method must be one of {METHODS}, got {self.method!r}")
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < math.inf:
            raise ValueError(f"dynamic evaluation lr must be in (0, inf), got {self.lr!r}")
        if not isinstance(self.decay, (int, float)) or not 0 <= self.decay <= 1:
            raise ValueError(f"dynamic evaluation decay must be in [0, 1], got {self.decay!r}")
        if not isinstance(self.segment, int) or isinstance(self.segment, bool) or not 1 <= self.segment <= 2**20:
            raise ValueError(f"dynamic evaluation segment must be an integer in [1, 2**20], got {self.segment!r}")


def detach_state(state):
    return None if state is None else tuple(s.detach() for s in state)


def dynamic_evaluate(model: torch.nn.Module, ids: torch.Tensor, config: DynamicEvalConfig) -> dict:
    """Mean next-token loss (nats) of ``ids`` (1-D int64) under dynamic evaluation of ``model``.

    ``model(x (1, T), state) -> (logits (1, T, V), state)`` as rnnkit's language models.
    Returns {"loss", "tokens", "updates"}; ``model`` itself is left as it was.
    """
    if ids.dim() != 1 or len(ids) < 2:
        raise ValueError("dynamic evaluation needs a 1-D sequence of at least 2 ids")
    adapted = copy.deepcopy(model).eval()   # eval mode: no dropout; gradients still flow
    params = [p for p in adapted.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    mean_sq = [torch.zeros_like(p) for p in params]
    total, count, updates, state = 0.0, 0, 0, None
    for i in range(0, len(ids) - 1, config.segment):
        x = ids[i:i + config.segment][None]                           # (1, T)
        y = ids[i + 1:i + 1 + config.segment][None]
        x = x[:, :y.shape[1]]
        logits, new_state = adapted(x, state)                          # (1, T, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
        total, count = total + float(loss.detach()), count + y.numel()
        grads = torch.autograd.grad(loss / y.numel(), params, allow_unused=True)
        updates += 1
        with torch.no_grad():
            for p, g, p0, ms in zip(params, grads, start, mean_sq):
                if g is None:
                    continue
                if config.method == "sgd":
                    p.sub_(config.lr * g)
                    if config.decay:
                        p.add_(config.decay * (p0 - p))
                    continue
                ms.add_((g * g - ms) / updates)                        # running mean of g²
                rms = ms.sqrt().add_(EPS)
                p.sub_(config.lr * g / rms)
                if config.decay:
                    rate = (config.decay * rms / rms.mean()).clamp_(max=1.0)
                    p.add_(rate * (p0 - p))
        state = detach_state(new_state)
    return {"loss": total / count, "tokens": count, "updates": updates}
