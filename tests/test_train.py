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
    def step(batch, state):
        x, y = batch
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        acc = (logits.argmax(-1) == y).float().mean().item()
        return StepOutput(loss, state, n=y.numel(), metrics={"acc": acc})
    return step


def tokens(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 11, (n,), generator=g)


def plain_lm_step(model):
    """The README's step function: two arguments, nothing about truncation."""
    def step(batch, state):
        x, y = batch
        logits, state = model(x, state)
        return StepOutput(F.cross_entropy(logits.flatten(0, 1), y.flatten()), state, n=y.numel())
    return step


def truncated_gradient(model, x, y, k1, k2, batch_len=None):
    """The gradient of TBPTT(k1, k2)'s last update on (B, T) streams whose last batch has ``batch_len`` steps,
    by hand: the last chunk's loss, backpropagated through the k2 - k1 steps before it (k2 > k1), or in
    pieces of k2 steps (k2 < k1)."""
    T = x.shape[1]
    L = batch_len or T
    c0 = T - L + (L - 1) // k1 * k1              # where the last chunk starts
    start = max(0, c0 - max(k2 - k1, 0))         # where the gradient may start
    with torch.no_grad():
        _, state = model(x[:, :start]) if start else (None, None)
    model.zero_grad()
    if start < c0:   # the prefix, with gradients
        _, state = model(x[:, start:c0], state)
    total = 0
    for p0 in range(c0, T, min(k1, k2)):          # pieces (one piece when k2 >= k1)
        p1 = min(p0 + min(k1, k2), T)
        logits, state = model(x[:, p0:p1], state)
        total = total + F.cross_entropy(logits.flatten(0, 1), y[:, p0:p1].flatten(), reduction="sum")
        if k2 < k1:
            state = tuple(s.detach() for s in state)
    (total / y[:, c0:].numel()).backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("k1,k2", [(12, 12), (4, 4), (4, 8), (2, 6), (4, 6), (5, 8), (3, 20), (6, 2), (5, 3),
                                   (12, 1), (1, 1)])
def test_tbptt_gradient_is_the_truncated_window_gradient(k1, k2):
    # lr = 0: parameters never move, and the gradients left behind are the last update's
    torch.manual_seed(0)
    model = TinyLM().double()
    x, y = torch.randint(0, 11, (3, 12)), torch.randint(0, 11, (3, 12))
    trainer = Trainer(model, plain_lm_step(model), TrainConfig(epochs=1, tbptt=(k1, k2), optimizer="sgd", lr=0.0,
                                                               clip_norm=None, verbose=0, seed=None))
    trainer.fit([(x, y)])
    got = [p.grad.clone() for p in model.parameters()]
    assert trainer.global_step == math.ceil(12 / k1)
    for g, want in zip(got, truncated_gradient(model, x, y, k1, k2)):
        torch.testing.assert_close(g, want)


@pytest.mark.parametrize("k1,k2", [(4, 8), (3, 5), (8, 4), (5, 5)])
def test_tbptt_prefix_reaches_across_carried_batches(k1, k2):
    """Stateful streams: the window before a chunk may lie in the previous batch; k2 steps back either way."""
    torch.manual_seed(0)
    model = TinyLM().double()
    data = StreamBatches(tokens(2 * 3 * 10 + 1), batch_size=3, seq_len=10)   # two batches of (3, 10)
    trainer = Trainer(model, plain_lm_step(model), TrainConfig(epochs=1, tbptt=(k1, k2), stateful=True,
                                                               optimizer="sgd", lr=0.0, clip_norm=None, verbose=0))
    trainer.fit(data)
    x, y = data.streams()
    for g, want in zip([p.grad.clone() for p in model.parameters()], truncated_gradient(model, x, y, k1, k2, 10)):
        torch.testing.assert_close(g, want)


def test_tbptt_k_equal_length_equals_full_bptt_for_the_plain_step():
    torch.manual_seed(0)
    model = TinyLM().double()
    x, y = torch.randint(0, 11, (3, 10)), torch.randint(0, 11, (3, 10))
    Trainer(model, plain_lm_step(model), TrainConfig(epochs=1, tbptt=(10, 10), optimizer="sgd", lr=0.0,
                                                     clip_norm=None, verbose=0, seed=None)).fit([(x, y)])
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    F.cross_entropy(model(x)[0].flatten(0, 1), y.flatten()).backward()
    for g, p in zip(got, model.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=0, atol=0)


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


