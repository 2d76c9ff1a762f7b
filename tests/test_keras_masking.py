"""Masks flow: a padded batch gives the same predictions, loss, gradients and metrics as the unpadded sequences."""
import numpy as np
import pytest
import torch

from rnnkit.data import pad_sequences
from rnnkit.keras import layers as L
from rnnkit.keras.models import Sequential


def sequences(n=5, vocab=20, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(1, vocab, size=int(rng.integers(2, 9))) for _ in range(n)]


def grads(model, loss):
    model.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("rnn", ["lstm", "gru-bidirectional", "simple_rnn-stacked"])
def test_padded_batch_equals_unpadded_sequences_for_a_classifier(padding, rnn):
    torch.manual_seed(0)
    recurrent = {"lstm": [L.LSTM(6)], "gru-bidirectional": [L.Bidirectional(L.GRU(5))],
                 "simple_rnn-stacked": [L.SimpleRNN(5, return_sequences=True), L.SimpleRNN(4)]}[rnn]
    model = Sequential([L.Embedding(20, 8, mask_zero=True), *recurrent, L.Dense(1, activation="sigmoid")]).double()
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    seqs = sequences()
    y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    x = torch.as_tensor(pad_sequences(seqs, maxlen=10, padding=padding))
    step = model.compiled.step_fn(model)
    padded_loss = step((x, y), None).loss
    g_padded = grads(model, padded_loss)
    alone = [model(torch.as_tensor(s)[None].long()) for s in seqs]
    torch.testing.assert_close(model.predict(x), torch.cat(alone).detach())
    alone_loss = sum(step((torch.as_tensor(s)[None].long(), y[i:i + 1]), None).loss for i, s in enumerate(seqs)) / 5
    torch.testing.assert_close(padded_loss, alone_loss)
    for a, b in zip(g_padded, grads(model, alone_loss)):
        torch.testing.assert_close(a, b)


def test_per_step_loss_and_metrics_ignore_masked_steps():
    torch.manual_seed(0)
    model = Sequential([L.Embedding(20, 8, mask_zero=True), L.GRU(6, return_sequences=True), L.Dropout(0.0),
                        L.TimeDistributed(L.Dense(4, activation="softmax"))]).double()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    seqs = sequences()
    tags = [s % 4 for s in seqs]
    x = torch.as_tensor(pad_sequences(seqs, maxlen=10))
    y = torch.as_tensor(pad_sequences(tags, maxlen=10, value=3))   # labels at padded steps must not count
    step = model.compiled.step_fn(model)
    padded_loss = step((x, y), None).loss
    g_padded = grads(model, padded_loss)
    tokens = sum(len(s) for s in seqs)   # the mean over real tokens, as Keras
    alone_loss = sum(step((torch.as_tensor(s)[None].long(), torch.as_tensor(t)[None]), None).loss * len(s)
                     for s, t in zip(seqs, tags)) / tokens
    torch.testing.assert_close(padded_loss, alone_loss)
    for a, b in zip(g_padded, grads(model, alone_loss)):
        torch.testing.assert_close(a, b)
    acc = model.compiled.results(model.compiled.train_metrics)["acc"]
    with torch.no_grad():
        hits = sum(int((model(torch.as_tensor(s)[None].long())[0].argmax(-1) == torch.as_tensor(t)).sum())
                   for s, t in zip(seqs, tags))
    assert acc == pytest.approx(hits / tokens)


def test_masking_layer_and_mask_aware_pooling():
    torch.manual_seed(0)
    model = Sequential([L.Masking(mask_value=0.0), L.Bidirectional(L.LSTM(5, return_sequences=True)),
                        L.GlobalAveragePooling1D(), L.Dense(2)]).double()
    pool_max = Sequential([L.Masking(), L.GRU(4, return_sequences=True), L.GlobalMaxPooling1D()]).double()
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 3)) + 5 for n in (4, 7, 2)]
    x = torch.as_tensor(pad_sequences(seqs, dtype="float64", maxlen=8))
    for m in (model, pool_max):
        alone = torch.cat([m(torch.as_tensor(s)[None]) for s in seqs])
        torch.testing.assert_close(m(x), alone)


def test_a_layer_that_cannot_take_a_mask_raises_instead_of_dropping_it():
    model = Sequential([L.Embedding(20, 4, mask_zero=True), L.Conv1D(3, 2), L.GlobalMaxPooling1D()])
    with pytest.raises(ValueError, match="Conv1D does not support masking"):
        model(torch.tensor([[0, 1, 2, 3]]))
    unmasked = Sequential([L.Embedding(20, 4), L.Conv1D(3, 2), L.GlobalMaxPooling1D()])
    assert unmasked(torch.tensor([[0, 1, 2, 3]])).shape == (1, 3)
