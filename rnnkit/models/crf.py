"""A linear-chain conditional random field (Lafferty et al. 2001) as the output layer of a tagger.

The score of tags y_1..y_T for emission scores e (T, K) is

    s(y) = start[y_1] + sum_t e_t[y_t] + sum_{t>1} trans[y_{t-1}, y_t] + end[y_T]

and p(y | x) = exp s(y) / Z with Z = sum over all K^T tag sequences. The forward
algorithm computes log Z in O(T K^2):  alpha_1 = start + e_1,
alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + trans[i, j]) + e_t[j],  log Z = logsumexp(alpha_T + end);
Viterbi replaces logsumexp by max and keeps back-pointers. Masks are right-padded
(each row's valid steps first, at least one); a padded step leaves alpha unchanged.
Written here (60 lines) rather than taken from a package so that it runs on any rnnkit
device and dtype and is tested against brute-force enumeration (tests/test_crf.py).
"""
from __future__ import annotations

import torch
from torch import nn


class CRF(nn.Module):
    def __init__(self, num_tags: int):
        super().__init__()
        self.num_tags = num_tags
        self.trans = nn.Parameter(torch.zeros(num_tags, num_tags))   # trans[i, j]: score of tag i -> tag j
        self.start = nn.Parameter(torch.zeros(num_tags))
        self.end = nn.Parameter(torch.zeros(num_tags))

    def score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """s(y) of the given tags: emissions (B, T, K), tags (B, T), mask (B, T) -> (B,)."""
        m = mask.to(emissions.dtype)
        emit = emissions.gather(-1, tags[..., None]).squeeze(-1)                  # (B, T)
        s = self.start[tags[:, 0]] + (emit * m).sum(1)
        s = s + (self.trans[tags[:, :-1], tags[:, 1:]] * m[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1)[:, None]).squeeze(1)              # (B,) each row's last tag
        return s + self.end[last]

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z by the forward algorithm: (B, T, K), (B, T) -> (B,)."""
        alpha = self.start + emissions[:, 0]                                        # (B, K)
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha[:, :, None] + self.trans, 1) + emissions[:, t]   # (B, K)
            alpha = torch.where(mask[:, t, None], step, alpha)
        return torch.logsumexp(alpha + self.end, -1)

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The mean over sentences of -log p(tags | x)."""
        return (self.log_partition(emissions, mask) - self.score(emissions, tags, mask)).mean()

    @torch.no_grad()
    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The best tags (B, T) (0 on padding) and their scores (B,)."""
        B, T, K = emissions.shape
        best = self.start + emissions[:, 0]                                         # (B, K)
        back = []
        for t in range(1, T):
            cand = best[:, :, None] + self.trans                                    # (B, K from, K to)
            value, arg = cand.max(1)
            keep = mask[:, t, None]
            best = torch.where(keep, value + emissions[:, t], best)
            back.append(torch.where(keep, arg, torch.arange(K, device=arg.device).expand(B, K)))  # pads: stay
        best = best + self.end
        score, tag = best.max(-1)
        path = [tag]
        for arg in reversed(back):
            tag = arg.gather(1, tag[:, None]).squeeze(1)
            path.append(tag)
        tags = torch.stack(path[::-1], 1)
        return tags.masked_fill(~mask, 0), score
