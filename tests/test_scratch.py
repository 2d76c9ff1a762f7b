"""The NumPy RNNs from scratch: hand gradients against finite differences and against torch autograd
through rnnkit's cells, the forward pass against rnnkit's reference loop, truncated BPTT, the optimizers
against torch's, and the "hello" model."""
import ast
import codecs
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit import scratch
from rnnkit.cells import ElmanCell, GRUCell, LSTMCell
from rnnkit.kernels.reference import recur
from rnnkit.scratch.sequence import CELL_KEYS
from tests.helpers import make_cell

PACKAGE = Path(scratch.__file__).parent
RNNKIT_CELLS = {"rnn": ElmanCell, "lstm": LSTMCell, "gru": GRUCell}
B, T, I, H, O = 2, 5, 3, 4, 6


def test_the_package_imports_without_torch():
    """Loaded on its own with torch made unimportable, the package still runs a training step."""
    code = f"""
import importlib.util, sys
sys.modules["torch"] = None          # any "import torch" now raises ImportError
spec = importlib.util.spec_from_file_location("scratch", {str(PACKAGE / "__init__.py")!r},
                                              submodule_search_locations=[{str(PACKAGE)!r}])
m = importlib.util.module_from_spec(spec); sys.modules["scratch"] = m; spec.loader.exec_module(m)
model = m.CharModel.for_text("hello", hidden_size=4)
model.fit("hello", steps=2, seq_len=4)
assert not [k for k, v in sys.modules.items() if v is not None and k.split(".")[0] == "torch"]
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
    for path in PACKAGE.glob("*.py"):   # and no file even mentions it in an import
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "torch" for n in names), path


def problem(cell, seed=0):
    """Random parameters (with an output layer), inputs, targets and initial state, float64."""
    rng = np.random.default_rng(seed)
    p = scratch.init_params(cell, I, H, output_size=O, seed=seed)
    p = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in p.items()}
    x = rng.standard_normal((B, T, I))
    y = rng.integers(0, O, (B, T))
    state = tuple(0.5 * rng.standard_normal((B, H)) for _ in range(scratch.CELLS[cell][3]))
    return p, x, y, state


def loss_of(p, cell, x, y, state, first=0):
    hs, _, _ = scratch.forward(p, cell, x, state)
    return scratch.output_backward(p, hs, y, first)[0]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("first", [0, 3])
def test_hand_gradients_equal_centred_finite_differences(cell, first):
    p, x, y, state = problem(cell)
    _, grads, _ = scratch.bptt(p, cell, x, y, state, first=first)
    eps = 1e-6
    for name in list(p) + ["state", "x"]:
        arrays = list(state) if name == "state" else [x] if name == "x" else [p[name]]
        for a, g in zip(arrays, grads["state"] if name == "state" else [grads[name]]):
            numeric = np.zeros_like(a)
            for idx in np.ndindex(a.shape):
                keep = a[idx]
                a[idx] = keep + eps
                up = loss_of(p, cell, x, y, state, first)
                a[idx] = keep - eps
                down = loss_of(p, cell, x, y, state, first)
                a[idx] = keep
                numeric[idx] = (up - down) / (2 * eps)
            np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-8, err_msg=f"{cell} {name}")


def torch_problem(cell, seed=0):
    """An rnnkit cell (float64, weights off their initial values), a head, inputs, targets, a state."""
    module = make_cell(RNNKIT_CELLS[cell], {}, input_size=I, hidden_size=H, seed=seed)
    g = torch.Generator().manual_seed(seed)
    head_w = torch.randn(O, H, generator=g, dtype=torch.float64, requires_grad=True)
    head_b = torch.randn(O, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(B, T, I, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, O, (B, T), generator=g)
    state = tuple((0.5 * torch.randn(B, H, generator=g, dtype=torch.float64)).requires_grad_()
                  for _ in module.state_sizes)
    return module, head_w, head_b, x, y, state


def as_numpy(module, head_w, head_b):
    p = scratch.params_from(module)
    p.update(weight_hy=head_w.detach().numpy(), bias_y=head_b.detach().numpy())
    return p


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_forward_equals_rnnkit_reference_and_gradients_equal_torch_autograd(cell):
    module, head_w, head_b, x, y, state = torch_problem(cell)
    seq, _, last = recur(module, x, state)
    logits = seq @ head_w.T + head_b
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum") / B
    loss.backward()

    p = as_numpy(module, head_w, head_b)
    np_state = tuple(s.detach().numpy() for s in state)
    hs, np_last, _ = scratch.forward(p, cell, x.detach().numpy(), np_state)
    np.testing.assert_allclose(hs, seq.detach().numpy(), rtol=1e-12, atol=1e-12)
    for a, b in zip(np_last, last):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-12, atol=1e-12)

    np_loss, grads, _ = scratch.bptt(p, cell, x.detach().numpy(), y.numpy(), np_state)
    np.testing.assert_allclose(grads["x"], x.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert np_loss == pytest.approx(float(loss.detach()), rel=1e-12)
    for name, param in module.named_parameters():
        np.testing.assert_allclose(grads[name], param.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(grads["weight_hy"], head_w.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["bias_y"], head_b.grad.numpy(), rtol=1e-10, atol=1e-12)
    for a, s in zip(grads["state"], state):
        np.testing.assert_allclose(a, s.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_truncated_bptt_with_k_equal_to_the_length_is_full_bptt(cell):
    p, x, y, state = problem(cell, seed=1)
    loss, full, last = scratch.bptt(p, cell, x, y, state)
    chunks, t_last = scratch.tbptt(p, cell, x, y, k1=T, k2=T, state=state)
    assert len(chunks) == 1 and chunks[0][0] == pytest.approx(loss, rel=1e-14)
    for k in full:
        for a, b in zip(np.atleast_1d(chunks[0][1][k]) if k != "state" else chunks[0][1][k],
                        np.atleast_1d(full[k]) if k != "state" else full[k]):
            np.testing.assert_allclose(a, b, rtol=1e-14)
    for a, b in zip(t_last, last):
        np.testing.assert_allclose(a, b, rtol=1e-14)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_untruncated_chunks_add_up_to_full_bptt(cell):
    """k2 covering the whole past: each chunk's loss backpropagates to step 0, so the chunk
    gradients sum to the full gradient; with k2 = k1 they do not (the truncation is real)."""
    p, x, y, state = problem(cell, seed=2)
    x, y = np.concatenate([x, x], 1), np.concatenate([y, y], 1)     # T = 10
    loss, full, _ = scratch.bptt(p, cell, x, y, state)
    chunks, _ = scratch.tbptt(p, cell, x, y, k1=2, k2=10, state=state)
    assert sum(c[0] for c in chunks) == pytest.approx(loss, rel=1e-12)
    for k in CELL_KEYS + ("weight_hy", "bias_y"):
        np.testing.assert_allclose(sum(c[1][k] for c in chunks), full[k], rtol=1e-9, atol=1e-12)
    short, _ = scratch.tbptt(p, cell, x, y, k1=2, k2=2, state=state)
    assert sum(c[0] for c in short) == pytest.approx(loss, rel=1e-12)   # same forward, same loss
    assert not np.allclose(sum(c[1]["weight_hh"] for c in short), full["weight_hh"], rtol=1e-3)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_truncated_window_equals_torch_autograd_from_the_detached_state(cell):
    """TBPTT(k1=2, k2=4) on 6 steps: the last chunk's gradient is torch's through steps 2..5
    from the detached state at step 2, with the loss on steps 4..5."""
    module, head_w, head_b, x, y, state = torch_problem(cell, seed=3)
    x, y = torch.cat([x, x[:, :1]], 1).detach(), torch.cat([y, y[:, :1]], 1)   # T = 6
    with torch.no_grad():
        _, _, start = recur(module, x[:, :2], state)
    seq, _, _ = recur(module, x[:, 2:], tuple(s.clone() for s in start))
    logits = seq[:, 2:] @ head_w.T + head_b
    (F.cross_entropy(logits.flatten(0, 1), y[:, 4:].flatten(), reduction="sum") / B).backward()
    p = as_numpy(module, head_w, head_b)
    chunks, _ = scratch.tbptt(p, cell, x.detach().numpy(), y.numpy(), k1=2, k2=4,
                              state=tuple(s.detach().numpy() for s in state))
    assert len(chunks) == 3
    for name, param in module.named_parameters():
        np.testing.assert_allclose(chunks[-1][1][name], param.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["Adagrad", "Adam"])
def test_optimizers_take_torch_s_steps(name):
    rng = np.random.default_rng(0)
    theta = {"w": rng.standard_normal((3, 2))}
    ref = torch.tensor(theta["w"].copy(), requires_grad=True)
    ours = getattr(scratch, name)(theta, lr=0.05)
    theirs = getattr(torch.optim, name)([ref], lr=0.05)
    for _ in range(4):
        grad = rng.standard_normal((3, 2))
        ours.step({"w": grad})
        ref.grad = torch.tensor(grad)
        theirs.step()
    np.testing.assert_allclose(theta["w"], ref.detach().numpy(), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_hello_from_h_samples_ello(cell):
    model = scratch.CharModel.for_text("hello", cell=cell, hidden_size=8)
    assert model.chars == "ehlo" and model.sample("h", 4) != "ello"     # untrained: not yet
    losses = model.fit("hello", steps=300, seq_len=4, lr=0.1)
    assert losses[-1] < 0.05 < losses[0]
    assert model.sample("h", 4) == "ello"


def test_a_real_text_is_learned_beyond_character_frequencies():
    """The Zen of Python (shipped with Python, as this.s in ROT13): after training, the loss per
    character is below the entropy of the character frequencies, the best a model without memory can do."""
    import this   # noqa: F401  (prints the poem once on import; the text is this.s)
    text = codecs.decode(sys.modules["this"].s, "rot13")
    counts = Counter(text)
    unigram = -sum(n / len(text) * math.log(n / len(text)) for n in counts.values())
    model = scratch.CharModel.for_text(text, cell="rnn", hidden_size=48, seed=0)
    losses = model.fit(text, steps=600, seq_len=25, lr=0.1)
    assert np.mean(losses[:20]) > unigram > np.mean(losses[-100:]) + 0.3, (unigram, np.mean(losses[-100:]))
    sample = model.sample("Beautiful", 60, temperature=0.5, seed=1)
    assert len(sample) == 60 and set(sample) <= set(text)
