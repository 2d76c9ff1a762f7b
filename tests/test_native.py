"""The native kernels equal the reference loop: outputs, final state, `last` and every gradient.

The module is compiled at the first test (minutes on a fresh cache, then cached across runs).
"""
import warnings

import pytest
import torch

import rnnkit
from rnnkit.cells import ElmanCell, JordanCell, LayerNormLSTMCell, LSTMCell
from rnnkit.kernels import build, native, reference, select_backend

from helpers import CELL_CONFIGS, assert_native_equals_reference, holes_mask, make_cell, random_state, run_and_grad

CONFIGS = CELL_CONFIGS + [
    ("elman-sigmoid", ElmanCell, {"activation": "sigmoid"}),
    ("jordan-relu-identity", JordanCell, {"activation": "relu", "output_activation": "identity"}),
]
B, T = 5, 7

# (id, options of recur beyond x and state): every option alone, then all together.
VARIANTS = ["plain", "reverse", "mask", "mask-reverse", "rec-mask", "zone-train", "zone-eval", "all"]


@pytest.fixture(scope="module", autouse=True)
def kernels():
    """The compiled module: these tests are about it, so a failed build fails them (no silent fallback)."""
    module = native.load()
    assert module is not None, f"the native build failed: {build.unavailable_reason()}"
    return module


def variant_options(name, cell, dtype):
    g = torch.Generator().manual_seed(3)
    rec_mask = torch.bernoulli(torch.full((B, cell.state_sizes[0]), 0.7, dtype=dtype), generator=g) / 0.7
    zone_train = tuple(torch.bernoulli(torch.full((B, T, s), 0.3, dtype=dtype), generator=g)
                       for s in cell.state_sizes)
    zone_eval = tuple(torch.full((1, 1, 1), 0.3, dtype=dtype).expand(B, T, s) for s in cell.state_sizes)
    return {
        "plain": {}, "reverse": {"reverse": True}, "mask": {"mask": holes_mask(B, T)},
        "mask-reverse": {"mask": holes_mask(B, T), "reverse": True}, "rec-mask": {"rec_mask": rec_mask},
        "zone-train": {"zone": zone_train}, "zone-eval": {"zone": zone_eval},
        "all": {"mask": holes_mask(B, T), "reverse": True, "rec_mask": rec_mask, "zone": zone_train},
    }[name]


