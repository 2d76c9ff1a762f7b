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

On the CPU, torch.logcumsumexp costs ~100 ns an element (measured here: 0.5 s
for 8x4096x128, against 0.03 s for exp) and the log-space formula takes a dozen
full-size elementwise passes, so when ``csrc/scan.cpp`` can be built the CPU path
is one matmul for the input projection and then one fused sweep over time
(gates, a_t, b_t and the recurrence, vectorised over the B*H lanes; the backward
likewise). Both paths are tested equal to the step loop; ``path(x)`` names the one taken.
"""
from __future__ import annotations

import torch

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
    """csrc/scan.cpp: k (B, T, G*H) input projection, h0 (B, H), mask (B, T) of k's dtype or empty -> h (B, T, H)."""

    @staticmethod
    def forward(ctx, k, h0, mask):
        k, h0 = k.contiguous(), h0.contiguous()
        h = native_module().forward(k, h0, mask)
        ctx.save_for_backward(k, h, h0, mask)
        return h

    @staticmethod
    def backward(ctx, grad):
        k, h, h0, mask = ctx.saved_tensors
        dk, dh0 = native_module().backward(grad.contiguous(), k, h, h0, mask)
        return dk, dh0, None


def path(x: torch.Tensor) -> str:
    """"native" (csrc/scan.cpp) for float CPU tensors when it builds, else "logcumsumexp"."""
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and native_module() is not None:
        return "native"
    return "logcumsumexp"


def run(cell: Cell, x: torch.Tensor, state: State, *, mask=None, reverse: bool = False, chunk: int = CHUNK):
    """The reference loop's contract (``kernels.reference.recur``) for a min-cell.

    x (B, T, I); state (h0,) with h0 (B, H); mask (B, T) bool or None.
    Returns seq (B, T, H) with zeros at masked steps, last (B, H), (h_T,).
    """
    if reverse:  # processing order reversed; masked steps carry the state either way
        x, mask = x.flip(1), None if mask is None else mask.flip(1)
    if path(x) == "native":
        with torch.autocast(x.device.type, enabled=False):  # the kernel computes in x's dtype
            k = torch.nn.functional.linear(x, cell.weight_ih, cell.bias_ih)          # (B, T, G*H)
            m = x.new_empty(0) if mask is None else mask.to(x.dtype).contiguous()
            return finish(FusedMinScan.apply(k, state[0], m), mask, reverse)
    log_a, log_b = cell.log_coefficients(x, cell)                          # (B, T, H) each
    if mask is not None:
        m = mask[:, :, None]
        log_a = torch.where(m, log_a, 0.0)
        log_b = torch.where(m, log_b, torch.finfo(x.dtype).min / 4)
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
