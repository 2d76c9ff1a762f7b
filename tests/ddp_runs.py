"""The training runs of test_ddp.py: each one is run by 2 processes (a gloo group on localhost) and by 1.

A worker writes its final weights (safetensors, rank 0) and its own checks to OUT; the test compares.
"""
from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

import rnnkit
from rnnkit.data.streams import StreamBatches
from rnnkit.models.charlm import CharLM, CharLMConfig
from rnnkit.models.regressor import RegressorConfig, SequenceRegressor
from rnnkit.train import StepOutput, TensorBatches, Trainer, TrainConfig


def regression(out_dir=None, steps=None):
    """Shuffled batches of 5 rows from 11 sequences: shards of 2 and 3 rows, and a last batch of 1 row (one
    rank has none). Two epochs, so the second order is drawn after the first epoch's updates."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(11, 6, 3, generator=g), torch.randn(11, generator=g)
    torch.manual_seed(0)
    model = SequenceRegressor(RegressorConfig(input_size=3, cell="gru", hidden_size=8))

    def step(batch, state):
        xb, yb = batch
        if model.training:
            rows.append(len(yb))
        return StepOutput(F.mse_loss(model(xb).squeeze(-1), yb), None, n=len(yb), metrics={"abs": 0.5})
    rows = []
    trainer = Trainer(model, step, TrainConfig(epochs=2, max_steps=steps, optimizer="adam", lr=0.01, clip_norm=0.5,
                                               verbose=0, out_dir=out_dir))
    trainer.fit(TensorBatches(x, y, batch_size=5, shuffle=True), TensorBatches(x[:7], y[:7], batch_size=3))
    trainer.rows_seen = rows
    return model, trainer


def streams(out_dir=None, steps=8, resume=None, dropout=0.0):
    """A character model on 5 contiguous streams (shards of 2 and 3 streams, the state carried per rank),
    chunks of 8 steps cut into TBPTT(4, 6) updates: the gradient reaches back into the previous chunk."""
    tokens = torch.randint(0, 7, (5 * 40 + 1,), generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    model = CharLM(CharLMConfig(7, "gru", 12, 1, 5, dropout=dropout))

    def step(batch, state):
        xb, yb = batch
        if model.training:
            widths.add(len(xb))
        logits, state = model(xb, state)
        return StepOutput(F.cross_entropy(logits.flatten(0, 1), yb.flatten()), state, n=yb.numel())
    trainer = Trainer(model, step, TrainConfig(epochs=3, max_steps=steps, optimizer="adamw", lr=0.02, tbptt=(4, 6),
                                               stateful=True, verbose=0, out_dir=out_dir))
    widths = set()
    trainer.fit(StreamBatches(tokens, 5, 8, drop_last=True), StreamBatches(tokens[:101], 4, 10), resume=resume)
    trainer.widths = sorted(widths)
    return model, trainer


def lazy(seed):
    """A model whose recurrent layers are sized at the first call, on a rank whose generators were seeded
    with ``seed`` (different on every rank); the Trainer leaves the generators alone (seed=None)."""
    model = rnnkit.Sequential([nn.Embedding(11, 4), rnnkit.GRU(6, return_sequences=True), rnnkit.LSTM(5),
                               rnnkit.layers.Dense(3)])
    g = torch.Generator().manual_seed(3)
    x, y = torch.randint(0, 11, (8, 5), generator=g), torch.randint(0, 3, (8,), generator=g)
    torch.manual_seed(seed)

    def step(batch, state):
        xb, yb = batch
        return StepOutput(F.cross_entropy(model(xb), yb), None, n=len(yb))
    built = {}

    class Snapshot:   # the weights as fit starts, after the lazily sized layers were built (and DDP wrapped)
        def on_fit_start(self, trainer):
            built.update({k: v.detach().clone() for k, v in model.state_dict().items()})
    Trainer(model, step, TrainConfig(max_steps=1, optimizer="sgd", lr=0.1, verbose=0, seed=None),
            callbacks=[Snapshot()]).fit([(x, y)])
    return built, model


def worker(rank: int, world: int, store: str, out: str) -> None:
    import torch.distributed as dist
    torch.set_num_threads(1)
    out = Path(out)
    try:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
        checks = {}
        model, trainer = regression()
        checks["regression_history"] = trainer.history.rows[-1]
        checks["regression_rows"] = trainer.rows_seen
        if rank == 0:
            save_file(dict(model.state_dict()), out / "regression.safetensors")
        model, trainer = streams()
        checks["streams_losses"] = trainer.losses
        checks["streams_widths"] = trainer.widths
        if rank == 0:
            save_file(dict(model.state_dict()), out / "streams.safetensors")
        # resume: 3 updates, saved mid-epoch with each rank's state and generators, then 5 more == 8 at once
        full, _ = streams(dropout=0.3)
        streams(str(out / "half"), steps=3, dropout=0.3)
        resumed, _ = streams(str(out / "half"), steps=8, resume=str(out / "half" / "last.safetensors"), dropout=0.3)
        checks["resume_max_diff"] = max((a - b).abs().max().item() for a, b in
                                        zip(full.state_dict().values(), resumed.state_dict().values()))
        built, model = lazy(seed=100 + rank)
        everyone = [None] * world
        dist.all_gather_object(everyone, ({k: v for k, v in built.items()},
                                          {k: v.detach() for k, v in model.state_dict().items()}))
        checks["lazy_built_equal"] = all(torch.equal(built[k], other[0][k]) for other in everyone for k in built)
        checks["lazy_trained_equal"] = all(torch.equal(v, other[1][k]) for other in everyone
                                           for k, v in model.state_dict().items())
        checks["lazy_keys"] = len(built)
        (out / f"checks{rank}.json").write_text(json.dumps(checks))
        dist.destroy_process_group()
    except BaseException:
        (out / f"error{rank}.txt").write_text(traceback.format_exc())
        raise


def run_two(out: Path) -> None:
    """``worker`` on 2 processes (spawned; gloo through a file store)."""
    import torch.multiprocessing as mp
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    store = out / "store"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=worker, args=(r, 2, str(store), str(out))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    errors = [(out / f"error{r}.txt") for r in range(2)]
    for e in errors:
        if e.exists():
            raise AssertionError(e.read_text())
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
