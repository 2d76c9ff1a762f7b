import struct

import pytest

from rnnkit.train.history import History

pytest.importorskip("matplotlib")


def png_size(path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    return struct.unpack(">II", head[16:24])


def test_gradient_columns_stay_out_of_the_history_plot(tmp_path):
    """Gradient logging adds a column per layer; they have their own plot (grad_norms.png)."""
    plain, logged = History(), History()
    for step in (10, 20, 30):
        row = {"step": step, "loss": 1.0 / step, "val_loss": 2.0 / step, "acc": 0.5}
        plain.append(dict(row))
        logged.append({**row, "grad_norm": 1.0, "grad_norm_max": 2.0, "clipped": 0.1,
                       **{f"grad_norm:layer{i}": 0.5 for i in range(8)}})
    plain.plot(tmp_path / "plain.png")
    logged.plot(tmp_path / "logged.png")
    assert png_size(tmp_path / "logged.png") == png_size(tmp_path / "plain.png")


def test_many_metrics_wrap_into_rows(tmp_path):
    h = History()
    h.append({"step": 1, **{f"m{i}": float(i) for i in range(9)}})
    h.plot(tmp_path / "h.png")
    width, height = png_size(tmp_path / "h.png")
    assert width <= 4 * 450 and height >= 3 * 300