def test_shifted_streams_start_each_pass_at_a_random_offset():
    torch.manual_seed(0)
    data = StreamBatches(torch.arange(103), batch_size=2, seq_len=5, drop_last=True, shift=True)
    assert data.length == 49 and len(data) == 9   # (103 - 5) // 2: room for every offset in [0, 5)
    offsets = []
    for _ in range(30):
        chunks = list(data)
        assert len(chunks) == len(data)
        x, y = torch.cat([c[0] for c in chunks], 1), torch.cat([c[1] for c in chunks], 1)
        offset = int(x[0, 0])
        assert torch.equal(x, torch.stack([torch.arange(offset, offset + 45), torch.arange(offset + 49, offset + 94)]))
        assert torch.equal(y, x + 1)
        offsets.append(offset)
    assert set(offsets) == set(range(5))
    assert {int(next(iter(StreamBatches(torch.arange(103), 2, 5)))[0][0, 0]) for _ in range(5)} == {0}
    with pytest.raises(ValueError, match="too few for 4 streams shifted by up to 1"):
        StreamBatches(torch.arange(5), batch_size=4, seq_len=2, shift=True)


class Interrupt:
    """Stops training cleanly after n updates, as a time budget would."""

    def __init__(self, n):
        self.n = n

    def on_step_end(self, trainer, loss):
        if trainer.global_step >= self.n:
            trainer.stop_reason = "interrupted"


