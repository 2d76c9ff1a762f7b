"""Recurrent: runs any cell over a sequence."""
from __future__ import annotations

import logging
import warnings

import torch

from .. import kernels
from ..cells import Cell
from ..kernels import native
from ..kernels.reference import recur
from .base import SequenceLayer, match_autocast, right_padded_lengths

log = logging.getLogger(__name__)
WARNED: set[str] = set()  # the per-call fallbacks already reported in this process (one warning each)


def tracing() -> bool:
    """True while torch.jit.trace, torch.onnx.export or torch.export records the computation."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or exporting()


def warn_once(message: str) -> None:
    if message not in WARNED:
        WARNED.add(message)
        warnings.warn(f"rnnkit: {message}", RuntimeWarning, stacklevel=4)


class Recurrent(SequenceLayer):
    """One cell over a sequence, in one direction.

    recurrent_dropout: rate of the per-sequence mask on the recurrent input (Gal & Ghahramani
      2016); for minGRU / minLSTM, on the candidate term instead (Semeniuta et al. 2016), which
      keeps their recurrence linear and bounded (cells/minrnn.py).
    zoneout: probability that a state unit keeps its previous value at a step.
    go_backwards: process from the last valid step to the first; outputs
      stay aligned with the input steps (seq[:, t] is the output for x[:, t]).
    backend: "auto", "torch" (fused op), "native", "scan" (minGRU/minLSTM) or "reference".

    ``selected_backend`` is the backend chosen at construction; ``backend`` is the one the
    last call ran (before any call, the selected one). They differ when a call cannot take
    the selected path: a mask with holes on "torch"; a CUDA or bfloat16 input, or a native
    build that failed, on "native" (one warning); tracing or export, which records only
    torch operations: "native" runs the reference loop and "scan" its logcumsumexp form
    (one warning).
    """

    num_slots = 1

    def __init__(self, cell: Cell, *, return_sequences=False, return_state=False, go_backwards=False,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0, batch_first=True, backend="auto"):
        super().__init__(return_sequences, return_state, batch_first)
        for name, rate in (("recurrent_dropout", recurrent_dropout), ("zoneout", zoneout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")
        self.cell, self.go_backwards = cell, go_backwards
        self.recurrent_dropout, self.zoneout = recurrent_dropout, zoneout
        self.requested_backend = backend
        self.selected_backend = kernels.select_backend(cell, recurrent_dropout=recurrent_dropout, zoneout=zoneout,
                                                       requested=backend)

    @property
    def backend(self) -> str:
        """The backend the last call ran (before any call: the selected one)."""
        return self.__dict__.get("_ran", self.selected_backend)

    def record_backend(self, name: str) -> None:
        self.__dict__["_ran"] = name
        self.__dict__["_fused_embedding"] = False

    @property
    def fused_embedding(self) -> bool:
        """True when the last call took its input projection from the embedding's projected table."""
        return self.__dict__.get("_fused_embedding", False)

    input_size = property(lambda self: self.cell.input_size)
    output_size = property(lambda self: self.cell.output_size)
    state_sizes = property(lambda self: self.cell.state_sizes)

    def stream_cells(self) -> list:
        if self.go_backwards:
            raise ValueError("a go_backwards layer reads each sequence from its end: it cannot stream step by step")
        return [(self.cell, self.zoneout)]

    def sample_masks(self, x: torch.Tensor):
        """(rec_mask, zone) for this call: sampled in training, expectations in evaluation."""
        B, T, _ = x.shape
        rec_mask = zone = None
        if self.training and self.recurrent_dropout:
            keep = 1.0 - self.recurrent_dropout
            rec_mask = torch.bernoulli(x.new_full((B, self.state_sizes[0]), keep)) / keep
        if self.zoneout:
            if self.training:
                # (u < p) for uniform u: the same Bernoulli(p) draws, 3x faster than torch.bernoulli
                zone = tuple((torch.rand(B, T, s, device=x.device, dtype=x.dtype) < self.zoneout).to(x.dtype)
                             for s in self.state_sizes)
            else:
                zone = tuple(x.new_full((1, 1, 1), self.zoneout).expand(B, T, s) for s in self.state_sizes)
        return rec_mask, zone

    def run(self, x, state=None, mask=None, feedback=None, backend: str | None = None, embedded=None):
        """``backend`` runs this call on that backend (benchmark mode's choice; None: ``selected_backend``).
        ``embedded``: (embedding, ids) with x == embedding(ids); the native LSTM kernel then takes the input
        projection as rows of the projected table (kernels.native.run_embedded; ``fused_embedding`` says so)."""
        param = next(self.cell.parameters(), None)
        if param is not None:  # under autocast, the layer below may hand over a bf16 sequence
            x = match_autocast(x, param.dtype)
            state = None if state is None else tuple(match_autocast(s, param.dtype) for s in state)
        if state is None:
            state = tuple(s.unsqueeze(0) for s in self.cell.init_state(x.shape[0], x.device, x.dtype))
        backend = "reference" if feedback is not None else backend or self.selected_backend
        traced = tracing()
        if backend == "torch":
            lengths = None if mask is None else right_padded_lengths(mask)
            if mask is None or (lengths is not None and lengths.min() > 0):
                seq, state = kernels.fused.run([[self.cell]], x, state, lengths, reverse=self.go_backwards,
                                               training=self.training)
                self.record_backend("torch")
                return seq, state[0][0], state
            backend = kernels.fallback_backend(self.cell)
            log.debug("mask has holes, left padding or empty rows: %s runs on %s",
                      type(self.cell).__name__, backend)
        name = type(self.cell).__name__
        if backend == "native" and traced:
            backend = "reference"
            warn_once(f"{name} is traced or exported: it runs the reference loop (the native kernels "
                      "are opaque to tracing); layer.backend says 'reference'")
        elif backend == "native":
            reason = kernels.native.fallback_reason(self.cell, x)
            if reason is not None:
                backend = "reference"
                if native.load() is not None:  # (an unavailable build has had its one warning from build.load)
                    warn_once(f"{name} runs the reference loop: {reason}; layer.backend says 'reference'")
        elif backend == "scan" and traced:
            warn_once(f"{name} is traced or exported: the scan runs its logcumsumexp form (torch operations "
                      "only), not the compiled recurrence")
        self.record_backend(backend)
        fuse = (embedded is not None and backend == "native" and native.embedding_fusable(self.cell, embedded[0]))
        self.__dict__["_fused_embedding"] = fuse
        rec_mask, zone = self.sample_masks(x)
        state = tuple(s[0] for s in state)
        if backend == "reference":
            seq, last, state = recur(self.cell, x, state, mask=mask, rec_mask=rec_mask, zone=zone,
                                     reverse=self.go_backwards, feedback=feedback)
        elif backend == "scan":
            seq, last, state = kernels.scan.run(self.cell, x, state, mask=mask, rec_mask=rec_mask,
                                                reverse=self.go_backwards, traceable=traced)
        elif fuse:
            seq, last, state = kernels.native.run_embedded(self.cell, embedded[0].weight, embedded[1], state,
                                                           mask=mask, rec_mask=rec_mask, zone=zone,
                                                           reverse=self.go_backwards)
        else:
            seq, last, state = kernels.native.run(self.cell, x, state, mask=mask, rec_mask=rec_mask,
                                                  zone=zone, reverse=self.go_backwards)
        return seq, last, tuple(s.unsqueeze(0) for s in state)
