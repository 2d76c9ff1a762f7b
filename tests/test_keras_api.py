"""The Keras API around the layers: return_state, summary, save / load_model, fit's options, metrics,
callbacks, label checks, optimizers, pad_sequences."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.keras import callbacks, layers as L, metrics, optimizers
from rnnkit.keras.models import Sequential, load_model
from rnnkit.keras.utils import pad_sequences, to_categorical


def test_return_state_keras_convention_and_rnnkit_convention():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3)
    out, h, c = L.LSTM(4, return_state=True)(x)   # Keras: output, h, c, each (batch, units)
    assert out.shape == h.shape == c.shape == (2, 4)
    torch.testing.assert_close(out, h)
    seq, h = L.GRU(4, return_sequences=True, return_state=True)(x)
    assert seq.shape == (2, 5, 4) and h.shape == (2, 4)
    bi = L.Bidirectional(L.LSTM(4, return_state=True))
    out, hf, cf, hb, cb = bi(x)
    assert out.shape == (2, 8) and all(t.shape == (2, 4) for t in (hf, cf, hb, cb))
    decoder = L.LSTM(4, return_sequences=True, input_size=3)   # Keras's initial_state=[h, c]
    _, h0, c0 = L.LSTM(4, return_state=True)(x)
    torch_style = rnnkit.LSTM(4, input_size=3, return_sequences=True)
    torch_style.load_state_dict(decoder.state_dict())
    torch.testing.assert_close(decoder(x, initial_state=[h0, c0]), torch_style(x, (h0[None], c0[None])))
    out, (h, c) = rnnkit.LSTM(4, return_state=True)(x)   # rnnkit's own layers: torch.nn's (out, (h_n, c_n))
    assert h.shape == (1, 2, 4)
    with pytest.raises(ValueError, match="not enough values to unpack"):
        out, h, c = rnnkit.LSTM(4, return_state=True)(x)   # what a Keras user sees with rnnkit.LSTM (docs/keras.md)


def small_model():
    torch.manual_seed(0)
    return Sequential([L.Input(shape=(None,), dtype="int32"), L.Embedding(30, 8, mask_zero=True),
                       L.Bidirectional(L.LSTM(6, return_sequences=True)), L.SpatialDropout1D(0.1),
                       L.GRU(5),
                       L.RepeatVector(3), L.SimpleRNN(4, return_sequences=True),
                       L.TimeDistributed(L.Dense(2, activation="softmax")), L.Flatten(), L.Activation("relu"),
                       L.Dropout(0.2), L.Dense(1, activation="sigmoid")])


def test_summary_lists_layers_shapes_and_parameters():
    model = small_model()
    text = model.summary(print_fn=None)
    assert "embedding (Embedding)" in text and "(None, None, 8)" in text and "(None, 3, 2)" in text
    assert "repeat_vector (RepeatVector)" in text and "(None, 6)" in text
    assert f"Total params: {sum(p.numel() for p in model.parameters()):,}" in text
    with pytest.raises(ValueError, match="not been built"):
        Sequential([L.Dense(2)]).summary()


SCRIPT = """
import sys, numpy as np, rnnkit
model = rnnkit.load_model(sys.argv[1])
x = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict(x))
print(model.compiled.loss_name, model.compiled.metric_names)
"""


def test_save_and_load_model_in_a_fresh_process_predicts_identically(tmp_path):
    model = small_model()
    model.compile(optimizer=optimizers.RMSprop(learning_rate=1e-3), loss="binary_crossentropy", metrics=["acc"])
    x = np.random.default_rng(0).integers(0, 30, size=(16, 7))
    model.fit(x, np.arange(16) % 2, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    (tmp_path / "run.py").write_text(SCRIPT)
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "model.keras"),
                           str(tmp_path / "x.npy"), str(tmp_path / "y.npy")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "binary_crossentropy"
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model.predict(x))
    raw = (tmp_path / "model.keras").read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert "keras_model" in header["__metadata__"]["rnnkit"]   # safetensors with a JSON header, no pickle


def test_a_model_that_cannot_be_saved_says_which_layer(tmp_path):
    class Mine(torch.nn.Module):
        def forward(self, x):
            return x
    with pytest.raises(ValueError, match="cannot save Mine"):
        Sequential([L.Dense(2, input_shape=(3,)), Mine()]).save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="callable activation"):
        Sequential([L.Dense(2, activation=torch.tanh, input_shape=(3,))]).save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


def test_state_dict_loads_into_a_freshly_built_lazy_model():
    trained = small_model()
    fresh = Sequential([L.Embedding(30, 8, mask_zero=True), L.Bidirectional(L.LSTM(6, return_sequences=True)),
                        L.SpatialDropout1D(0.1), L.GRU(5), L.RepeatVector(3), L.SimpleRNN(4, return_sequences=True),
                        L.TimeDistributed(L.Dense(2, activation="softmax")), L.Flatten(), L.Activation("relu"),
                        L.Dropout(0.2), L.Dense(1, activation="sigmoid")])
    fresh.load_state_dict(_shift(trained.state_dict()))
    x = torch.randint(0, 30, (4, 6))
    torch.testing.assert_close(fresh.eval()(x), trained.eval()(x))


def _shift(sd):   # the trained model has an Input layer first: its layer i is the fresh model's i - 1
    return {f"{int(k.split('.', 1)[0]) - 1}.{k.split('.', 1)[1]}": v for k, v in sd.items()}


def order_data(n=256, T=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(3, 10, size=(n, T))
    pos = np.argsort(rng.random((n, T)), 1)[:, :2]
    x[np.arange(n), pos[:, 0]] = 1
    x[np.arange(n), pos[:, 1]] = 2
    return x, (pos[:, 0] < pos[:, 1]).astype(np.float32)


def test_fit_weights_callbacks_metrics_and_history(tmp_path):
    x, y = order_data()
    torch.manual_seed(0)
    model = Sequential([L.Embedding(10, 8), L.GRU(8), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=["acc", metrics.AUC(), metrics.Precision(), metrics.Recall(), "mae", "mse"])
    cbs = [callbacks.CSVLogger(tmp_path / "log.csv"),
           callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), save_best_only=True),
           callbacks.ReduceLROnPlateau(patience=1, factor=0.5), callbacks.EarlyStopping(patience=50)]
    history = model.fit(x, y, epochs=3, batch_size=32, validation_data=(x[:64], y[:64]), callbacks=cbs,
                        sample_weight=np.ones(len(y)), class_weight={0: 1.0, 1: 2.0}, shuffle=False, verbose=0)
    assert list(history.history)[:7] == ["loss", "acc", "auc", "precision", "recall", "mae", "mse"]
    assert len(history.history["val_auc"]) == 3
    # the epoch's metric is the metric of the whole validation set, not a mean of batch values
    pred = model.predict(x[:64])[:, 0]
    pos, neg = pred[y[:64] == 1], pred[y[:64] == 0]   # AUC = P(score of a positive > score of a negative)
    auc = ((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
    assert history.history["val_auc"][-1] == pytest.approx(auc, abs=1e-6)
    assert history.history["val_acc"][-1] == pytest.approx(((pred > 0.5) == y[:64]).mean())
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines[0].split(",")[0] == "epoch" and len(lines) == 4 and lines[1].startswith("0,")
    assert load_model(tmp_path / "best.keras").predict(x[:2]).shape == (2, 1)
    loss, *rest = model.evaluate(x[:64], y[:64])
    assert loss == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert rest[1] == pytest.approx(history.history["val_auc"][-1])


def test_sample_and_class_weights_are_keras_weighted_means():
    torch.manual_seed(0)
    model = Sequential([L.Dense(1, activation="sigmoid", input_shape=(3,))])
    model.compile(loss="binary_crossentropy")
    x, y = torch.randn(6, 3), torch.tensor([0.0, 1, 1, 0, 1, 0])
    p = model(x)[:, 0].detach().clamp(1e-7, 1 - 1e-7)
    per = -(y * p.log() + (1 - y) * (1 - p).log())
    w = torch.tensor([1.0, 2, 0, 1, 3, 1])
    assert model.evaluate(x, y, sample_weight=w) == pytest.approx(float((per * w).sum() / 6), rel=1e-5)
    from rnnkit.train.keras import weights_for
    torch.testing.assert_close(weights_for(y, None, {0: 0.5, 1: 4.0}), torch.where(y > 0, 4.0, 0.5))


@pytest.mark.parametrize("loss,y,match", [
    ("binary_crossentropy", [0.0, float("nan"), 1.0, 0.0], "NaN .*sample 1"),
    ("binary_crossentropy", [0.0, 2.0, 1.0, 0.0], r"labels in \[0, 1\]"),
    ("sparse_categorical_crossentropy", [0, 1, 3, 1], r"class ids must lie in \[0, 3\)"),
    ("sparse_categorical_crossentropy", [0, 1, -1, 1], r"class ids must lie in \[0, 3\)"),
    ("sparse_categorical_crossentropy", [0, 1.5, 2, 1], "integer class ids"),
    ("categorical_crossentropy", np.eye(2)[[0, 1, 1, 0]], "one-hot labels with 3 columns"),
])
def test_bad_labels_raise_rnnkits_value_error_before_training(loss, y, match):
    model = Sequential([L.Dense(3 if loss != "binary_crossentropy" else 1,
                                activation="softmax" if loss != "binary_crossentropy" else "sigmoid")])
    model.compile(loss=loss)
    with pytest.raises(rnnkit.UserError, match=match):
        model.fit(np.ones((4, 2), np.float32), np.asarray(y), epochs=1, verbose=0)
    assert issubclass(rnnkit.UserError, ValueError)


def test_keras_optimizer_defaults_and_exact_rmsprop():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = optimizers.RMSprop()([p])
    assert isinstance(opt, torch.optim.Optimizer)
    g = torch.tensor([0.3, -1e-4])
    p.grad = g.clone()
    opt.step()
    v = 0.1 * g ** 2   # Keras: v = rho v + (1 - rho) g^2, step = lr g / sqrt(v + eps)
    torch.testing.assert_close(p.detach(), torch.tensor([1.0, -2.0]) - 1e-3 * g / (v + 1e-7).sqrt())
    adam = optimizers.Adam()([torch.nn.Parameter(torch.zeros(1))])
    assert adam.defaults["eps"] == 1e-7 and adam.defaults["lr"] == 1e-3
    assert optimizers.SGD().learning_rate == 0.01
    with pytest.raises(TypeError, match="does not take 'rhoo'"):
        optimizers.RMSprop(rhoo=0.9)


def test_fit_does_not_clip_gradients_unless_asked(monkeypatch):
    import rnnkit.train.trainer as trainer
    seen = []
    real = trainer.clip_gradients
    monkeypatch.setattr(trainer, "clip_gradients", lambda params, norm, value: seen.append(norm) or real(params, norm, value))
    model = Sequential([L.Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((4, 2), np.float32), np.ones(4, np.float32), epochs=1, verbose=0)
    model.fit(np.ones((4, 2), np.float32), np.ones(4, np.float32), epochs=1, verbose=0, clip_norm=1.0)
    assert seen == [1.0]   # the trainer calls clip_gradients only when something is to be clipped


def test_fit_refuses_optimizer_settings_that_compile_owns():
    """The optimizer is compile()'s: beta_2 or lr given to fit would be dropped silently, so they are refused."""
    model = Sequential([L.Dense(1, input_shape=(2,))])
    model.compile(optimizer=optimizers.Adam(learning_rate=1e-2, beta_2=0.99), loss="mse")
    x, y = np.ones((4, 2), np.float32), np.ones(4, np.float32)
    for option in [{"beta_2": 0.5}, {"lr": 0.1}, {"optimizer": "sgd", "momentum": 0.9}]:
        with pytest.raises(ValueError, match=f"fit\\(\\) does not take {sorted(option)[0]}.*compile\\(\\)'s"):
            model.fit(x, y, epochs=1, verbose=0, **option)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.compiled.optimizer.param_groups[0]["betas"] == (0.9, 0.99)   # compile's setting trains