def run(config, resume=None, init_seed=0, callbacks=(), shift=False):
    torch.manual_seed(init_seed)
    model = TinyLM(dropout=0.3)
    data = (StreamBatches(tokens(), 4, 8, shift=shift) if config.stateful else
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


def test_a_run_on_shifted_streams_resumes_on_the_same_offsets(tmp_path):
    """The offset of an epoch is drawn from the data generator: an interrupted epoch replays it on resume."""
    base = dict(epochs=3, seed=5, verbose=0, stateful=True, out_dir=str(tmp_path / "full"))
    full = run(TrainConfig(**base), shift=True)
    cut = dict(base, out_dir=str(tmp_path / "cut"))
    first = run(TrainConfig(**cut), callbacks=[Interrupt(13)], shift=True)
    assert first.stop_reason and 0 < first.batch < len(StreamBatches(tokens(), 4, 8, shift=True))   # mid-epoch
    resumed = run(TrainConfig(**cut), resume=str(tmp_path / "cut" / "last.safetensors"), init_seed=99, shift=True)
    assert resumed.losses == full.losses


def test_the_trainer_moves_the_offset_every_epoch_and_keeps_it_within_one():
    torch.manual_seed(0)
    model = TinyLM()
    data = StreamBatches(tokens(), 4, 8, shift=True)
    seen = []

    class Offsets:
        def on_step_end(self, trainer, loss):
            seen.append((trainer.epoch, data.offset))
    Trainer(model, lm_step(model), TrainConfig(epochs=8, stateful=True, verbose=0, seed=1),
            callbacks=[Offsets()]).fit(data)
    by_epoch = {}
    for epoch, offset in seen:
        by_epoch.setdefault(epoch, set()).add(offset)
    assert len(by_epoch) == 8 and all(len(offsets) == 1 for offsets in by_epoch.values())
    assert len(set().union(*by_epoch.values())) > 1 and all(0 <= o < 8 for o, in by_epoch.values())


def train_counting_clips(clip_norm, monkeypatch):
    """(calls of clip_gradients, losses) of one seeded epoch of TinyLM."""
    from rnnkit.train import trainer as trainer_module
    calls = []
    monkeypatch.setattr(trainer_module, "clip_gradients", lambda *a: calls.append(a) or clip_gradients(*a))
    torch.manual_seed(0)
    model = TinyLM()
    t = Trainer(model, lm_step(model), TrainConfig(epochs=1, clip_norm=clip_norm, verbose=0, seed=3))
    t.fit(StreamBatches(tokens(), 4, 8))
    return len(calls), t.losses


def test_no_gradient_norm_computed_when_nothing_is_clipped(monkeypatch):
    """Without clip_norm / clip_value (Keras's fit default) the trainer skips clip_gradients, whose global
    norm cost a reduction and a host sync every step; the updates equal those under a bound never reached."""
    skipped, losses = train_counting_clips(None, monkeypatch)
    called, bounded = train_counting_clips(1e6, monkeypatch)
    assert skipped == 0 and called == len(bounded) > 0
    assert losses == bounded


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


def test_patience_counts_evaluations_not_epochs():
    """--patience with --eval-every: the mid-epoch evaluations count, as the tasks' help says."""
    torch.manual_seed(0)
    model = TinyLM()
    data = StreamBatches(tokens(), 4, 8)   # 18 updates an epoch
    stopper = EarlyStopping("val_loss", patience=2)
    stopper.best = -1.0   # nothing can beat it
    trainer = Trainer(model, lm_step(model), TrainConfig(epochs=5, eval_every=3, verbose=0), callbacks=[stopper])
    trainer.fit(data, StreamBatches(tokens(100), 2, 8))
    assert len(data) > 6 and trainer.global_step == 6 and trainer.epoch == 0   # two evaluations inside epoch 0
    assert "for 2 evaluations" in trainer.stop_reason

    stopper = EarlyStopping("val_loss", patience=1, start_from_epoch=1)   # Keras: epoch index 0 is not watched
    stopper.best = -1.0
    trainer = Trainer(model, lm_step(model), TrainConfig(epochs=5, verbose=0), callbacks=[stopper])
    trainer.fit(data, StreamBatches(tokens(100), 2, 8))
    assert len(trainer.history.rows) == 2 and trainer.epoch == 2


def test_bad_train_options():
    for bad in [(0, 4), (4, -1), (4,), (4.0, 4), (True, 2)]:
        with pytest.raises(ValueError, match="two positive integers"):
            TrainConfig(tbptt=bad)
    with pytest.raises(ValueError, match="unknown optimizer"):
        Trainer(TinyLM(), None, TrainConfig(optimizer="adagrad"))
    with pytest.raises(ValueError, match="unknown schedule"):
        Trainer(TinyLM(), None, TrainConfig(schedule="linear")).fit([])
    for bad in [1.0, -0.1, float("nan"), True]:
        with pytest.raises(ValueError, match="beta_2 must be a number in"):
            TrainConfig(beta_2=bad)
    with pytest.raises(ValueError, match="beta_2 is a setting of adam and adamw, not of sgd"):
        TrainConfig(optimizer="sgd", beta_2=0.99)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_beta_2_reaches_the_optimizer(name):
    trainer = Trainer(TinyLM(), None, TrainConfig(optimizer=name, beta_2=0.99))
    trainer.make_optimizer()
    assert trainer.optimizer.param_groups[0]["betas"] == (0.9, 0.99)
    trainer = Trainer(TinyLM(), None, TrainConfig(optimizer=name))
    trainer.make_optimizer()
    assert trainer.optimizer.param_groups[0]["betas"] == (0.9, 0.999)   # torch's and Keras's default


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

    def step(batch, state):
        seen.append((model.training, torch.is_autocast_enabled("cpu")))
        out = inner(batch, state)
        out.loss = out.loss.float()
        return out
    data = StreamBatches(tokens(), batch_size=4, seq_len=10)
    trainer = Trainer(model, step, TrainConfig(epochs=1, max_steps=3, stateful=True, precision="bf16", verbose=0))
    trainer.fit(data, data)
    assert (True, True) in seen and (False, False) in seen          # train steps autocast, evaluation not
    assert not any(training != autocast for training, autocast in seen)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    torch.manual_seed(0)
    fp32 = TinyLM()
    reference = Trainer(fp32, lm_step(fp32), TrainConfig(epochs=1, max_steps=3, stateful=True, verbose=0))
    reference.fit(data)
    # the same run in fp32: bf16 arithmetic changes the losses, by less than bf16's precision allows
    assert trainer.losses != reference.losses
    assert trainer.losses == pytest.approx(reference.losses, rel=0.02)
    with pytest.raises(ValueError, match="unknown precision"):
        TrainConfig(precision="fp8")


def lazy_model():
    """An embedding with weights, then layers whose input size is inferred at the first call."""
    torch.manual_seed(0)
    return rnnkit.Sequential([nn.Embedding(11, 4), rnnkit.GRU(6, return_sequences=True), rnnkit.LSTM(5),
                              rnnkit.layers.Dense(3)])


def classify_step(model):
    def step(batch, state):
        x, y = batch
        return StepOutput(F.cross_entropy(model(x), y), None, n=len(y))
    return step


def changed_after_one_update(model, train):
    before = {}
    def snapshot(_trainer=None, _loss=None):   # the weights as they were when the optimizer took them
        before.update({n: p.detach().clone() for n, p in model.named_parameters() if n not in before})
    train(snapshot)
    return {n: not torch.equal(p, before[n]) for n, p in model.named_parameters()}


def test_lazily_sized_layers_train_with_trainer():
    model = lazy_model()
    x, y = torch.randint(0, 11, (8, 5)), torch.randint(0, 3, (8,))
    class Snap:
        def __init__(self, fn):
            self.on_fit_start = fn
    changed = changed_after_one_update(model, lambda snap: Trainer(
        model, classify_step(model), TrainConfig(max_steps=1, verbose=0, optimizer="sgd", lr=0.5, clip_norm=None),
        callbacks=[Snap(snap)]).fit([(x, y)]))
    assert len(changed) == 1 + 4 + 4 + 2 and all(changed.values()), changed


def test_lazily_sized_layers_train_with_sequential_fit():
    model = lazy_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = torch.randint(0, 11, (8, 5)), torch.randint(0, 3, (8,))
    class Snap:
        def __init__(self, fn):
            self.on_fit_start = fn
    changed = changed_after_one_update(model, lambda snap: model.fit(x, y, batch_size=8, verbose=0,
                                                                     callbacks=[Snap(snap)]))
    assert all(changed.values()), changed


def test_an_optimizer_made_before_the_weights_existed_is_refused():
    model = lazy_model()
    early = torch.optim.SGD(model.parameters(), lr=0.1)   # holds the embedding only
    trainer = Trainer(model, classify_step(model), TrainConfig(max_steps=1, verbose=0), optimizer=early)
    with pytest.raises(ValueError, match=r"the optimizer does not hold 1\.stack.*lazily sized.*never train"):
        trainer.fit([(torch.randint(0, 11, (8, 5)), torch.randint(0, 3, (8,)))])


def test_materialising_leaves_the_random_streams_alone():
    """Building the lazy layers from the first batch does not shift the data order of an unseeded run."""
    x, y = torch.randint(0, 11, (32, 5)), torch.randint(0, 3, (32,))
    model, seen = lazy_model(), []
    inner = classify_step(model)

    def step(batch, state):
        if model.training:
            seen.append(batch[0])
        return inner(batch, state)
    torch.manual_seed(7)
    Trainer(model, step, TrainConfig(epochs=1, verbose=0, seed=None)).fit(TensorBatches(x, y, batch_size=8, shuffle=True))
    torch.manual_seed(7)
    expected = [b[0] for b in TensorBatches(x, y, batch_size=8, shuffle=True)]
    assert len(seen) == 4 and all(torch.equal(a, b) for a, b in zip(seen, expected))


def test_a_lazy_model_wrapped_in_ddp_is_refused(tmp_path):
    """Weights created after DistributedDataParallel wrapped the model would differ across processes."""
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = nn.parallel.DistributedDataParallel(lazy_model())
        with pytest.raises(ValueError, match="have no weights yet, so DistributedDataParallel cannot"):
            Trainer(model, classify_step(model), TrainConfig(verbose=0))
        built = lazy_model()
        built(torch.randint(0, 11, (2, 5)))
        Trainer(nn.parallel.DistributedDataParallel(built), classify_step(built), TrainConfig(verbose=0))
    finally:
        dist.destroy_process_group()


def test_fit_warns_of_a_compiled_optimizer_that_misses_the_lazy_weights():
    """compile(optimizer=<a torch optimizer made before the first call>) leaves the lazy layers untrained: fit
    builds them before the Trainer sees the model, so this is a warning naming them (keras.py could refuse)."""
    model = lazy_model()
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), loss="sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match=r"the optimizer does not hold 1\.stack.*will not train"):
        model.fit(torch.randint(0, 11, (8, 5)), torch.randint(0, 3, (8,)), verbose=0)


