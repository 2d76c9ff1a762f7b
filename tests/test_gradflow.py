"""Gradient diagnostics: the flow through time against closed forms, the gradflow command, the trainer's
gradient log, and exploding gradients with and without clipping."""
import copy
import csv
import json
import math
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rnnkit
from rnnkit.analysis import exploding_demo, fall_steps, gradient_flow, random_flow
from rnnkit.cells import CELLS, ElmanCell, LSTMCell
from rnnkit.cli import main
from rnnkit.train import StepOutput, TensorBatches, Trainer, TrainConfig
from rnnkit.train.gradlog import GradLog


def test_a_linear_recurrence_scales_the_gradient_by_its_weight_each_step():
    """h_t = a·Q h_{t-1} + W x_t with Q orthogonal: every step Jacobian is a·Q, so all its singular
    values are a, the gradient k steps back is a^k, and it falls by 1e-3 after ceil(log 1e-3 / log a) steps."""
    torch.manual_seed(0)
    cell = ElmanCell(3, 6, activation="identity").double()
    with torch.no_grad():
        cell.weight_hh.copy_(0.9 * torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))[0])
    flow = gradient_flow(cell, torch.randn(80, 3))
    assert flow.norms == pytest.approx([0.9 ** k for k in range(81)], rel=1e-9)
    assert all(s == pytest.approx([0.9] * 6, rel=1e-9) for s in flow.singular)
    assert flow.fall == math.ceil(math.log(1e-3) / math.log(0.9)) == 66


def test_the_tanh_jacobian_is_the_textbook_one():
    """For the tanh RNN, ds_t/ds_{t-1} = diag(1 - h_t²) W_hh along the trajectory."""
    torch.manual_seed(1)
    cell = ElmanCell(2, 4).double()
    x = torch.randn(5, 2, dtype=torch.float64)
    flow = gradient_flow(cell, x)
    h = torch.zeros(1, 4, dtype=torch.float64)
    for t in range(5):
        (h,) = cell.step(x[None, t], (h,), cell)
        J = torch.diag(1 - h[0] ** 2) @ cell.weight_hh.detach()
        assert flow.singular[t] == pytest.approx(torch.linalg.svdvals(J).tolist(), rel=1e-9)


def test_an_open_forget_gate_carries_the_gradient_where_the_tanh_rnn_loses_it():
    rnn = random_flow("rnn", 100)
    assert rnn.fall is not None and rnn.fall < 40
    torch.manual_seed(0)
    lstm = LSTMCell(8, 32)
    with torch.no_grad():
        lstm.bias_ih[32:64] = 6.0          # f = σ(6 + ...) ≈ 1: c_t ≈ c_{t-1} + i ⊙ g
    flow = gradient_flow(lstm, torch.randn(100, 8, generator=torch.Generator().manual_seed(1)))
    assert flow.fall is None and flow.norms[100] > 1e-2


def test_fall_steps():
    assert fall_steps([1.0, 0.5, 1e-3, 1e-4]) == 2
    assert fall_steps([2.0, 1.0]) is None


def test_gradflow_command_draws_every_cell(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["gradflow", "--cell", "all", "--steps", "12", "--hidden-size", "6", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "gradflow.json").read_text())
    assert [d["cell"] for d in data] == sorted(CELLS)
    assert all(len(d["norms"]) == 13 and d["norms"][0] == 1.0 for d in data)
    assert (tmp_path / "gradflow.png").stat().st_size > 10000
    assert "steps to fall by 1e-3" in (tmp_path / "gradflow.md").read_text() and "| lstm |" in out


