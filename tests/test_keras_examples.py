"""The Keras programs of tests/keras_programs.py run on rnnkit with only their imports changed, and learn:
each beats the best a model blind to order can do on its data."""
import numpy as np
import pytest
import torch

import keras_programs as P


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("program", [P.course_simple_rnn, P.course_lstm], ids=["simple_rnn", "lstm"])
def test_course_notes_examples_learn_order(program):
    input_train, y_train = P.one_hot_reviews(1000)
    model, history = program(input_train, y_train)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"} and len(history.history["acc"]) == 10
    assert history.history["val_acc"][-1] > 0.75   # order-blind: 0.5 (both tokens in every sequence)
    x_test, y_test = P.one_hot_reviews(300, seed=1)
    assert model.evaluate(x_test, y_test)[1] > 0.75


def test_imdb_lstm_learns_order():
    x_train, y_train = P.order_reviews(1000)
    x_test, y_test = P.order_reviews(300, seed=1)
    score, acc = P.imdb_lstm(x_train, y_train, x_test, y_test, max_features=40)
    assert acc > 0.75 and score < 0.6


def test_imdb_bidirectional_lstm_learns_order():
    x_train, y_train = P.order_reviews(1000)
    x_test, y_test = P.order_reviews(300, seed=1)
    score, acc = P.imdb_bidirectional_lstm(x_train, y_train, x_test, y_test, max_features=40)
    assert acc > 0.75


@pytest.fixture(scope="module")
def weather():
    data = P.weather()
    lookback, delay = 48, 6
    train_gen = P.generator(data, lookback, delay, 0, 4000, shuffle=True, batch_size=64)
    val_gen = P.generator(data, lookback, delay, 4001, 5000, batch_size=64)
    val_steps = (5000 - 4001 - lookback) // 64
    baseline = P.window_mean_baseline_mae(data, lookback, delay, 4001, 5000 - 64, 0, 4000)
    return data, train_gen, val_gen, val_steps, baseline


@pytest.mark.parametrize("program", [P.temperature_gru_recurrent_dropout, P.stacked_grus, P.conv1d_gru],
                         ids=["gru-recurrent-dropout", "stacked-grus", "conv1d-gru"])
def test_temperature_forecasting_beats_an_order_blind_baseline(weather, program):
    data, train_gen, val_gen, val_steps, baseline = weather
    history = program(data, train_gen, val_gen, val_steps)
    assert len(history.history["val_loss"]) == 6
    assert history.history["val_loss"][-1] < 0.6 * baseline, (history.history["val_loss"], baseline)


def test_addition_rnn_beats_every_order_blind_model():
    x, y, train_qs, train_ans, *_ = P.addition_data(4000)
    x_val, y_val, qs, ans, chars, MAXLEN = P.addition_data(500, seed=1)
    model = P.addition_rnn(x, y, x_val, y_val, chars, MAXLEN, DIGITS=2)
    pred = model.predict(x_val).argmax(-1)
    acc = float((pred == y_val.argmax(-1)).mean())
    blind = P.order_blind_accuracy(train_qs, train_ans, qs, ans)   # 0.51 on this data
    assert acc > blind + 0.05, (acc, blind)