def test_resuming_a_stateful_run_on_another_batch_size_is_refused(tmp_path):
    from rnnkit.errors import UserError
    config = TrainConfig(epochs=2, stateful=True, verbose=0, out_dir=str(tmp_path))
    torch.manual_seed(0)
    model = TinyLM()
    Trainer(model, lm_step(model), config, callbacks=[Interrupt(3)]).fit(StreamBatches(tokens(), 4, 8))
    last = str(tmp_path / "last.safetensors")
    with pytest.raises(UserError, match="trained on batches of 4 streams .* these batches have 3"):
        Trainer(model, lm_step(model), config).fit(StreamBatches(tokens(), 3, 8), resume=last)
    resumed = Trainer(model, lm_step(model), config)
    resumed.fit(StreamBatches(tokens(), 4, 8), resume=last)   # the same layout resumes
    assert resumed.global_step == 2 * len(StreamBatches(tokens(), 4, 8))


@pytest.mark.parametrize("monitor, mode, expected", [("val_acc", "auto", "max"), ("val_loss", "auto", "min"),
                                                     ("val_score", "max", "max")])
def test_plateau_schedule_and_best_follow_the_monitored_direction(tmp_path, monitor, mode, expected):
    """An accuracy that rises is an improvement for the plateau schedule too (torch's default mode is 'min')."""
    torch.manual_seed(0)
    model = TinyLM()

    def step(batch, state):
        out = lm_step(model)(batch, state)
        out.metrics["score"] = out.metrics["acc"]
        return out
    config = TrainConfig(epochs=1, verbose=0, schedule="plateau", monitor=monitor, monitor_mode=mode)
    trainer = Trainer(model, step, config)
    trainer.fit(StreamBatches(tokens(), 4, 8), StreamBatches(tokens(100), 2, 8))
    assert trainer.scheduler.mode == expected and trainer.monitor_mode == expected