@pytest.mark.parametrize("argv,expected", [
    (["--cell", "tpu"], "unknown cell 'tpu'"),
    (["--steps", "0"], "must be positive integers"),
    (["--checkpoint", "/no/such.safetensors"], "checkpoint not found"),
    (["--steps", "x"], "invalid int value"),
])
def test_gradflow_user_errors_are_one_line(capsys, argv, expected):
    assert main(["gradflow", *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


def test_gradflow_refuses_a_file_as_output_directory(tmp_path, capsys):
    (tmp_path / "f").write_text("keep")
    assert main(["gradflow", "--out", str(tmp_path / "f")]) == 2
    assert (tmp_path / "f").read_text() == "keep"


def test_gradflow_without_matplotlib_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["gradflow", "--steps", "5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'pip install "rnnkit[plot]"' in out and not (tmp_path / "gradflow.png").exists()
    assert (tmp_path / "gradflow.json").exists()


def test_gradflow_reads_a_trained_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "adding", "--seq-len", "10", "--train-size", "40", "--val-size", "20", "--epochs", "1",
                 "--hidden-size", "8", "--cell", "gru", "--quiet", "--out", str(run)]) == 0
    assert main(["gradflow", "--checkpoint", str(run / "last.safetensors"), "--steps", "15",
                 "--out", str(tmp_path / "gf")]) == 0
    data = json.loads((tmp_path / "gf" / "gradflow.json").read_text())
    assert [d["cell"] for d in data] == ["gru (run/last.safetensors)", "gru (random)"]
    assert data[0]["source"].endswith("last.safetensors") and len(data[0]["norms"]) == 16


# ---- the trainer's gradient log ---------------------------------------------------------------------------
class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = rnnkit.GRU(5, input_size=2)
        self.head = nn.Linear(5, 1)

    def forward(self, x):
        return self.head(self.rnn(x)).squeeze(-1)


def fit(tmp_path, **config):
    torch.manual_seed(0)
    model = Regressor()
    x, y = torch.randn(12, 7, 2), torch.randn(12)
    before = copy.deepcopy(model)
    step = lambda batch, state: StepOutput(F.mse_loss(model(batch[0]), batch[1]), None, n=4)   # noqa: E731
    trainer = Trainer(model, step, TrainConfig(epochs=1, eval_every=1, optimizer="sgd", lr=0.1, verbose=0,
                                               out_dir=str(tmp_path), **config))
    trainer.fit(TensorBatches(x, y, batch_size=4))
    return trainer, before, x, y


def test_grad_log_records_each_layer_and_the_clipped_fraction(tmp_path):
    trainer, before, x, y = fit(tmp_path, log_grad_norms=True, clip_norm=1e-4)
    F.mse_loss(before(x[:4]), y[:4]).backward()      # the first update's gradient, measured independently
    layers = {}
    for name, p in before.named_parameters():
        layers[name.rpartition(".")[0]] = layers.get(name.rpartition(".")[0], 0.0) + float(p.grad.pow(2).sum())
    row = trainer.history.rows[0]
    assert row["grad_norm"] == pytest.approx(math.sqrt(sum(layers.values())), rel=1e-5)
    for layer, sq in layers.items():
        assert row[f"grad_norm:{layer}"] == pytest.approx(math.sqrt(sq), rel=1e-5)
    assert [r["clipped"] for r in trainer.history.rows] == [1.0, 1.0, 1.0]
    with open(tmp_path / "history.csv") as f:
        assert {"grad_norm", "grad_norm_max", "clipped", "grad_norm:head"} <= set(next(csv.reader(f)))
    assert (tmp_path / "grad_norms.png").exists() or pytest.importorskip("matplotlib") is None


def test_grad_log_counts_no_clipping_under_a_loose_threshold(tmp_path):
    trainer, *_ = fit(tmp_path, log_grad_norms=True, clip_norm=1e6)
    assert [r["clipped"] for r in trainer.history.rows] == [0.0, 0.0, 0.0]


def test_grad_log_off_costs_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(GradLog, "measure", lambda *a: pytest.fail("measured while off"))
    trainer, *_ = fit(tmp_path)
    assert trainer.gradlog is None and "grad_norm" not in trainer.history.keys()
    assert not (tmp_path / "grad_norms.png").exists()


# ---- exploding gradients ------------------------------------------------------------------------------------
def test_clipping_keeps_training_finite_where_unclipped_training_diverges():
    """W_hh scaled by 1.5 (relu units, 50 steps): the first gradient is ~1.5^50 times too big.
    Unclipped SGD overflows at once; clipped to norm 1, the same run stays finite and the loss falls."""
    wild = exploding_demo(scale=1.5, clip_norm=None, steps=30)
    tame = exploding_demo(scale=1.5, clip_norm=1.0, steps=30)
    assert wild.grad_norms[0] == tame.grad_norms[0] > 1e4
    assert not wild.finite and wild.diverged_at < 5
    assert tame.finite and len(tame.losses) == 30 and tame.losses[-1] < tame.losses[0] / 100
    calm = exploding_demo(scale=0.9, clip_norm=None, steps=30)   # below 1: no explosion, no clipping needed
    assert calm.finite and calm.grad_norms[0] < 100