def tolerance(dtype, cell):
    if dtype == torch.float64:
        return dict(rtol=1e-10, atol=1e-10)
    # Layer norm over few features divides by a small deviation, which float32 rounding feels more.
    return dict(rtol=1e-5, atol=1e-4 if isinstance(cell, LayerNormLSTMCell) else 1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("cls,options", [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_kernel_equals_reference(cls, options, variant, dtype):
    cell = make_cell(cls, options, dtype=dtype)
    assert native.supports(cell)
    torch.manual_seed(1)
    x, state = torch.randn(B, T, 3, dtype=dtype), random_state(cell, B, dtype)
    opts = variant_options(variant, cell, dtype)
    got = run_and_grad(native.run, cell, x, state, **opts)
    want = run_and_grad(reference.recur, cell, x, state, **opts)
    names = ["seq", "last"] + [f"state[{i}]" for i in range(len(state))] + ["dx"]
    names += [f"dstate[{i}]" for i in range(len(state))] + [f"d{n}" for n, _ in cell.named_parameters()]
    assert len(got) == len(names)
    for name, a, b in zip(names, got, want):
        torch.testing.assert_close(a, b, **tolerance(dtype, cell), msg=lambda m: f"{name}: {m}")


def test_masked_rows_output_zero_and_carry_state():
    """An empty row keeps its initial state and outputs zeros; `last` of an empty row is zero."""
    cell = make_cell(LSTMCell, {"peephole": True}, dtype=torch.float64)
    state = random_state(cell, B)
    seq, last, final = native.run(cell, torch.randn(B, T, 3, dtype=torch.float64), state, mask=holes_mask(B, T))
    assert torch.all(seq[4] == 0) and torch.all(last[4] == 0)
    for s, s0 in zip(final, state):
        torch.testing.assert_close(s[4], s0[4], rtol=0, atol=0)


LAYERS = [(rnnkit.LSTM, {"peephole": True}), (rnnkit.LSTM, {"proj_size": 3}), (rnnkit.GRU, {"reset_after": False}),
          (rnnkit.GRU, {}), (rnnkit.LayerNormLSTM, {}), (rnnkit.SimpleRNN, {"activation": "relu"}),
          (rnnkit.JordanRNN, {})]
LAYER_IDS = ["lstm-peephole", "lstm-proj", "gru-cho", "gru", "lnlstm", "rnn-relu", "jordan"]
LAYOUTS = [{"num_layers": 2}, {"bidirectional": True},
           {"num_layers": 2, "bidirectional": True, "recurrent_dropout": 0.3, "zoneout": 0.2}]


def layer_outputs(layer, x, mask, state, seed):
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)  # the same dropout and zoneout samples for both backends
    seq, final = layer(x, state, mask=mask)
    loss = (seq * torch.linspace(-1, 1, seq.shape[-1], dtype=x.dtype)).sum() + sum((s ** 2).sum() for s in final)
    return [seq, *final, *torch.autograd.grad(loss, [x, *layer.parameters()])]


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=["stacked", "bidirectional", "stacked-bidir-dropout-zoneout"])
@pytest.mark.parametrize("cls,options", LAYERS, ids=LAYER_IDS)
def test_layers_native_equal_reference(cls, options, layout, train):
    torch.manual_seed(0)
    layers = [cls(5, input_size=4, return_sequences=True, return_state=True, backend=backend, **options, **layout)
              for backend in ("native", "reference")]
    layers[1].load_state_dict(layers[0].state_dict())
    assert [layer.backend for layer in layers] == ["native", "reference"]
    x = torch.randn(4, 6, 4, dtype=torch.float64)
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3, [0] * 2 + [1] * 4, [1, 0, 1, 1, 0, 1]], dtype=torch.bool)
    state = tuple(0.3 * torch.randn(layers[0].num_slots, 4, s, dtype=torch.float64) for s in layers[0].state_sizes)
    got, want = [layer_outputs(layer.double().train(train), x, mask, state, seed=5) for layer in layers]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_auto_backend_is_native_where_torch_has_no_fused_op():
    assert rnnkit.LayerNormLSTM(4, input_size=3).backend == "native"
    assert rnnkit.LSTM(4, input_size=3, peephole=True).backend == "native"
    assert rnnkit.GRU(4, input_size=3, recurrent_dropout=0.1).backend == "native"
    assert rnnkit.LSTM(4, input_size=3).backend == "torch"


def test_custom_activation_is_not_supported():
    assert not native.supports(ElmanCell(3, 4, activation=lambda v: v * 2))
    assert select_backend(ElmanCell(3, 4, activation=lambda v: v * 2)) == "reference"


@pytest.fixture
def fresh_build_cache():
    build.reset()
    yield
    build.reset()


def test_fallback_when_native_is_disabled(monkeypatch, fresh_build_cache):
    monkeypatch.setenv("RNNKIT_NATIVE", "0")
    cell = make_cell(LayerNormLSTMCell, {}, dtype=torch.float64)
    assert not native.supports(cell)
    assert select_backend(cell) == "reference"
    assert rnnkit.LayerNormLSTM(5, input_size=3).backend == "reference"
    with pytest.raises(ValueError, match="native kernels are not available"):
        rnnkit.LayerNormLSTM(5, input_size=3, backend="native")
    x, state = torch.randn(B, T, 3, dtype=torch.float64), random_state(cell, B)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [native.run(cell, x, state) for _ in range(2)]
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "RNNKIT_NATIVE=0" in messages[0]
    want = reference.recur(cell, x, state)
    for run in got:
        torch.testing.assert_close(run[0], want[0], rtol=0, atol=0)


def test_fallback_when_the_build_fails(monkeypatch, fresh_build_cache):
    """A build failing at first use: one RuntimeWarning naming the reason, then reference results."""
    def broken(name, sources):
        raise RuntimeError("Error building extension 'rnnkit_native': c++: fatal error")

    monkeypatch.setattr(build, "compile_module", broken)
    cell = make_cell(LSTMCell, {"peephole": True}, dtype=torch.float64)
    x, state = torch.randn(B, T, 3, dtype=torch.float64), random_state(cell, B)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [native.run(cell, x, state, mask=holes_mask(B, T)) for _ in range(2)]
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "the build failed" in messages[0] and "fatal error" in messages[0]
    want = reference.recur(cell, x, state, mask=holes_mask(B, T))
    for run in got:
        for a, b in zip([run[0], run[1], *run[2]], [want[0], want[1], *want[2]]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_other_dtypes_run_the_reference_loop():
    cell = make_cell(LSTMCell, {"peephole": True}, dtype=torch.bfloat16)
    x, state = torch.randn(B, T, 3, dtype=torch.bfloat16), random_state(cell, B, torch.bfloat16)
    got, want = native.run(cell, x, state), reference.recur(cell, x, state)
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)


