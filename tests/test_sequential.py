"""The Keras workflow, as the textbooks write it, on a task only an order-aware model can solve."""
import numpy as np
import pytest
import torch

import rnnkit




def a_before_b(n, T=10, vocab=12, seed=0):
    """Each sequence holds token 1 (A) once and token 2 (B) once among filler; label: A comes first.

    Every sequence has the same bag of special tokens, so no bag-of-tokens model can beat chance.
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(3, vocab, size=(n, T))
    pos = np.argsort(rng.random((n, T)), 1)[:, :2]
    x[np.arange(n), pos[:, 0]] = 1
    x[np.arange(n), pos[:, 1]] = 2
    return x, (pos[:, 0] < pos[:, 1]).astype(np.float32)


class MeanOverTime(torch.nn.Module):
    def forward(self, x):
        return x.mean(1)


@pytest.fixture(scope="module")
def data():
    return a_before_b(1200), a_before_b(400, seed=1)


def test_textbook_workflow_learns_order(data):
    (x_train, y_train), (x_test, y_test) = data
    torch.manual_seed(0)
    model = rnnkit.Sequential([rnnkit.layers.Embedding(10000, 32), rnnkit.SimpleRNN(32),
                               rnnkit.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    history = model.fit(x_train, y_train, epochs=8, batch_size=128, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert all(len(v) == 8 for v in history.history.values())
    loss, acc = model.evaluate(x_test, y_test)
    assert acc > 0.85 and loss < history.history["loss"][0]
    pred = model.predict(x_test[:5])
    assert isinstance(pred, np.ndarray) and pred.shape == (5, 1) and ((pred > 0) & (pred < 1)).all()
    assert isinstance(model, torch.nn.Module) and model(torch.as_tensor(x_test[:2])).shape == (2, 1)


def test_a_bag_of_tokens_stays_at_chance(data):
    (x_train, y_train), (x_test, y_test) = data
    torch.manual_seed(0)
    model = rnnkit.Sequential([rnnkit.layers.Embedding(12, 16), MeanOverTime(),
                               rnnkit.layers.Dense(16, "relu"), rnnkit.layers.Dense(1, "sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=8, batch_size=64, verbose=0)
    assert model.evaluate(x_test, y_test)[1] < 0.62


def test_stacked_bidirectional_lstm_gru_and_other_losses(data):
    (x_train, y_train), _ = data
    torch.manual_seed(0)
    model = rnnkit.Sequential([rnnkit.layers.Embedding(12, 8), rnnkit.LSTM(8, return_sequences=True),
                               rnnkit.Bidirectional(rnnkit.GRU(8)), rnnkit.layers.Dense(2, "softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    history = model.fit(torch.as_tensor(x_train[:256]), torch.as_tensor(y_train[:256]).long(), epochs=2,
                        batch_size=64, verbose=0, validation_data=(x_train[-64:], y_train[-64:].astype(int)))
    assert len(history.history["val_acc"]) == 2
    assert isinstance(model.predict(torch.as_tensor(x_train[:3])), torch.Tensor)
    onehot = np.eye(2, dtype=np.float32)[y_train[:64].astype(int)]
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["acc"])
    pred = model.predict(x_train[:64])
    loss, acc = model.evaluate(x_train[:64], onehot)
    assert acc == pytest.approx(float((pred.argmax(-1) == onehot.argmax(-1)).mean()))
    assert loss == pytest.approx(float(-(onehot * np.log(np.clip(pred, 1e-7, 1))).sum(-1).mean()), rel=1e-5)
    model.compile(optimizer="adam", loss="mse")
    assert model.evaluate(x_train[:64], onehot) == pytest.approx(float(((pred - onehot) ** 2).mean()), rel=1e-5)


def test_keras_errors():
    model = rnnkit.Sequential([rnnkit.layers.Dense(1)])
    with pytest.raises(ValueError, match="unknown loss"):
        model.compile(loss="hinge_squared")
    with pytest.raises(ValueError, match="unknown optimizer"):
        model.compile(optimizer="adafactor", loss="mse")
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="token ids must lie in"):
        rnnkit.layers.Embedding(5, 2)(torch.tensor([[7]]))