def test_pad_sequences_and_to_categorical_follow_keras():
    seqs = [[1, 2, 3], [4], [5, 6, 7, 8, 9]]
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=4),
                                  [[0, 1, 2, 3], [0, 0, 0, 4], [6, 7, 8, 9]])
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=4, padding="post", truncating="post", value=-1),
                                  [[1, 2, 3, -1], [4, -1, -1, -1], [5, 6, 7, 8]])
    assert pad_sequences(seqs).shape == (3, 5) and pad_sequences(seqs).dtype == np.int32
    assert pad_sequences([[[1.0, 2.0]], []], dtype="float32").shape == (2, 1, 2)
    with pytest.raises(ValueError, match="padding must be 'pre' or 'post'"):
        pad_sequences(seqs, padding="left")
    np.testing.assert_array_equal(to_categorical([0, 2], 3), [[1, 0, 0], [0, 0, 1]])


@pytest.mark.parametrize("options", [{}, {"momentum": 0.9}, {"centered": True}])
def test_keras_rmsprop_matches_kerass_update_over_steps(options):
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = optimizers.RMSprop(learning_rate=0.01, **options)([p])
    w, v, m, avg = p.detach().clone(), torch.zeros(3), torch.zeros(3), torch.zeros(3)
    for k in range(3):
        g = torch.tensor([0.3, -1e-4, 2.0]) * (k + 1)
        p.grad = g.clone()
        opt.step()
        v = 0.9 * v + 0.1 * g ** 2
        avg = 0.9 * avg + 0.1 * g
        denom = v - avg ** 2 + 1e-7 if options.get("centered") else v + 1e-7
        step = 0.01 * g / denom.sqrt()
        m = options.get("momentum", 0) * m + step
        w = w - (m if options.get("momentum") else step)
        torch.testing.assert_close(p.detach(), w)
