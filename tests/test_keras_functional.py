"""Keras's functional API (keras.Input + keras.Model(inputs, outputs)) for chains of layers."""
import numpy as np
import pytest
import torch

import keras_programs as P
from rnnkit import keras
from rnnkit.keras import layers
from rnnkit.layers import functional


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def test_the_keras_io_functional_program_learns_order(capsys):
    x_train, y_train = P.order_reviews(1000)
    x_val, y_val = P.order_reviews(300, seed=1)
    model, (loss, acc) = P.functional_bidirectional_lstm(x_train, y_train, x_val, y_val, max_features=40)
    assert acc > 0.75   # order-blind: 0.5 (the same tokens in both classes)
    assert "Bidirectional" in capsys.readouterr().out   # model.summary() printed the table
    assert [type(m).__name__ for m in model.layers] == ["Input", "Embedding", "Bidirectional", "Bidirectional",
                                                        "Dense"]


def test_the_model_computes_what_the_chain_computed():
    inputs = keras.Input(shape=(None, 3))
    gru, dense = layers.GRU(5, return_sequences=True), layers.TimeDistributed(layers.Dense(2))
    outputs = dense(gru(inputs))
    assert tuple(outputs.shape) == (1, 64, 2)            # the recording ran on a one-sample example
    model = keras.Model(inputs=inputs, outputs=outputs, name="tagger")
    x = torch.randn(4, 7, 3)
    torch.testing.assert_close(model(x), dense(gru(x)))
    assert model.name == "tagger" and model.layers[1] is gru
    assert not functional.HANDLES                        # no Input waits: the recording hooks are gone


def test_a_layer_that_returns_its_input_keeps_both_chains_apart():
    inputs = keras.Input(shape=(4,))
    a = layers.Activation("linear")(inputs)     # returns its input tensor itself
    b = layers.Dense(3)(a)
    model = keras.Model(inputs, a)
    assert [type(m).__name__ for m in model.layers] == ["Input", "Activation"]
    assert functional.chain_of(b)[-1].__class__.__name__ == "Dense"


def test_graphs_that_are_not_one_chain_are_refused():
    inputs = keras.Input(shape=(None, 3))
    x = layers.LSTM(4, return_sequences=True)(inputs)
    with pytest.raises(ValueError, match="one chain.*tensor operation"):
        keras.Model(inputs, x * 2)                       # a tensor operation between layers
    with pytest.raises(ValueError, match="one chain.*2 inputs"):
        keras.Model([inputs, keras.Input(shape=(None, 3))], x)
    other = keras.Input(shape=(None, 3))
    with pytest.raises(ValueError, match="another Input"):
        keras.Model(other, x)
    out, h, c = layers.LSTM(4, return_state=True)(x)
    with pytest.raises(ValueError, match="return_state"):
        keras.Model(inputs, h)
    shared = layers.Dense(4)
    with pytest.raises(ValueError, match="used twice"):
        keras.Model(inputs, shared(shared(x)))
    with pytest.raises(TypeError, match="functional form"):
        keras.Model()


def test_a_functional_model_saves_and_loads(tmp_path):
    inputs = keras.Input(shape=(None,), dtype="int32")
    outputs = layers.Dense(1)(layers.GRU(4)(layers.Embedding(10, 3, mask_zero=True)(inputs)))
    model = keras.Model(inputs, outputs)
    x = np.array([[0, 0, 3, 4], [1, 2, 3, 4]])
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-6)
