"""The native LSTM's and GRU's row split and small gemm (csrc/common.h make_plan), and the Embedding -> LSTM
fusion (kernels.native.run_embedded), each equal to the reference loop or to the unfused model."""
import warnings

import pytest
import torch

import rnnkit
from rnnkit.keras import layers as keras_layers
from rnnkit.cells import GRUCell, LSTMCell
from rnnkit.kernels import build, native, reference

from helpers import assert_native_equals_reference, make_cell, random_options, random_state, run_and_grad

ROW_SPLIT_CONFIGS = [("lstm", LSTMCell, {}), ("lstm-peephole", LSTMCell, {"peephole": True}),
                     ("lstm-proj", LSTMCell, {"proj_size": 3}),
                     ("lstm-peephole-proj", LSTMCell, {"peephole": True, "proj_size": 3}),
                     ("gru-reset-after", GRUCell, {}), ("gru-cho", GRUCell, {"reset_after": False})]


@pytest.fixture(scope="module", autouse=True)
def kernels():
    module = native.load()
    assert module is not None, f"the native build failed: {build.unavailable_reason()}"


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.fixture(params=["small", "blas"])
def step_gemm(request, monkeypatch):
    monkeypatch.setattr(native, "STEP_GEMM", request.param)
    return request.param


def test_row_split_runs_on_torchs_threads(threads):
    """The shares of a row split run on as many threads as torch has (8 rows or more each). A build without
    OpenMP runs at::parallel_for's range on the calling thread, silently: the split then ran on one thread."""
    assert native.load().row_split_threads(128) == threads
    assert native.load().row_split_threads(8) == 1   # too few rows to share


def test_a_serial_row_split_is_reported():
    """A build whose split runs on one thread while torch has more says so once, instead of being quietly slow."""
    class Serial:
        def row_split_threads(self, rows):
            return 1

    class Parallel:
        def row_split_threads(self, rows):
            return 2

    with pytest.warns(RuntimeWarning, match="without OpenMP.*on one thread although torch has 2"):
        native.check_row_split(Serial(), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        native.check_row_split(Parallel(), 2)
        native.check_row_split(Serial(), 1)   # one thread asked: nothing lost


@pytest.mark.parametrize("variant", ["plain", "all"])
@pytest.mark.parametrize("cls, options", [c[1:] for c in ROW_SPLIT_CONFIGS], ids=[c[0] for c in ROW_SPLIT_CONFIGS])
def test_row_split_equals_reference(threads, step_gemm, cls, options, variant):
    """37 rows: two unequal shares on two threads, blocks of 16 and a tail, 4-row tiles and single rows;
    H = 7 (and R = 3): matmul widths that are no multiple of the vector width. "all": a mask with holes,
    reverse, recurrent dropout and zoneout at once, from a random initial state."""
    assert_native_equals_reference(make_cell(cls, options, hidden_size=7, dtype=torch.float64), 37, 6, variant)


@pytest.mark.parametrize("variant", ["plain", "all"])
@pytest.mark.parametrize("cls, options", [c[1:] for c in ROW_SPLIT_CONFIGS if not c[2]],
                         ids=[c[0] for c in ROW_SPLIT_CONFIGS if not c[2]])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_small_gemm_at_the_keras_size(dtype, cls, options, variant, monkeypatch):
    """H = 32, B = 21: full 4-row x 2-vector tiles of the hand-written gemm and a single-row tail (float and
    double), both threads, equal to torch's BLAS path and to the reference loop; "all" as above."""
    cell = make_cell(cls, options, input_size=8, hidden_size=32, dtype=dtype)
    torch.manual_seed(2)
    x, state = torch.randn(21, 9, 8, dtype=dtype), random_state(cell, 21, dtype)
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-5)
    opts = random_options(cell, 21, 9, dtype) if variant == "all" else {}
    want = run_and_grad(reference.recur, cell, x, state, **opts)
    before = torch.get_num_threads()
    try:
        for threads, gemm in [(1, "blas"), (1, "small"), (2, "small")]:
            torch.set_num_threads(threads)
            monkeypatch.setattr(native, "STEP_GEMM", gemm)
            for a, b in zip(run_and_grad(native.run, cell, x, state, **opts), want):
                torch.testing.assert_close(a, b, **tol)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("cls", [LSTMCell, GRUCell])
def test_unknown_gemm_option_is_an_error(cls, monkeypatch):
    monkeypatch.setattr(native, "STEP_GEMM", "fast")
    cell = make_cell(cls, {}, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="unknown gemm=fast"):
        native.run(cell, torch.randn(2, 3, 3, dtype=torch.float64), random_state(cell, 2))


# ---- Embedding -> LSTM ------------------------------------------------------------------------------

