"""The whole sequence of a minGRU / minLSTM layer at once: a log-space parallel scan.

A min-cell's recurrence is linear, h_t = a_t ⊙ h_{t-1} + b_t with a_t, b_t > 0
computed from x_t alone, so with A_t = a_1 ⋯ a_t

    h_t = A_t ⊙ h_0 + A_t ⊙ Σ_{k≤t} b_k / A_k
    log(A_t Σ_k b_k / A_k) = log A_t + logcumsumexp_k(log b_k - log A_k)

(Feng et al. 2024, appendix B; Heinsen 2023, "Efficient parallelization of
a linear recurrence"). log A_t is a cumulative sum and the rest is one
``torch.logcumsumexp``: no Python loop over steps. The h_0 term stays
outside the logarithm, so any initial state (negative, zero) works.

log A_t falls by about 0.7 a step (z ≈ ½), and float32 keeps log b_k - log A_k
only to its own magnitude times 6e-8: at t = 4096 that is a relative error of
~2e-4 in h_t. The scan therefore runs in chunks of ``CHUNK`` steps, each
starting from the previous chunk's last state (T / CHUNK tiny Python steps).

Masked steps carry the state: a = 1 (log a = 0) and b = 0 (log b = a large
negative finite number, not -inf, so that logcumsumexp's gradient stays finite).
Their inputs are replaced by zeros (a select) before anything reads them, so
that a NaN in the padding reaches neither the outputs nor any gradient.

Recurrent dropout (``rec_mask`` (B, H), one mask per sequence, 0 or 1/keep)
scales the candidate term b_t, never the carried state (Semeniuta et al.
2016, "Recurrent dropout without memory loss"): h_t = a_t ⊙ h_{t-1} + m ⊙ b_t
stays linear, so it is scanned like the rest, and bounded (h_t is a convex
combination of h_{t-1} and m ⊙ h̃_t), where a mask on the carried state,
rescaled by 1/keep at every step, grows as (1/keep)^T.

On the CPU, torch.logcumsumexp costs ~100 ns an element (measured here: 0.5 s
for 8x4096x128, against 0.03 s for exp) and the log-space formula takes a dozen
full-size elementwise passes, so when ``csrc/scan.cpp`` can be built the CPU path
is one matmul for the input projection and then one fused sweep over time
(gates, a_t, b_t and the recurrence, vectorised over the B*H lanes; the backward
likewise). Both paths are tested equal to the step loop; ``path(x)`` names the one taken.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ..cells import Cell, State
from ..cells.minrnn import MinGRUCell, MinLSTMCell
from . import build

CHUNK = 256


def supports(cell: Cell) -> bool:
    """True for the cells whose recurrence is linear in the state (minGRU, minLSTM)."""
    return type(cell) in (MinGRUCell, MinLSTMCell)


def scan(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """h_t = a_t ⊙ h_{t-1} + b_t for every t. log_a, log_b (B, T, H); h0 (B, H) -> (B, T, H)."""
    out, h = [], h0
    for la, lb in zip(log_a.split(chunk, 1), log_b.split(chunk, 1)):
        a_star = la.cumsum(1)                                              # log A_t within the chunk
        h_seq = torch.exp(a_star + torch.logcumsumexp(lb - a_star, 1)) + torch.exp(a_star) * h[:, None]
        out.append(h_seq)
        h = h_seq[:, -1]
    return torch.cat(out, 1) if len(out) > 1 else out[0]


def native_module():
    """The compiled recurrence (csrc/scan.cpp), or None (one warning) if it cannot be built."""
    return build.load("rnnkit_scan", ("scan.cpp",))


class FusedMinScan(torch.autograd.Function):
    """csrc/scan.cpp: k (B, T, G*H) input projection, h0 (B, H), mask (B, T) and drop (B, H) of k's dtype
    or empty -> h (B, T, H). Its backward is not itself differentiable (double backward raises)."""

    @staticmethod
    def forward(ctx, k, h0, mask, drop):
        k, h0 = k.contiguous(), h0.contiguous()
        h = native_module().forward(k, h0, mask, drop)
        ctx.save_for_backward(k, h, h0, mask, drop)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        k, h, h0, mask, drop = ctx.saved_tensors
        dk, dh0 = native_module().backward(grad.contiguous(), k, h, h0, mask, drop)
        return dk, dh0, None, None


def path(x: torch.Tensor) -> str:
    """"native" (csrc/scan.cpp) for float CPU tensors when it builds, else "logcumsumexp"."""
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and native_module() is not None:
        return "native"
    return "logcumsumexp"


def run(cell: Cell, x: torch.Tensor, state: State, *, mask=None, rec_mask=None, reverse: bool = False,
        chunk: int = CHUNK, traceable: bool = False):
    """The reference loop's contract (``kernels.reference.recur``) for a min-cell.

    x (B, T, I); state (h0,) with h0 (B, H); mask (B, T) bool or None; rec_mask (B, H)
    recurrent-dropout multiplier on the candidate term or None; traceable: take the
    logcumsumexp path (torch ops only) even where the compiled one exists.
    Returns seq (B, T, H) with zeros at masked steps, last (B, H), (h_T,).
    """
    if reverse:  # processing order reversed; masked steps carry the state either way
        x, mask = x.flip(1), None if mask is None else mask.flip(1)
    if mask is not None:  # a select, not a product: NaN in the padding must not reach any gradient
        x = torch.where(mask[:, :, None], x, 0.0)
    if path(x) == "native" and not traceable:
        with torch.autocast(x.device.type, enabled=False):  # the kernel computes in x's dtype
            k = torch.nn.functional.linear(x, cell.weight_ih, cell.bias_ih)          # (B, T, G*H)
            m = x.new_empty(0) if mask is None else mask.to(x.dtype).contiguous()
            drop = x.new_empty(0) if rec_mask is None else rec_mask.to(x.dtype).contiguous()
            return finish(FusedMinScan.apply(k, state[0], m, drop), mask, reverse)
    log_a, log_b = cell.log_coefficients(x, cell)                          # (B, T, H) each
    tiny = torch.finfo(log_b.dtype).min / 4                                # log 0, kept finite
    if rec_mask is not None:  # log(m b) = log m + log b; a dropped unit has b = 0
        keep = rec_mask[:, None, :] > 0
        log_b = torch.where(keep, log_b + torch.log(torch.where(keep, rec_mask[:, None, :], 1.0)), tiny)
    if mask is not None:
        m = mask[:, :, None]
        log_a = torch.where(m, log_a, 0.0)
        log_b = torch.where(m, log_b, tiny)
    return finish(scan(log_a, log_b, state[0], chunk), mask, reverse)


def finish(seq: torch.Tensor, mask, reverse: bool):
    """(seq, last, (h_T,)) in the reference loop's conventions, from every step's state (B, T, H)."""
    h = seq[:, -1]
    if mask is None:
        last = h
    else:
        seq = torch.where(mask[:, :, None], seq, 0.0)
        last = torch.where(mask.any(1, keepdim=True), h, 0.0)
    return (seq.flip(1) if reverse else seq), last, (h,)
