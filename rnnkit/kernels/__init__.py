"""Fast paths and the one dispatcher that chooses between them (and ``dropout``, torch's with a cheaper
CPU mask: ``drop.py``).

Backends, in order of preference:
  "torch"      torch's fused op (oneDNN on CPU, cuDNN on GPU), for the cells
               that have an exact counterpart: Elman tanh/relu, LSTM with or
               without projection, GRU in the reset-after form; no recurrent
               dropout, zoneout, peepholes or layer norm.
  "native"     rnnkit's compiled sequence kernels (when built and supported).
  "scan"       the log-space parallel scan of minGRU / minLSTM (``scan.py``),
               with recurrent dropout (on the candidate term), without zoneout.
  "reference"  the Python time loop ``reference.recur``, the specification.
"""
from __future__ import annotations

from ..cells import Cell, ElmanCell, GRUCell, LSTMCell
from . import fused, reference, scan
from .drop import dropout

BACKENDS = ("torch", "native", "scan", "reference")


def fused_supports(cell: Cell) -> bool:
    """True if torch has a fused op computing exactly this cell."""
    if type(cell) is ElmanCell:
        return fused.elman_mode(cell) is not None
    if type(cell) is LSTMCell:
        return not cell.peephole
    if type(cell) is GRUCell:
        return cell.reset_after
    return False


def native_supports(cell: Cell) -> bool:
    """True if the compiled kernels cover this cell and can be built here."""
    try:
        from . import native
    except ImportError:
        return False
    return native.supports(cell)


def select_backend(cell: Cell, *, recurrent_dropout: float = 0.0, zoneout: float = 0.0,
                   requested: str = "auto") -> str:
    """The backend a layer of ``cell`` uses; ``requested`` forces one (ValueError if impossible)."""
    if requested not in ("auto",) + BACKENDS:
        raise ValueError(f"unknown backend {requested!r}; expected 'auto' or one of {BACKENDS}")
    fused_ok = fused_supports(cell) and not recurrent_dropout and not zoneout
    if requested == "torch" and not fused_ok:
        raise ValueError(f"no fused torch op computes {type(cell).__name__} with these options; "
                         "use backend='auto', 'native' or 'reference'")
    scan_ok = scan.supports(cell) and not zoneout
    if requested == "scan" and not scan_ok:
        raise ValueError(f"the parallel scan computes minGRU/minLSTM without zoneout, "
                         f"not {type(cell).__name__} with these options; use backend='auto' or 'reference'")
    if requested == "native" and not native_supports(cell):
        raise ValueError(f"native kernels are not available for {type(cell).__name__} here")
    if requested != "auto":
        return requested
    if fused_ok:
        return "torch"
    if scan_ok:
        return "scan"
    return fallback_backend(cell)


def fallback_backend(cell: Cell) -> str:
    """Where a fused layer goes for a call the fused op cannot take (a mask with holes)."""
    return "native" if native_supports(cell) else "reference"