def test_monitor_mode_is_checked():
    with pytest.raises(ValueError, match="monitor_mode"):
        TrainConfig(monitor_mode="up")


def test_resume_with_more_epochs_anneals_over_the_new_length(tmp_path):
    """The saved schedule keeps its step, not its length: extending a finished run must not train at the floor."""
    base = dict(seed=5, verbose=0, out_dir=str(tmp_path), schedule="cosine", lr=1e-2)
    first = run(TrainConfig(epochs=2, **base))
    per_epoch = len(first.losses) // 2
    assert first.optimizer.param_groups[0]["lr"] < 1e-4                 # annealed to the floor
    resumed = run(TrainConfig(epochs=4, **base), resume=str(tmp_path / "last.safetensors"))
    assert resumed.scheduler.lr_lambdas[0].total == 4 * per_epoch
    epoch3 = next(r for r in resumed.history.rows if r["epoch"] == 3)
    assert epoch3["lr"] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 0.75)), rel=0.05)


class Rates:
    """The learning rate of every update."""

    def __init__(self):
        self.lrs = []

    def on_step_end(self, trainer, loss):
        self.lrs.append(trainer.optimizer.param_groups[0]["lr"])


COSINE = dict(epochs=3, seed=5, verbose=0, schedule="cosine", warmup_steps=2, lr=1e-2, min_lr_ratio=0.1)


def test_a_run_stopped_by_max_steps_resumes_on_the_uninterrupted_schedule(tmp_path):
    """The first part annealed over its own max_steps (the length it was given); resumed without it, every
    update from the stop on, the first one included, has the rate of the run that was never stopped."""
    full = Rates()
    run(TrainConfig(out_dir=str(tmp_path / "full"), **COSINE), callbacks=[full])
    first = run(TrainConfig(out_dir=str(tmp_path / "cut"), max_steps=7, **COSINE))
    assert first.global_step == 7 and first.scheduler.lr_lambdas[0].total == 7
    rest = Rates()
    run(TrainConfig(out_dir=str(tmp_path / "cut"), **COSINE), resume=str(tmp_path / "cut" / "last.safetensors"),
        callbacks=[rest])
    assert len(rest.lrs) == len(full.lrs) - 7 and rest.lrs == pytest.approx(full.lrs[7:], rel=1e-12)


def test_a_run_stopped_by_its_time_budget_resumes_without_one_on_the_step_schedule(tmp_path):
    """The spent budget's share is not carried into a run without a budget (it would hold the rate at the
    floor for ever)."""
    full = Rates()
    run(TrainConfig(out_dir=str(tmp_path / "full"), **COSINE), callbacks=[full])
    first = run(TrainConfig(out_dir=str(tmp_path / "cut"), max_minutes=1e-9, **COSINE))
    assert first.stop_reason.startswith("time is up") and first.global_step == 1
    rest = Rates()
    run(TrainConfig(out_dir=str(tmp_path / "cut"), **COSINE), resume=str(tmp_path / "cut" / "last.safetensors"),
        callbacks=[rest])
    assert rest.lrs == pytest.approx(full.lrs[1:], rel=1e-12)


def test_cosine_spans_the_epochs_when_max_steps_lies_beyond_them():
    """The run ends at whichever of epochs and max_steps comes first, and the cosine with it."""
    ends = run(TrainConfig(max_steps=10**6, **COSINE))
    assert ends.scheduler.lr_lambdas[0].total == len(ends.losses)
    assert ends.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)   # lr * min_lr_ratio at the last update