def embedding_lstm(embedding_options=None, **lstm_options):
    torch.manual_seed(0)
    emb = rnnkit.layers.Embedding(50, 6, **(embedding_options or {}))
    lstm = keras_layers.LSTM(5, backend="native", **lstm_options)
    model = rnnkit.Sequential([emb, lstm, rnnkit.layers.Dense(1)]).double()
    model(torch.randint(1, 50, (2, 3)))   # build
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def loss_and_grads(model, ids, unfused: bool):
    """The model's output and parameter gradients; unfused: the LSTM gets the embedded vectors only."""
    emb, lstm, dense = model
    if unfused:
        x, mask = emb(ids), emb.compute_mask(ids)
        out = dense(lstm(x, mask=mask) if mask is not None else lstm(x))
    else:
        out = model(ids)
    out = out[0] if isinstance(out, tuple) else out
    loss = (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum()
    return [out, *torch.autograd.grad(loss, list(model.parameters()))], lstm.fused_embedding


@pytest.mark.parametrize("case", ["plain", "mask_zero", "go_backwards", "return_sequences", "eval"])
def test_embedding_fusion_equals_unfused(case):
    """Values and the gradients of every parameter (the table, W_ih, the biases included) equal those of
    the LSTM run on the embedded vectors; the layer says it read the projected table."""
    lstm_options = {"go_backwards": True} if case == "go_backwards" else (
        {"return_sequences": True} if case == "return_sequences" else {})
    model = embedding_lstm({"mask_zero": True} if case == "mask_zero" else None, **lstm_options)
    if case == "eval":
        model.eval()
    ids = torch.randint(1, 50, (11, 8))
    ids[3, 5:] = 0
    ids[7, 2:] = 0
    fused, was_fused = loss_and_grads(model, ids, unfused=False)
    unfused, not_fused = loss_and_grads(model, ids, unfused=True)
    assert was_fused and not not_fused and model[1].backend == "native"
    for a, b in zip(fused, unfused):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("why", ["padding_idx", "dropout", "two_layers", "torch"])
def test_no_fusion_where_it_would_not_be_exact(why):
    """padding_idx (its row gets no gradient), input dropout, a stack, torch's backend: the plain path runs."""
    emb_options = {"padding_idx": 0} if why == "padding_idx" else None
    lstm_options = {"dropout": 0.3} if why == "dropout" else ({"num_layers": 2} if why == "two_layers" else {})
    model = embedding_lstm(emb_options, **lstm_options)
    if why == "torch":
        model[1] = keras_layers.LSTM(5, backend="torch").double()
    model.train()
    model(torch.randint(0, 50, (4, 5)))
    assert not model[1].fused_embedding


def test_benchmark_mode_races_the_fused_path_and_trains():
    """Benchmark mode times torch's LSTM on the embedded vectors against the fused native path (with the
    table's gradient), keeps one, and training steps after the race still run (no graph reused)."""
    model = embedding_lstm()
    model[1] = keras_layers.LSTM(5).double()
    ids, y = torch.randint(1, 50, (8, 6)), torch.rand(8, 1, dtype=torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with rnnkit.backends.flags(benchmark=True):
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(ids), y).backward()
            opt.step()
    assert model[1].backend in ("torch", "native")
    assert model[1].fused_embedding == (model[1].backend == "native")
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0


def test_embedding_fusion_under_bf16_autocast():
    """The projected table stays in the parameters' dtype under autocast (the kernel runs float32), so the
    fused model equals the unfused one there too."""
    model = embedding_lstm().float()
    ids = torch.randint(1, 50, (4, 7))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = model(ids)
        assert model[1].fused_embedding
        emb, lstm, dense = model
        unfused = dense(lstm(emb(ids)))
    torch.testing.assert_close(fused.float(), unfused.float(), rtol=1e-2, atol=1e-2)   # Dense rounds to bf16


def test_embedding_fusion_gradient_with_repeated_ids():
    """The projected table's gather (native.Gather) adds the gradients of every position that reads a row:
    ids repeated within and across sequences give the table the same gradient as F.embedding's backward."""
    torch.manual_seed(4)
    table = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    ids = torch.tensor([[1, 1, 3, 1], [3, 5, 5, 0]])
    weights = torch.randn(2, 4, 5, dtype=torch.float64)
    got, = torch.autograd.grad((native.Gather.apply(table, ids) * weights).sum(), table)
    want, = torch.autograd.grad((torch.nn.functional.embedding(ids, table) * weights).sum(), table)
    torch.testing.assert_close(native.Gather.apply(table, ids), torch.nn.functional.embedding(ids, table))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert got[2].abs().sum() == 0 and got[4].abs().sum() == 0   # rows nobody read


def test_native_kernels_keep_freed_memory(monkeypatch):
    """Loading the kernels sets glibc's malloc thresholds once (kernels/memory.py); RNNKIT_MALLOC=default
    leaves malloc alone and says so; a typo in the variable is an error."""
    import os
    import platform
    from rnnkit.kernels import memory
    if platform.libc_ver()[0] == "glibc" and "RNNKIT_MALLOC" not in os.environ:
        assert memory.STATE == "kept"   # the module fixture loaded the kernels
    monkeypatch.setattr(memory, "STATE", "not set")
    monkeypatch.setenv("RNNKIT_MALLOC", "defualt")
    with pytest.raises(ValueError, match="RNNKIT_MALLOC"):
        memory.keep_freed_memory()
    monkeypatch.setenv("RNNKIT_MALLOC", "default")
    assert memory.keep_freed_memory() == "default (RNNKIT_MALLOC)"
    monkeypatch.setenv("RNNKIT_MALLOC", "keep")
    assert memory.keep_freed_memory() == "default (RNNKIT_MALLOC)"   # once per process
