"""Benchmark mode (rnnkit.backends.benchmark): a measured backend choice per shape, kept and reported.

The timer is replaced by a fake that says which backend is fastest, so every choice here is
deterministic; no test depends on real timings.
"""
import json
import warnings

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import backends
from rnnkit.kernels import native
from rnnkit.layers import autotune


@pytest.fixture(autouse=True)
def fresh():
    backends.clear()
    autotune.WARNED.clear()
    with backends.flags(benchmark=True, persist=False):
        yield
    backends.clear()


class FakeTimer:
    """Replaces autotune.measure: each backend's time comes from ``speeds``; records every call."""

    def __init__(self, monkeypatch, **speeds):
        self.speeds, self.calls = {"torch": 2.0, "native": 3.0, "scan": 5.0, "reference": 4.0, **speeds}, []
        monkeypatch.setattr(autotune, "measure", self)

    def __call__(self, name, call):
        self.calls.append(name)
        return self.speeds[name]


def test_the_fastest_backend_runs_and_is_reported(monkeypatch):
    assert native.load() is not None, "the native build is needed here"
    for fastest in ("native", "torch", "reference"):
        backends.clear()
        FakeTimer(monkeypatch, **{fastest: 0.5})
        layer = rnnkit.GRU(6, input_size=3)
        layer(torch.randn(4, 5, 3)).sum().backward()
        assert layer.backend == fastest
        assert list(backends.choices().values()) == [fastest]


def test_the_timer_runs_once_per_key(monkeypatch):
    timer = FakeTimer(monkeypatch, native=1.0)
    layer = rnnkit.LSTM(6, input_size=3, num_layers=2)
    x = torch.randn(4, 5, 3)
    layer(x).sum().backward()
    first = len(timer.calls)
    # reference (4.0 > 2 * 1.0) leaves the race after its first round
    assert [timer.calls.count(n) for n in ("torch", "native", "reference")] == [autotune.REPS, autotune.REPS, 1]
    for _ in range(3):
        layer(x).sum().backward()
        layer(torch.randn(4, 9, 3))             # another length: the same key (lengths are not in it)
    assert len(timer.calls) == first
    assert layer.backend == "native"
    layer(torch.randn(7, 5, 3))                 # another batch size: a new key, timed once
    with torch.no_grad():
        layer(x)                                # inference: a new key (no backward in its time)
    assert len(timer.calls) == 3 * first and len(backends.choices()) == 3


def test_a_forced_backend_is_never_timed(monkeypatch):
    timer = FakeTimer(monkeypatch, native=0.1)
    layer = rnnkit.GRU(6, input_size=3, backend="torch")
    layer(torch.randn(4, 5, 3))
    assert layer.backend == "torch" and timer.calls == [] and backends.choices() == {}


def test_off_by_default_and_off_means_the_static_choice(monkeypatch):
    timer = FakeTimer(monkeypatch, native=0.1)
    with backends.flags(benchmark=False):
        layer = rnnkit.GRU(6, input_size=3)
        layer(torch.randn(4, 5, 3))
    assert layer.backend == "torch" and timer.calls == []
    with pytest.raises(ValueError, match="True or False"):
        with backends.flags(benchmark="yes"):
            pass


def test_only_backends_that_can_run_the_call_race(monkeypatch):
    timer = FakeTimer(monkeypatch, torch=0.1)
    holes = torch.tensor([[True, False, True, True, True]] * 4)
    layer = rnnkit.GRU(6, input_size=3)
    layer(torch.randn(4, 5, 3), mask=holes)
    assert "torch" not in timer.calls and layer.backend == "native"   # torch's op cannot skip inner steps
    timer.calls.clear()
    custom = rnnkit.GRU(6, input_size=3, activation=torch.nn.functional.softsign)
    custom(torch.randn(4, 5, 3))
    assert timer.calls == [] and custom.backend == "reference"        # the only path for a custom activation


def test_trials_leave_gradients_and_random_stream_alone(monkeypatch):
    FakeTimer(monkeypatch, native=0.5)
    torch.manual_seed(0)
    layer = rnnkit.LSTM(6, input_size=3, num_layers=2, dropout=0.3).double()
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    twin = rnnkit.LSTM(6, input_size=3, num_layers=2, dropout=0.3, backend="native").double()
    twin.load_state_dict(layer.state_dict())
    torch.manual_seed(1)
    ref = twin(x)
    ref_next = torch.rand(3)
    ref.sum().backward()
    ref_grads = [p.grad for p in twin.parameters()]
    torch.manual_seed(1)
    out = layer(x)          # times torch, native and reference (each draws dropout masks), then runs native
    assert all(p.grad is None for p in layer.parameters())
    assert torch.equal(torch.rand(3), ref_next)      # the trials drew nothing from the user's stream
    out.sum().backward()
    assert layer.backend == "native"
    torch.testing.assert_close(out, ref)             # the same dropout masks, the same math
    for p, g in zip(layer.parameters(), ref_grads):
        torch.testing.assert_close(p.grad, g)


def test_a_failing_backend_leaves_the_race_with_one_warning(monkeypatch):
    FakeTimer(monkeypatch, native=0.1)

    def broken(*args, **kwargs):
        raise RuntimeError("kernel exploded")
    monkeypatch.setattr(native, "run", broken)
    layer = rnnkit.GRU(6, input_size=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer(torch.randn(4, 5, 3))
        layer(torch.randn(8, 5, 3))             # a second key: the same failure is not said again
    messages = [str(w.message) for w in caught if "benchmark mode" in str(w.message)]
    assert len(messages) == 1 and "'native' failed" in messages[0] and "kernel exploded" in messages[0]
    assert layer.backend == "torch"


def test_persisted_choices_are_reused_without_timing(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    timer = FakeTimer(monkeypatch, native=0.5)
    x = torch.randn(4, 5, 3)
    with backends.flags(persist=True):
        rnnkit.GRU(6, input_size=3)(x)
        stored = json.loads((tmp_path / "backend-choices.json").read_text())
        assert list(list(stored.values())[0].values()) == ["native"]
        backends.clear()                        # as a new process would start
        timer.calls.clear()
        layer = rnnkit.GRU(6, input_size=3)
        layer(x)
    assert timer.calls == [] and layer.backend == "native"


def test_keras_fit_benchmarks_unless_jit_compile_is_false(monkeypatch):
    from rnnkit.keras import layers
    from rnnkit.keras.models import Sequential
    timer = FakeTimer(monkeypatch, native=0.5)
    x, y = np.random.rand(16, 5, 3).astype("float32"), np.random.rand(16, 1).astype("float32")
    for jit, timed in (("auto", True), (False, False)):
        backends.clear()
        timer.calls.clear()
        with backends.flags(benchmark=False):
            model = Sequential([layers.GRU(4), layers.Dense(1)])
            model.compile(optimizer="rmsprop", loss="mse", jit_compile=jit)
            model.fit(x, y, batch_size=8, epochs=1, verbose=0)
            assert backends.benchmark is False        # switched on for fit only
        assert bool(timer.calls) is timed
        assert model.layers[0].backend == ("native" if timed else "torch")
    with pytest.raises(ValueError, match="jit_compile"):
        model.compile(optimizer="rmsprop", loss="mse", jit_compile="xla")
