"""Decoding a Seq2Seq model: greedy and beam search, batched over sentences, through ``model.step``.

The score of a hypothesis y (its tokens, the final EOS included, |y| of them):

    score(y) = log P(y | x) / lp(|y|)
    lp(n) = ((5 + n) / 6) ** alpha     penalty="gnmt"   (Wu et al. 2016, GNMT)
    lp(n) = n ** alpha                 penalty="length" (plain length normalisation)

alpha = 0 ranks by log-probability (favours short outputs); alpha = 1 with
"length" ranks by the mean log-probability per token. PAD and BOS are never
generated (their probability is removed and the rest renormalised). A
sentence of source length n gets at most ``floor(max_len_a * n + max_len_b)``
target tokens: at that step only EOS is allowed, so every hypothesis ends.

Beam search keeps ``beam`` open hypotheses per sentence. At each step the
best ``beam - finished`` extensions (over all open hypotheses and tokens, by
log-probability) are kept; those ending in EOS move to the finished list and
the beam shrinks by one (as Sutskever et al. 2014). A sentence stops when
``beam`` hypotheses have finished, or when no open hypothesis can still beat
the ``n_best``-th best finished one: an open hypothesis with log-probability s can end no
better than s / lp(max length), since s only falls and lp only grows
(alpha ≥ 0). Width 1 is greedy search. The best finished hypothesis by score wins.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from .seq2seq import BOS, EOS, PAD, reorder_state

PENALTIES = ("gnmt", "length")


@dataclass
class Hypothesis:
    """A decoded target: token ids (EOS not included), score (normalised), log_prob, attention (n+1, S) or None."""
    tokens: list[int]
    score: float
    log_prob: float
    attention: torch.Tensor | None = None


def length_penalty(n: int, alpha: float, penalty: str = "gnmt") -> float:
    """lp(n), by which a log-probability is divided (see the module docstring)."""
    if penalty not in PENALTIES:
        raise ValueError(f"unknown length penalty {penalty!r}; expected one of {PENALTIES}")
    return ((5 + n) / 6) ** alpha if penalty == "gnmt" else n ** alpha


def max_lengths(lengths: torch.Tensor, a: float, b: float) -> list[int]:
    """The most target tokens (EOS included) per sentence: floor(a * source length + b), at least 1."""
    return [max(1, math.floor(a * int(n) + b)) for n in lengths]


def next_log_probs(model, prev: torch.Tensor, state, memory):
    """log P(next token) (B, V) with PAD and BOS excluded, the next state, attention weights."""
    logits, state, weights = model.step(prev, state, memory)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))   # fp32 at least (bf16 models)
    logits[:, PAD] = float("-inf")
    logits[:, BOS] = float("-inf")
    return logits.log_softmax(-1), state, weights


def force_eos(lp: torch.Tensor, rows: list[bool]) -> torch.Tensor:
    """Only EOS is possible in the rows marked (a sentence's last allowed step)."""
    if any(rows):
        forced = torch.tensor(rows)[:, None] & (torch.arange(lp.shape[1]) != EOS)
        lp = lp.masked_fill(forced, float("-inf"))
    return lp


def in_eval_mode(search):
    """Run ``search`` with the model in evaluation mode (no dropout), then restore the model's mode."""
    @functools.wraps(search)
    def wrapper(model, *args, **kwargs):
        was_training = model.training
        model.eval()
        try:
            return search(model, *args, **kwargs)
        finally:
            model.train(was_training)
    return wrapper


def check(beam: int, alpha: float, penalty: str) -> None:
    if beam < 1:
        raise ValueError(f"beam width must be at least 1, got {beam}")
    if alpha < 0:
        raise ValueError(f"length penalty alpha must be >= 0, got {alpha}")
    length_penalty(1, alpha, penalty)


@in_eval_mode
@torch.no_grad()
def greedy(model, src: torch.Tensor, lengths: torch.Tensor, max_len_a: float = 2.0, max_len_b: float = 10.0,
           alpha: float = 0.0, penalty: str = "gnmt") -> list[Hypothesis]:
    """The likeliest token at each step, for each sentence of the batch src (B, S)."""
    check(1, alpha, penalty)
    B = src.shape[0]
    limits = max_lengths(lengths, max_len_a, max_len_b)
    memory, state = model.encode(src, lengths)
    prev = torch.full((B,), BOS, dtype=torch.long, device=src.device)
    tokens, weights, logp = [], [], torch.zeros(B, dtype=torch.float64)
    done, result = [False] * B, [None] * B
    for t in range(1, max(limits) + 1):
        lp, state, w = next_log_probs(model, prev, state, memory)
        lp = force_eos(lp.cpu(), [t >= n for n in limits])
        best, prev = lp.max(-1)
        logp += best
        tokens.append(prev)
        weights.append(None if w is None else w.float().cpu())
        for b in range(B):
            if not done[b] and int(prev[b]) == EOS:
                done[b] = True
                ids = [int(tokens[i][b]) for i in range(t - 1)]
                att = None if w is None else torch.stack([weights[i][b] for i in range(t)])
                result[b] = Hypothesis(ids, float(logp[b]) / length_penalty(t, alpha, penalty), float(logp[b]), att)
        if all(done):
            break
        prev = prev.to(src.device)   # finished rows run on unread until the batch is done
    return result


@in_eval_mode
@torch.no_grad()
def beam_search(model, src: torch.Tensor, lengths: torch.Tensor, beam: int = 5, max_len_a: float = 2.0,
                max_len_b: float = 10.0, alpha: float = 0.0, penalty: str = "gnmt",
                n_best: int = 1) -> list[list[Hypothesis]]:
    """The ``n_best`` best finished hypotheses of each sentence of src (B, S), best first."""
    check(beam, alpha, penalty)
    B, K = src.shape[0], beam
    limits = max_lengths(lengths, max_len_a, max_len_b)
    memory, state = model.encode(src, lengths)
    rows = torch.arange(B, device=src.device).repeat_interleave(K)
    memory, state = memory.repeat(K), reorder_state(state, rows)
    scores = None                                        # (B, K) summed log-probabilities
    prev = torch.full((B * K,), BOS, dtype=torch.long, device=src.device)
    history = torch.zeros(B * K, 0, dtype=torch.long)    # tokens so far
    att = None                                           # (B*K, t, S) attention so far
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = [False] * B
    for t in range(1, max(limits) + 1):
        lp, state, w = next_log_probs(model, prev, state, memory)
        lp = force_eos(lp.cpu(), [t >= n for n in limits for _ in range(K)])
        if scores is None:   # one open hypothesis per sentence at the start; float64 for a float64 model
            scores = torch.full((B, K), float("-inf"), dtype=lp.dtype)
            scores[:, 0] = 0.0
        # the best K of all K * V extensions are among each hypothesis's own best K
        k = min(K, lp.shape[1])
        row_lp, row_tok = lp.topk(k, dim=1)                                  # (B*K, k)
        cand = (scores.view(B, K, 1) + row_lp.view(B, K, k)).view(B, K * k)
        top, idx = cand.topk(K, dim=1)                                       # (B, K), best first
        origin = (idx // k + torch.arange(B)[:, None] * K).tolist()
        token = row_tok.view(B, K * k).gather(1, idx).tolist()
        top_l = top.tolist()
        w_all = None if w is None else w.float().cpu()
        new_scores = torch.full((B, K), float("-inf"), dtype=scores.dtype)
        new_rows = torch.zeros(B, K, dtype=torch.long)
        new_tok = torch.full((B, K), EOS, dtype=torch.long)
        for b in range(B):
            if done[b]:
                continue
            slot, open_ = 0, K - len(finished[b])
            for j in range(open_):
                s, r, tok = top_l[b][j], origin[b][j], token[b][j]
                if s == float("-inf"):
                    break
                if tok == EOS:
                    a = None
                    if w_all is not None:
                        a = w_all[r][None] if att is None else torch.cat([att[r], w_all[r][None]])
                    finished[b].append(Hypothesis(history[r].tolist(), s / length_penalty(t, alpha, penalty), s, a))
                else:
                    new_scores[b, slot], new_rows[b, slot], new_tok[b, slot] = s, r, tok
                    slot += 1
            ranked = sorted((h.score for h in finished[b]), reverse=True)
            kth = ranked[n_best - 1] if len(ranked) >= n_best else float("-inf")   # the n_best-th best so far
            bound = float(new_scores[b, 0]) / length_penalty(limits[b], alpha, penalty) if slot else float("-inf")
            done[b] = slot == 0 or len(finished[b]) >= K or kth >= bound
        if all(done):
            break
        for b in range(B):   # a finished sentence keeps no open hypotheses
            if done[b]:
                new_scores[b] = float("-inf")
        index = new_rows.view(-1)
        scores = new_scores
        state = reorder_state(state, index.to(src.device))
        history = torch.cat([history[index], new_tok.view(-1, 1)], 1)
        if w_all is not None:
            step_att = w_all[index][:, None]
            att = step_att if att is None else torch.cat([att[index], step_att], 1)
        prev = new_tok.view(-1).to(src.device)
    return [sorted(h, key=lambda h: -h.score)[:n_best] for h in finished]
