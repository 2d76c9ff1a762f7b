"""`rnnkit info` reports versions and every cell with its backend."""
import torch

import rnnkit
from rnnkit.cells import CELLS
from rnnkit.info import VARIANTS, report


def test_info_lists_every_cell_family_with_its_backend():
    text = report()
    assert f"rnnkit {rnnkit.__version__}" in text and f"PyTorch {torch.__version__}" in text
    assert f"threads {torch.get_num_threads()}" in text
    assert {name for _, name, _, _ in VARIANTS} == set(CELLS)
    rows = {line[:38].strip(): line[38:].strip() for line in text.splitlines()[6:]}
    assert rows["LSTM"] == "torch" and rows["LSTM + peepholes"] in ("native", "reference")
    assert len(rows) == len(VARIANTS)
