"""The training loop: TBPTT equals BPTT where it should, carried state, streams, determinism, resume, clipping."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rnnkit
from rnnkit.data import StreamBatches
from rnnkit.train import (EarlyStopping, StepOutput, TensorBatches, Trainer, TrainConfig, clip_gradients,
                          load_checkpoint)




class TinyLM(nn.Module):
    """ids (B, T) -> logits (B, T, V), with explicit state and dropout (so resume must restore the RNG)."""

    def __init__(self, vocab=11, hidden=12, dropout=0.0):
        super().__init__()
        self.emb = nn.Embedding(vocab, 6)
        self.rnn = rnnkit.LSTM(hidden, input_size=6, return_sequences=True, return_state=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        h, state = self.rnn(self.emb(x), state)
        return self.out(self.drop(h)), state


def lm_step(model):
    def step(batch, state, tail=None):
        x, y = batch
        logits, state = model(x, state)
        if tail is not None:   # TBPTT k2 > k1: the loss counts the last k1 steps only
            logits, y = logits[:, -tail:], y[:, -tail:]
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        acc = (logits.argmax(-1) == y).float().mean().item()
        return StepOutput(loss, state, n=y.numel(), metrics={"acc": acc})
    return step


def tokens(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 11, (n,), generator=g)


@pytest.mark.parametrize("k1,k2", [(12, 12), (4, 4), (4, 8), (2, 6)])
def test_tbptt_gradient_is_the_truncated_window_gradient(k1, k2):
    # lr = 0: parameters never move, and the gradients left behind are the last update's
    torch.manual_seed(0)
    model = TinyLM().double()
    x, y = torch.randint(0, 11, (3, 12)), torch.randint(0, 11, (3, 12))
    trainer = Trainer(model, lm_step(model), TrainConfig(epochs=1, tbptt=(k1, k2), optimizer="sgd", lr=0.0,
                                                         clip_norm=None, verbose=0, seed=None))
    trainer.fit([(x, y)])
    got = [p.grad.clone() for p in model.parameters()]
    assert trainer.global_step == 12 // k1

    model.zero_grad()
    start = 12 - k2   # the last window: from the detached state at start, loss on the last k1 steps
    with torch.no_grad():
        _, state = model(x[:, :start]) if start else (None, None)
    logits, _ = model(x[:, start:], state)
    F.cross_entropy(logits[:, -k1:].flatten(0, 1), y[:, -k1:].flatten()).backward()
    for g, p in zip(got, model.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_tbptt_with_k_equal_length_is_full_bptt():
    torch.manual_seed(0)
    model = TinyLM().double()
    x, y = torch.randint(0, 11, (3, 10)), torch.randint(0, 11, (3, 10))
    config = TrainConfig(epochs=1, tbptt=(10, 10), optimizer="sgd", lr=0.0, clip_norm=None, verbose=0, seed=None)
    Trainer(model, lm_step(model), config).fit([(x, y)])
    tbptt = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    F.cross_entropy(model(x)[0].flatten(0, 1), y.flatten()).backward()   # full BPTT by hand
    for g, p in zip(tbptt, model.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=0, atol=0)


def test_stream_chunks_with_carried_state_equal_one_pass():
    torch.manual_seed(0)
    model = TinyLM().double().eval()
    data = StreamBatches(tokens(203), batch_size=4, seq_len=7)
    outs, state = [], None
    for x, _ in data:
        logits, state = model(x, state)
        outs.append(logits)
    whole, whole_state = model(data.streams()[0])
    torch.testing.assert_close(torch.cat(outs, 1), whole)
    for a, b in zip(state, whole_state):
        torch.testing.assert_close(a, b)


def test_stream_layout():
    data = StreamBatches(torch.arange(23), batch_size=2, seq_len=4)
    x, y = data.streams()
    assert torch.equal(x, torch.stack([torch.arange(0, 11), torch.arange(11, 22)]))
    assert torch.equal(y, x + 1)
    chunks = list(data)
    assert len(chunks) == len(data) == 3 and chunks[-1][0].shape == (2, 3)
    assert torch.equal(torch.cat([c[0] for c in chunks], 1), x)
    for a, b in zip(chunks, chunks[1:]):   # each row continues where it stopped
        assert torch.equal(b[0][:, 0], a[0][:, -1] + 1)
    assert len(StreamBatches(torch.arange(23), 2, 4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="too few"):
        StreamBatches(torch.arange(3), batch_size=4, seq_len=2)


class Interrupt:
    """Stops training cleanly after n updates, as a time budget would."""

    def __init__(self, n):
        self.n = n

    def on_step_end(self, trainer, loss):
        if trainer.global_step >= self.n:
            trainer.stop_reason = "interrupted"


def run(config, resume=None, init_seed=0, callbacks=()):
    torch.manual_seed(init_seed)
    model = TinyLM(dropout=0.3)
    data = (StreamBatches(tokens(), 4, 8) if config.stateful else
            TensorBatches(tokens().view(-1, 10)[:, :-1], tokens().view(-1, 10)[:, 1:], batch_size=8, shuffle=True))
    val = StreamBatches(tokens(200, seed=1), 2, 8)
    trainer = Trainer(model, lm_step(model), config, callbacks=callbacks)
    trainer.fit(data, val, resume=resume)
    return trainer


def test_same_seed_same_losses_step_for_step():
    config = dict(epochs=2, tbptt=(4, 8), stateful=True, seed=3, verbose=0)
    a, b = run(TrainConfig(**config), init_seed=1), run(TrainConfig(**config), init_seed=1)
    assert a.losses == b.losses and len(a.losses) == 2 * 2 * len(StreamBatches(tokens(), 4, 8))
    c = run(TrainConfig(**{**config, "seed": 4}), init_seed=1)
    assert c.losses != a.losses


@pytest.mark.parametrize("options", [
    dict(stateful=True, tbptt=(4, 8), schedule="step", step_size=5),
    dict(stateful=False, tbptt=(3, 3), optimizer="rmsprop", schedule="cosine", warmup_steps=3, eval_every=4),
    dict(stateful=False, optimizer="sgd", momentum=0.9, schedule="plateau", patience=50),
])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, options):
    base = dict(epochs=3, seed=5, verbose=0, out_dir=str(tmp_path / "full"), **options)
    full = run(TrainConfig(**base))
    cut = dict(base, out_dir=str(tmp_path / "cut"))
    first = run(TrainConfig(**cut), callbacks=[Interrupt(13)])
    assert first.stop_reason and 13 <= len(first.losses) < len(full.losses)
    resumed = run(TrainConfig(**cut), resume=str(tmp_path / "cut" / "last.safetensors"), init_seed=99)
    assert resumed.losses == full.losses
    assert resumed.history.column("val_loss") == full.history.column("val_loss")
    assert load_checkpoint(tmp_path / "cut" / "last.safetensors").state["trainer"]["losses"] == full.losses


def test_clip_norm_bounds_the_global_gradient_norm():
    torch.manual_seed(0)
    model = TinyLM()
    norms = []

    class Probe:
        def on_step_end(self, trainer, loss):
            norms.append(math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters())))

    def step(batch, state):   # a loss scaled up so the raw gradients are far above the bound
        out = lm_step(model)(batch, state)
        return StepOutput(out.loss * 1e3, out.state, out.n)

    config = TrainConfig(epochs=1, clip_norm=0.5, verbose=0)
    Trainer(model, step, config, callbacks=[Probe()]).fit(StreamBatches(tokens(), 4, 8))
    assert norms and max(norms) <= 0.5 * (1 + 1e-5)

    model.zero_grad()
    (model(tokens()[None, :50])[0].sum() * 1e3).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    before = clip_gradients(model.parameters(), max_norm=1.0)
    after = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters()))
    assert before > 100.0 and after == pytest.approx(1.0, rel=1e-5)
    for p, g in zip(model.parameters(), grads):   # clipping by norm keeps the direction
        torch.testing.assert_close(p.grad, g / before, rtol=1e-4, atol=1e-7)
    clip_gradients(model.parameters(), max_value=0.01)
    assert max(float(p.grad.abs().max()) for p in model.parameters()) <= 0.01


def test_early_stopping_and_time_budget(tmp_path):
    torch.manual_seed(0)
    model = TinyLM()
    stopper = EarlyStopping("val_loss", patience=1)
    stopper.best = -1.0   # nothing can beat it: stop after the first evaluation
    trainer = Trainer(model, lm_step(model), TrainConfig(epochs=5, verbose=0), callbacks=[stopper])
    trainer.fit(StreamBatches(tokens(), 4, 8), StreamBatches(tokens(100), 2, 8))
    assert len(trainer.history.rows) == 1 and "early stopping" in trainer.stop_reason

    config = TrainConfig(epochs=5, max_minutes=1e-9, verbose=0, out_dir=str(tmp_path), loss_metrics=("bpc",))
    trainer = Trainer(model, lm_step(model), config)
    trainer.fit(StreamBatches(tokens(), 4, 8), StreamBatches(tokens(100), 2, 8))
    row = trainer.history.rows[-1]
    assert "time is up" in trainer.stop_reason and trainer.global_step == 1   # stopped, yet evaluated and saved
    assert row["val_bpc"] == pytest.approx(row["val_loss"] / math.log(2))
    assert {p.name for p in tmp_path.iterdir()} >= {"last.safetensors", "best.safetensors", "history.csv",
                                                    "history.json", "history.png"}


def test_bad_train_options():
    with pytest.raises(ValueError, match="multiple of k1"):
        TrainConfig(tbptt=(4, 6))
    with pytest.raises(ValueError, match="unknown optimizer"):
        Trainer(TinyLM(), None, TrainConfig(optimizer="adagrad"))
    with pytest.raises(ValueError, match="unknown schedule"):
        Trainer(TinyLM(), None, TrainConfig(schedule="linear")).fit([])


def test_cosine_spans_a_time_budget():
    """With max_minutes the cosine follows the share of the budget spent (whichever of steps and time is ahead)."""
    from rnnkit.train.optim import make_scheduler
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="time budget"):
        make_scheduler(opt, "cosine")
    sched = make_scheduler(opt, "cosine", min_lr_ratio=0.1, timed=True)
    factor = sched.lr_lambdas[0]
    assert factor(5) == pytest.approx(1.0)            # no time spent: the peak, whatever the step
    factor.time_fraction = 0.5
    assert factor(5) == pytest.approx(0.55)           # halfway down the cosine
    factor.time_fraction = 1.0
    assert factor(5) == pytest.approx(0.1)
    both = make_scheduler(opt, "cosine", total_steps=10, timed=True).lr_lambdas[0]
    both.time_fraction = 0.2
    assert both(5) == pytest.approx(0.5)              # steps are ahead of time here


def test_bf16_precision_autocasts_training_steps_only():
    torch.manual_seed(0)
    model = TinyLM()
    inner, seen = lm_step(model), []

    def step(batch, state, tail=None):
        seen.append((model.training, torch.is_autocast_enabled("cpu")))
        out = inner(batch, state, tail)
        out.loss = out.loss.float()
        return out
    data = StreamBatches(tokens(), batch_size=4, seq_len=10)
    trainer = Trainer(model, step, TrainConfig(epochs=1, max_steps=3, stateful=True, precision="bf16", verbose=0))
    trainer.fit(data, data)
    assert (True, True) in seen and (False, False) in seen          # train steps autocast, evaluation not
    assert not any(training != autocast for training, autocast in seen)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(math.isfinite(v) for v in trainer.losses)
    with pytest.raises(ValueError, match="unknown precision"):
        TrainConfig(precision="fp8")
