"""Cells: the math of one time step, one family a module."""
from .base import ACTIVATIONS, Cell, State
from .elman import ElmanCell
from .gru import GRUCell
from .jordan import JordanCell
from .layernorm_lstm import LayerNormLSTMCell
from .lstm import LSTMCell
from .minrnn import MinGRUCell, MinLSTMCell

# Registry: the name used by configs, the CLI and reports -> cell class.
CELLS: dict[str, type[Cell]] = {
    "rnn": ElmanCell,
    "jordan": JordanCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "lnlstm": LayerNormLSTMCell,
    "mingru": MinGRUCell,
    "minlstm": MinLSTMCell,
}

__all__ = ["ACTIVATIONS", "CELLS", "Cell", "State", "ElmanCell", "GRUCell", "JordanCell",
           "LayerNormLSTMCell", "LSTMCell", "MinGRUCell", "MinLSTMCell"]
