"""Checkpoints: round trip, atomic writes, and clear errors for broken or foreign files."""
import os

import pytest
import torch
from safetensors.torch import save_file

import rnnkit
from rnnkit.errors import UserError
from rnnkit.train import (StepOutput, Trainer, TrainConfig, load_checkpoint, restore_model, save_checkpoint)
from rnnkit.train.checkpoint import pack, unpack




def model(hidden=5):
    torch.manual_seed(0)
    return torch.nn.Sequential(rnnkit.GRU(hidden, input_size=3), torch.nn.Linear(hidden, 1))


def test_round_trip_keeps_weights_config_and_nested_state(tmp_path):
    m = model()
    state = {"carry": (torch.ones(1, 2, 5), [torch.zeros(3), None]), 7: {"step": torch.tensor(3.0)},
             "inf": float("inf"), "name": "x"}
    save_checkpoint(tmp_path / "a.safetensors", m.state_dict(), state, {"model": {"hidden": 5}, "vocab": "ab"})
    ck = load_checkpoint(tmp_path / "a.safetensors")
    assert ck.config == {"model": {"hidden": 5}, "vocab": "ab"}
    assert isinstance(ck.state["carry"], tuple) and torch.equal(ck.state["carry"][0], torch.ones(1, 2, 5))
    assert ck.state[7]["step"].item() == 3.0 and ck.state["inf"] == float("inf") and ck.state["carry"][1][1] is None
    fresh = torch.nn.Sequential(rnnkit.GRU(5, input_size=3), torch.nn.Linear(5, 1))
    restore_model(fresh, ck)
    for (k, a), b in zip(m.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    tensors = {}
    assert unpack(pack(state, tensors, "s"), tensors)["name"] == "x"


def write_two(tmp_path, monkeypatch, target, exc):
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, model().state_dict(), {"n": 1})
    monkeypatch.setattr(*target, exc)
    with pytest.raises(OSError):
        save_checkpoint(path, model(7).state_dict(), {"n": 2})
    monkeypatch.undo()
    return path


@pytest.mark.parametrize("target", [(os, "replace"), (os, "fsync")])
def test_interrupted_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch, target):
    def fail(*args):
        raise OSError("disk gone")
    path = write_two(tmp_path, monkeypatch, target, fail)
    ck = load_checkpoint(path)
    assert ck.state == {"n": 1} and ck.weights["0.stack.layers.0.cell.weight_hh"].shape[-1] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]   # no temporary file left behind


def test_broken_checkpoints_raise_user_error(tmp_path):
    good = tmp_path / "good.safetensors"
    save_checkpoint(good, model().state_dict(), {"n": 1})
    data = good.read_bytes()
    cases = {"truncated": data[: len(data) // 2], "garbage": os.urandom(300), "empty": b"",
             "short": data[:5]}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(UserError, match="corrupt or truncated"):
            load_checkpoint(tmp_path / name)
    save_file({"w": torch.zeros(2)}, tmp_path / "foreign.safetensors")
    with pytest.raises(UserError, match="not an rnnkit checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")
    with pytest.raises(UserError, match=r"does not match the model: shapes differ"):
        restore_model(model(7), load_checkpoint(good))
    with pytest.raises(UserError, match="does not match the model: missing"):
        restore_model(torch.nn.Sequential(*model(), torch.nn.Linear(1, 1)), load_checkpoint(good))
    with pytest.raises(UserError, match="weights only"):
        m = model()
        Trainer(m, None, TrainConfig(verbose=0)).fit([], resume=str(good))


def test_resume_with_another_optimizer_raises_user_error(tmp_path):
    m = model()

    def step(batch, state):
        x, y = batch
        return StepOutput(((m(x).squeeze(-1) - y) ** 2).mean(), None, len(y))
    data = [(torch.randn(4, 6, 3), torch.randn(4))]
    Trainer(m, step, TrainConfig(epochs=1, verbose=0, out_dir=str(tmp_path))).fit(data)
    with pytest.raises(UserError, match="trained with Adam, not SGD"):
        Trainer(m, step, TrainConfig(optimizer="sgd", verbose=0)).fit(data, resume=str(tmp_path / "last.safetensors"))