def test_a_non_editable_install_ships_every_kernel_source():
    """pip install . copies only package data that pyproject names: every csrc file must match a pattern."""
    import fnmatch
    from pathlib import Path
    try:
        import tomllib
    except ImportError:  # Python 3.10: the tomli dependency
        import tomli as tomllib

    root = Path(__file__).parent.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["rnnkit"]
    csrc = root / "rnnkit" / "kernels" / "csrc"
    files = [p.relative_to(root / "rnnkit").as_posix() for p in csrc.iterdir() if p.is_file()]
    assert set(native.SOURCES) <= {Path(f).name for f in files}
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), files


def test_backend_reports_the_build_failure(monkeypatch, fresh_build_cache):
    """A layer selected 'native' whose build fails says 'reference' after its first call, with one warning;
    layers built after the failure select 'reference' from the start."""
    def broken(name, sources):
        raise RuntimeError("Error building extension 'rnnkit_native': c++: fatal error")

    monkeypatch.setattr(build, "compile_module", broken)
    torch.manual_seed(0)
    layer = rnnkit.LayerNormLSTM(5, input_size=3, num_layers=2, return_sequences=True)
    twin = rnnkit.LayerNormLSTM(5, input_size=3, num_layers=2, return_sequences=True, backend="reference")
    twin.load_state_dict(layer.state_dict())
    assert layer.backend == "native"  # selected: nothing has been built yet
    x = torch.randn(2, 4, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [layer(x) for _ in range(2)]
    assert layer.backend == "reference" and layer.stack.layers[1].backend == "reference"
    assert len([w for w in caught if "fatal error" in str(w.message)]) == 1
    for out in got:
        torch.testing.assert_close(out, twin(x), rtol=0, atol=0)
    assert rnnkit.LayerNormLSTM(5, input_size=3).backend == "reference"
    with pytest.raises(ValueError, match="native kernels are not available"):
        rnnkit.LayerNormLSTM(5, input_size=3, backend="native")


def test_backend_reports_per_call_fallbacks():
    """bfloat16 input on a native layer runs the reference loop: backend says so (one warning); a float32
    call runs the kernel again. A mask with holes on a torch layer runs its fallback, and says it."""
    torch.manual_seed(0)
    layer = rnnkit.LSTM(4, input_size=3, peephole=True)
    layer(torch.randn(2, 5, 3))
    assert layer.backend == "native"
    layer.bfloat16()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer(torch.randn(2, 5, 3, dtype=torch.bfloat16))
        layer(torch.randn(2, 5, 3, dtype=torch.bfloat16))
    assert layer.backend == "reference"
    assert len([w for w in caught if "bfloat16" in str(w.message)]) <= 1  # one per process
    layer.float()
    layer(torch.randn(2, 5, 3))
    assert layer.backend == "native"

    fused = rnnkit.GRU(4, input_size=3, num_layers=2)
    fused(torch.randn(2, 5, 3))
    assert fused.backend == "torch"
    fused(torch.randn(2, 5, 3), mask=torch.tensor([[1, 0, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=torch.bool))
    assert fused.backend == "native"
    fused(torch.randn(2, 5, 3))
    assert fused.backend == "torch"


@pytest.fixture
def two_threads():
    """The suite runs on one thread (conftest); these tests run the kernels' parallel loops."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("variant", ["plain", "all"])
@pytest.mark.parametrize("cls,options", [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_kernel_equals_reference_on_two_threads(two_threads, cls, options, variant):
    """Sizes at which the per-step row loops split over both threads (a row is > 256 values wide)."""
    assert torch.get_num_threads() == 2
    assert_native_equals_reference(make_cell(cls, options, hidden_size=300, dtype=torch.float64), 8, 4, variant)
