"""Gradient flow through time: where the gradient vanishes or explodes, cell by cell.

Along one trajectory s_0, s_1, ..., s_T of a cell (s_t its whole state:
h for the RNN and GRU, (h, c) for the LSTM), with the loss read at the end
only, L = v · h_T for a fixed unit vector v, the chain rule gives

    dL/ds_t = dL/ds_T · J_T J_{T-1} ... J_{t+1},     J_t = ds_t/ds_{t-1}  (the step Jacobian)

so the gradient k steps back is a product of k Jacobians: if their singular
values stay below 1 it shrinks geometrically (vanishing), above 1 it grows
(exploding) (Bengio et al. 1994; Pascanu et al. 2013). For the tanh RNN
J_t = diag(1 - h_t²) W_hh; the LSTM's cell state adds a path with
dc_t/dc_{t-1} = diag(f_t), which stays near 1 while the forget gate is open.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..cells import CELLS, Cell
from ..errors import UserError

FALL = 1e-3   # "the gradient has vanished": its norm fell by this factor


@dataclass
class CellFlow:
    """The gradient flow of one cell along one trajectory.

    norms[k]: ||dL/ds_{T-k}|| / ||dL/ds_T||, k = 0..T (k steps back from the end).
    singular[t]: the singular values of J_{t+1} = ds_{t+1}/ds_t, largest first, t = 0..T-1.
    """
    cell: str
    norms: list[float]
    singular: list[list[float]] = field(repr=False)
    source: str = "random"

    @property
    def fall(self) -> int | None:
        """Steps back until the gradient norm fell by FALL (None: not within the trajectory)."""
        return fall_steps(self.norms)

    def summary(self) -> dict:
        top = [s[0] for s in self.singular]
        return {"cell": self.cell, "source": self.source, "steps": len(self.norms) - 1,
                "steps_to_fall_1e-3": self.fall, "norm_at_start": self.norms[-1],
                "mean_top_singular_value": sum(top) / len(top),
                "geometric_mean_top_singular_value": math.exp(sum(math.log(max(v, 1e-300)) for v in top) / len(top))}


def fall_steps(norms: list[float], factor: float = FALL) -> int | None:
    """The first k with norms[k] <= factor * norms[0], or None."""
    return next((k for k, n in enumerate(norms) if n <= factor * norms[0]), None)


def flat(state) -> torch.Tensor:
    return torch.cat(list(state), -1)


def unflat(v: torch.Tensor, cell: Cell) -> tuple:
    return tuple(v.split(list(cell.state_sizes), -1))


def gradient_flow(cell: Cell, x: torch.Tensor, name: str | None = None, seed: int = 0,
                  source: str = "random") -> CellFlow:
    """The flow of ``cell`` over one sequence x (T, I) from the zero state (float64 inside)."""
    cell = cell.double()
    x = x.double()
    states = [flat(cell.init_state(1, dtype=torch.float64)).requires_grad_()]
    for t in range(x.shape[0]):
        states.append(flat(cell.step(x[None, t], unflat(states[-1], cell), cell)))
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(cell.state_sizes[0], generator=g, dtype=torch.float64)
    loss = (states[-1][0, :cell.state_sizes[0]] * v / v.norm()).sum()
    grads = torch.autograd.grad(loss, states)
    norms = [float(gr.norm()) for gr in grads][::-1]
    norms = [n / norms[0] for n in norms]
    singular = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            def step(s, t=t):
                return flat(cell.step(x[None, t], unflat(s[None], cell), cell))[0]
            J = torch.autograd.functional.jacobian(step, states[t].detach()[0], vectorize=True)
            singular.append(torch.linalg.svdvals(J).tolist())
    return CellFlow(name or cell.kind, norms, singular, source)


def random_flow(name: str, steps: int, hidden_size: int = 32, input_size: int = 8, seed: int = 0) -> CellFlow:
    """A freshly initialised cell (rnnkit's initialisation) on inputs x_t ~ N(0, 1)."""
    if name not in CELLS:
        raise UserError(f"unknown cell {name!r}; expected one of {', '.join(sorted(CELLS))}")
    torch.manual_seed(seed)
    cell = CELLS[name](input_size, hidden_size)
    x = torch.randn(steps, input_size, generator=torch.Generator().manual_seed(seed + 1))
    return gradient_flow(cell, x, name, seed)


def checkpoint_flow(path: str, steps: int, seed: int = 0) -> CellFlow:
    """The first recurrent layer of a trained model (a checkpoint written by ``rnnkit train``).

    Inputs: rows of the model's embedding for random tokens if it has one, random one-hot
    vectors for a one-hot model (charlm without embedding, copy), else uniform values in [0, 1)
    (as the adding problem's)."""
    from ..train import load_checkpoint
    ck = load_checkpoint(path)
    model = ck.config.get("model", {})
    name = model.get("cell")
    if name not in CELLS:
        raise UserError(f"{path} does not name a known cell in its model config (got {name!r})")
    prefix = next((k[:-len("weight_ih")] for k in sorted(ck.weights) if k.endswith("cell.weight_ih")), None)
    if prefix is None:
        raise UserError(f"{path} holds no recurrent layer rnnkit can read")
    own = {k[len(prefix):]: v for k, v in ck.weights.items() if k.startswith(prefix)}
    options = {k: model[k] for k in ("proj_size", "peephole", "reset_after", "activation") if k in model}
    I, H = own["weight_ih"].shape[1], model.get("hidden_size")
    cell = CELLS[name](I, H, **options)
    try:
        cell.load_state_dict(own)
    except RuntimeError as e:
        raise UserError(f"the first layer of {path} does not match a {name} cell: {str(e)[:120]}") from None
    g = torch.Generator().manual_seed(seed + 1)
    embed = ck.weights.get("embed.weight")
    if embed is not None:
        x = embed[torch.randint(0, embed.shape[0], (steps,), generator=g)]
    elif "vocab" in ck.config or model.get("embedding_dim") == 0 or "input_symbols" in model:   # one-hot inputs
        x = torch.eye(I)[torch.randint(0, I, (steps,), generator=g)]
    else:
        x = torch.rand(steps, I, generator=g)
    return gradient_flow(cell, x, name, seed, source=path)


def plot_flows(flows: list[CellFlow], path) -> bool:
    """Two panels, log scale: ||dL/ds_{T-k}|| against k, and the largest singular value of J_t."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for f in flows:
        a.semilogy(range(len(f.norms)), [max(n, 1e-300) for n in f.norms], label=f.cell)
        b.semilogy(range(1, len(f.singular) + 1), [s[0] for s in f.singular], label=f.cell)
    a.axhline(FALL, color="grey", lw=0.8, ls="--")
    a.set(xlabel="steps back from the end (k)", ylabel="||dL/ds_{T-k}|| / ||dL/ds_T||",
          title="gradient norm through time")
    b.axhline(1.0, color="grey", lw=0.8, ls="--")
    b.set(xlabel="time step t", ylabel="largest singular value of ds_t/ds_{t-1}", title="step Jacobian")
    a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def table(flows: list[CellFlow]) -> str:
    """A Markdown table: steps for the gradient to fall by 1e-3, and the Jacobians' top singular values."""
    rows = ["| cell | steps to fall by 1e-3 | gradient norm at step 0 | mean top singular value |",
            "|---|---:|---:|---:|"]
    for f in flows:
        s = f.summary()
        fall = f"> {s['steps']}" if s["steps_to_fall_1e-3"] is None else str(s["steps_to_fall_1e-3"])
        rows.append(f"| {f.cell} | {fall} | {s['norm_at_start']:.2e} | {s['mean_top_singular_value']:.3f} |")
    return "\n".join(rows)
