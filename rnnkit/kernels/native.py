"""Native sequence kernels: the whole time loop of a cell, forward and backward, in C++.

One kernel per cell family (``csrc/<family>.cpp``; ``csrc/common.h`` holds the loop's
bookkeeping and says how the work is laid out), each computing exactly ``reference.recur`` for
its cell: any mask, recurrent dropout, zoneout, reverse. The module is compiled by
``build.load`` at the first call of ``run``, never at import; if it cannot be built, ``run``
falls back to the reference loop (``build.load`` has warned once, naming the reason).
"""
from __future__ import annotations

import functools
import warnings

import torch
from torch.autograd.function import once_differentiable

from ..cells import Cell, ElmanCell, GRUCell, JordanCell, LayerNormLSTMCell, LSTMCell
from ..cells.base import activation_name
from . import build, memory, reference

MODULE = "rnnkit_native"
SOURCES = ("module.cpp", "elman_jordan.cpp", "lstm.cpp", "gru.cpp", "lnlstm.cpp")

# Cell type -> (kernel family, the parameters it takes in order; an absent one is passed empty).
KERNELS = {
    ElmanCell: ("elman", ("weight_ih", "weight_hh", "bias_ih", "bias_hh")),
    JordanCell: ("jordan", ("weight_ih", "weight_yh", "bias_h", "weight_hy", "bias_y")),
    LSTMCell: ("lstm", ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_c")),
    GRUCell: ("gru", ("weight_ih", "weight_hh", "bias_ih", "bias_hh")),
    LayerNormLSTMCell: ("lnlstm", ("weight_ih", "weight_hh", "bias", "ln_ih_weight", "ln_hh_weight",
                                   "ln_c_weight", "ln_c_bias")),
}


def kernel_options(cell: Cell) -> list[str] | None:
    """The kernel's options for ``cell``, or None when no kernel computes it (a custom activation)."""
    if type(cell) is GRUCell:
        return ["reset_after" if cell.reset_after else "reset_before"]
    if type(cell) is LayerNormLSTMCell:
        return [f"eps={float(cell.eps)!r}"]  # repr round-trips the float exactly
    if type(cell) is ElmanCell:
        names = [activation_name(cell.activation)]
    elif type(cell) is JordanCell:
        names = [activation_name(cell.activation), activation_name(cell.output_activation)]
    else:
        names = []
    return None if None in names else names


def supports(cell: Cell) -> bool:
    """True when a kernel computes ``cell`` and the module can be built here (never builds; False
    once a build or load has failed in this process)."""
    return (type(cell) in KERNELS and kernel_options(cell) is not None and build.unavailable_reason() is None
            and build.failure(MODULE) is None)


def load():
    """The compiled module (built on first use, cached), or None if it cannot be built. Also keeps
    freed memory in the heap for the kernels' per-batch tensors (memory.py; RNNKIT_MALLOC=default opts out)."""
    module = build.load(MODULE, SOURCES)
    if module is not None:
        memory.keep_freed_memory()
        check_row_split(module, torch.get_num_threads())
    return module


@functools.cache
def check_row_split(module, threads: int) -> None:
    """One warning if the row split would run on fewer threads than torch has (a build without OpenMP:
    build.thread_flags), instead of the kernels being quietly slower. Once per process and thread count."""
    if threads > 1 and module.row_split_threads(16 * threads) < threads:
        warnings.warn(f"rnnkit: the native kernels were built without OpenMP, so they run each batch on one "
                      f"thread although torch has {threads}", RuntimeWarning, stacklevel=3)


def fallback_reason(cell: Cell, x: torch.Tensor) -> str | None:
    """Why ``run(cell, x, ...)`` would run the reference loop instead of a kernel, or None (builds on first use)."""
    if type(cell) not in KERNELS or kernel_options(cell) is None:
        return f"no native kernel computes this {type(cell).__name__} (a custom activation?)"
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return f"the native kernels take CPU float32/float64 tensors, not {x.dtype} on {x.device.type}"
    if load() is None:
        return f"the native kernels are unavailable ({build.failure(MODULE) or build.unavailable_reason()})"
    return None


# The LSTM and GRU kernels' per-step matmul (csrc/common.h make_plan): "auto" (the hand-written small gemm with
# the batch's rows split over torch's threads for small sizes, torch's BLAS for large ones), "small" or "blas".
STEP_GEMM = "auto"
ROW_SPLIT = ("lstm", "gru")   # the kernel families that take the gemm= option


def run(cell: Cell, x: torch.Tensor, state: tuple, *, mask=None, rec_mask=None, zone=None, reverse: bool = False):
    """``reference.recur`` for ``cell``, computed by its native kernel: returns (seq, last, state).

    x (B, T, I); state tuple of (B, S); mask (B, T) bool; rec_mask (B, S0); zone one (B, T, S)
    per state tensor (see reference.recur). Differentiable in x, state and the cell's parameters.
    """
    # The kernels are CPU float32/float64 code; anything else is the reference loop's
    # (fallback_reason says why; the layer reports and warns).
    if fallback_reason(cell, x) is not None:
        return reference.recur(cell, x, state, mask=mask, rec_mask=rec_mask, zone=zone, reverse=reverse)
    _, names = KERNELS[type(cell)]
    params = [getattr(cell, n) for n in names]
    return apply(cell, x, state, params, mask=mask, rec_mask=rec_mask, zone=zone, reverse=reverse)


def embedding_fusable(cell: Cell, embedding: torch.nn.Embedding) -> bool:
    """True when ``run_embedded`` computes ``run(cell, embedding(ids), ...)`` exactly: an LSTM cell and a
    plain lookup (no max_norm, padding_idx, scale_grad_by_freq or sparse gradient, which act on the lookup)."""
    return (type(cell) is LSTMCell and embedding.max_norm is None
            and embedding.padding_idx is None and not embedding.scale_grad_by_freq and not embedding.sparse
            and embedding.weight.dtype == cell.weight_ih.dtype and embedding.weight.device == cell.weight_ih.device
            and embedding.embedding_dim == cell.input_size)


def run_embedded(cell: Cell, weight: torch.Tensor, ids: torch.Tensor, state: tuple, *, mask=None, rec_mask=None,
                 zone=None, reverse: bool = False):
    """``run(cell, F.embedding(ids, weight), ...)`` for an LSTM cell, with the input projection of the
    embedded ids taken as rows of the projected table: W_ih E[v] + b = (E W_ih^T + b)[v], so the
    (V, 4H) table costs V*I*4H multiply-adds instead of B*T*I*4H (and the same saving in backward:
    the gradients of E and W_ih are (V, 4H) products). Exact algebra (float rounding of a sum of the
    same products); autograd carries the gradients to weight, weight_ih and the biases.
    ids (B, T) integers in [0, V); weight (V, I) the embedding table."""
    with torch.autocast(weight.device.type, enabled=False):   # in the parameters' dtype, as the kernel's own matmul
        table = torch.addmm(cell.bias_ih + cell.bias_hh, weight, cell.weight_ih.t())   # (V, 4H)
        projected = Gather.apply(table, ids.long())                                    # (B, T, 4H)
    params = [None if n in ("weight_ih", "bias_ih", "bias_hh") else getattr(cell, n) for n in KERNELS[LSTMCell][1]]
    return apply(cell, projected, state, params, mask=mask, rec_mask=rec_mask, zone=zone, reverse=reverse)


class Gather(torch.autograd.Function):
    """table[ids] (B, T, n), F.embedding's value, whose backward adds the rows' gradients into the table with
    index_add_ (split over torch's threads): F.embedding's dense backward took 7.2 ms at the IMDB model's
    size ((128, 500) ids into a (10000, 128) table, 2 threads), index_add_ 2.4 ms."""

    @staticmethod
    def forward(ctx, table, ids):
        ctx.save_for_backward(ids)
        ctx.rows = table.shape[0]
        return table.index_select(0, ids.reshape(-1)).view(*ids.shape, table.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        ids, = ctx.saved_tensors
        n = grad.shape[-1]
        return grad.new_zeros(ctx.rows, n).index_add_(0, ids.reshape(-1), grad.reshape(-1, n)), None


def apply(cell, x, state, params, *, mask, rec_mask, zone, reverse):
    """The kernel of ``cell``'s family on x with ``params`` (None: absent, passed empty). Without weight_ih, x
    is the input projection and the kernel computes the gates in its storage (run_embedded's own gather)."""
    module, options = load(), kernel_options(cell)
    family, _ = KERNELS[type(cell)]
    if family in ROW_SPLIT:
        options = options + [f"gemm={STEP_GEMM}"]
    B, T, _ = x.shape
    if mask is not None:  # the kernels compute every step's input projection: no NaN may enter a masked one
        x = torch.where(mask[:, :, None], x, 0.0)
    absent = x.new_empty(0)
    params = [absent if p is None else p.contiguous() for p in params]
    zone = [] if zone is None else [z.to(x.dtype).expand(B, T, s).contiguous() for z, s in zip(zone, cell.state_sizes)]
    spec = Spec(module, family, options, reverse, len(zone), len(state), len(params))
    with torch.autocast(x.device.type, enabled=False):  # the kernel's own matmuls stay in x's dtype
        seq, last, *final = Sequence.apply(
            spec, x.contiguous(), absent.bool() if mask is None else mask.to(torch.bool).contiguous(),
            absent if rec_mask is None else rec_mask.to(x.dtype).contiguous(), *zone,
            *(s.contiguous() for s in state), *params)
    return seq, last, tuple(final)


class Spec:
    """What a Sequence call runs: the kernel family, its options, and how its tensors are grouped."""

    def __init__(self, module, family, options, reverse, n_zone, n_state, n_params):
        self.forward = getattr(module, family + "_forward")
        self.backward = getattr(module, family + "_backward")
        self.options, self.reverse = options, reverse
        self.n_zone, self.n_state, self.n_params = n_zone, n_state, n_params

    def split(self, tensors):
        """tensors = zone..., state..., params... -> the three lists."""
        a, b = self.n_zone, self.n_zone + self.n_state
        return list(tensors[:a]), list(tensors[a:b]), list(tensors[b:])


class Sequence(torch.autograd.Function):
    """One native kernel over a sequence; its backward is the kernel's native backward pass.

    Saved for backward: the inputs, and what the kernel says it needs (gate activations and the
    states entering each step, per cell family; see the kernel's file).
    """

    @staticmethod
    def forward(ctx, spec: Spec, x, mask, rec_mask, *tensors):
        zone, state, params = spec.split(tensors)
        out = spec.forward(x, state, params, mask, rec_mask, zone, spec.reverse, spec.options)
        seq, last, final, saved = out[0], out[1], out[2:2 + spec.n_state], out[2 + spec.n_state:]
        ctx.spec = spec
        ctx.save_for_backward(x, mask, rec_mask, *zone, *params, *saved)
        return (seq, last, *final)

    @staticmethod
    @once_differentiable
    def backward(ctx, dseq, dlast, *dfinal):
        spec = ctx.spec
        x, mask, rec_mask, *rest = ctx.saved_tensors
        zone, params = rest[:spec.n_zone], rest[spec.n_zone:spec.n_zone + spec.n_params]
        saved = rest[spec.n_zone + spec.n_params:]
        grads = spec.backward(dseq.contiguous(), dlast.contiguous(), [d.contiguous() for d in dfinal], x, params,
                              mask, rec_mask, zone, spec.reverse, spec.options, saved, ctx.needs_input_grad[1])
        dx, dstate, dparams = grads[0], grads[1:1 + spec.n_state], grads[1 + spec.n_state:]
        return (None, dx, None, None, *[None] * spec.n_zone, *dstate, *dparams)
