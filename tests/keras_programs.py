"""Eight well-known Keras RNN programs, each as Keras users write it; only the imports name rnnkit.keras.

Sizes (samples, units, epochs) are scaled down so each trains in seconds on small generated
data; everything else (layers, arguments, compile, fit) is the program's own. The sources:
the course notes' SimpleRNN and LSTM examples (Chollet, Deep Learning with Python, 6.2),
keras/examples imdb_lstm.py and imdb_bidirectional_lstm.py, Chollet 6.3 (temperature
forecasting: a GRU with recurrent dropout, stacked GRUs) and 6.4 (Conv1D + GRU), and
keras/examples addition_rnn.py (RepeatVector / TimeDistributed).
"""
import numpy as np

from rnnkit import keras
from rnnkit.keras import layers
from rnnkit.keras.layers import (GRU, LSTM, Bidirectional, Conv1D, Dense, Dropout, Embedding, MaxPooling1D,
                                 RepeatVector, SimpleRNN, TimeDistributed)
from rnnkit.keras.models import Sequential
from rnnkit.keras.optimizers import RMSprop
from rnnkit.keras.preprocessing import sequence


# ---- the programs ---------------------------------------------------------------------------------
def course_simple_rnn(input_train, y_train):
    model = Sequential()
    model.add(SimpleRNN(32))
    model.add(Dense(1, activation='sigmoid'))
    model.compile(optimizer='rmsprop', loss='binary_crossentropy', metrics=['acc'])
    history = model.fit(input_train, y_train,
                        epochs=10,
                        batch_size=128,
                        validation_split=0.2, verbose=0)
    return model, history


def course_lstm(input_train, y_train):
    model = Sequential()
    model.add(LSTM(32))
    model.add(Dense(1, activation='sigmoid'))
    model.compile(optimizer='rmsprop', loss='binary_crossentropy', metrics=['acc'])
    history = model.fit(input_train, y_train,
                        epochs=10,
                        batch_size=128,
                        validation_split=0.2, verbose=0)
    return model, history


def imdb_lstm(x_train, y_train, x_test, y_test, max_features, maxlen=20, batch_size=32):
    x_train = sequence.pad_sequences(x_train, maxlen=maxlen)
    x_test = sequence.pad_sequences(x_test, maxlen=maxlen)
    model = Sequential()
    model.add(Embedding(max_features, 32))
    model.add(LSTM(32, dropout=0.2, recurrent_dropout=0.2))
    model.add(Dense(1, activation='sigmoid'))
    model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['accuracy'])
    model.fit(x_train, y_train, batch_size=batch_size, epochs=6, validation_data=(x_test, y_test), verbose=0)
    score, acc = model.evaluate(x_test, y_test, batch_size=batch_size)
    return score, acc


def imdb_bidirectional_lstm(x_train, y_train, x_test, y_test, max_features, maxlen=20, batch_size=32):
    x_train = sequence.pad_sequences(x_train, maxlen=maxlen)
    x_test = sequence.pad_sequences(x_test, maxlen=maxlen)
    model = Sequential()
    model.add(Embedding(max_features, 32, input_length=maxlen))
    model.add(Bidirectional(LSTM(16)))
    model.add(Dropout(0.5))
    model.add(Dense(1, activation='sigmoid'))
    model.compile('adam', 'binary_crossentropy', metrics=['accuracy'])
    model.fit(x_train, y_train, batch_size=batch_size, epochs=6, validation_data=[x_test, y_test], verbose=0)
    return model.evaluate(x_test, y_test)


def functional_bidirectional_lstm(x_train, y_train, x_val, y_val, max_features, maxlen=20):
    """keras.io's "Bidirectional LSTM on IMDB" (the functional API), units 64 -> 16, epochs 2 -> 6."""
    # Input for variable-length sequences of integers
    inputs = keras.Input(shape=(None,), dtype="int32")
    # Embed each integer in a 128-dimensional vector
    x = layers.Embedding(max_features, 128)(inputs)
    # Add 2 bidirectional LSTMs
    x = layers.Bidirectional(layers.LSTM(16, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(16))(x)
    # Add a classifier
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.summary()
    x_train = keras.utils.pad_sequences(x_train, maxlen=maxlen)
    x_val = keras.utils.pad_sequences(x_val, maxlen=maxlen)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=6, validation_data=(x_val, y_val), verbose=0)
    return model, model.evaluate(x_val, y_val)


def temperature_gru_recurrent_dropout(float_data, train_gen, val_gen, val_steps):
    model = Sequential()
    model.add(layers.GRU(32, dropout=0.2, recurrent_dropout=0.2, input_shape=(None, float_data.shape[-1])))
    model.add(layers.Dense(1))
    model.compile(optimizer=RMSprop(), loss='mae')
    history = model.fit_generator(train_gen, steps_per_epoch=40, epochs=6, validation_data=val_gen,
                                  validation_steps=val_steps, verbose=0)
    return history


def stacked_grus(float_data, train_gen, val_gen, val_steps):
    model = Sequential()
    model.add(layers.GRU(32, dropout=0.1, recurrent_dropout=0.5, return_sequences=True,
                         input_shape=(None, float_data.shape[-1])))
    model.add(layers.GRU(64, activation='relu', dropout=0.1, recurrent_dropout=0.5))
    model.add(layers.Dense(1))
    model.compile(optimizer=RMSprop(), loss='mae')
    history = model.fit_generator(train_gen, steps_per_epoch=40, epochs=6, validation_data=val_gen,
                                  validation_steps=val_steps, verbose=0)
    return history


def conv1d_gru(float_data, train_gen, val_gen, val_steps):
    model = Sequential()
    model.add(layers.Conv1D(32, 5, activation='relu', input_shape=(None, float_data.shape[-1])))
    model.add(layers.MaxPooling1D(3))
    model.add(layers.Conv1D(32, 5, activation='relu'))
    model.add(layers.GRU(32, dropout=0.1, recurrent_dropout=0.5))
    model.add(layers.Dense(1))
    model.compile(optimizer=RMSprop(), loss='mae')
    history = model.fit_generator(train_gen, steps_per_epoch=40, epochs=6, validation_data=val_gen,
                                  validation_steps=val_steps, verbose=0)
    return history


def addition_rnn(x, y, x_val, y_val, chars, MAXLEN, DIGITS, HIDDEN_SIZE=64, BATCH_SIZE=32, LAYERS=1, epochs=12):
    RNN = layers.LSTM
    model = Sequential()
    model.add(RNN(HIDDEN_SIZE, input_shape=(MAXLEN, len(chars))))
    model.add(layers.RepeatVector(DIGITS + 1))
    for _ in range(LAYERS):
        model.add(RNN(HIDDEN_SIZE, return_sequences=True))
    model.add(layers.TimeDistributed(layers.Dense(len(chars), activation='softmax')))
    model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])
    for iteration in range(1, epochs + 1):
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, validation_data=(x_val, y_val), verbose=0)
    return model


# ---- small generated data -------------------------------------------------------------------------
def order_reviews(n, vocab=40, seed=0, min_len=8, max_len=20):
    """Id sequences of varying length holding token 1 once and token 2 once among filler; label: 1 comes first.

    Every sequence holds the same special tokens, so a model that ignores order stays at 50%.
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(n):
        T = int(rng.integers(min_len, max_len + 1))
        s = rng.integers(3, vocab, size=T)
        i, j = rng.choice(T, size=2, replace=False)
        s[i], s[j] = 1, 2
        xs.append(list(s))
        ys.append(float(i < j))
    return xs, np.array(ys, dtype=np.float32)


def one_hot_reviews(n, T=12, vocab=8, seed=0):
    """order_reviews as (n, T, vocab) one-hot floats: the input_train of the course notes' examples."""
    xs, y = order_reviews(n, vocab=vocab, seed=seed, min_len=T, max_len=T)
    return np.eye(vocab, dtype=np.float32)[np.array(xs)], y


def weather(n_steps=6000, seed=0):
    """A multivariate series: channel 0 a daily cycle of changing amplitude and phase noise, others related."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    amp = 1 + 0.5 * np.sin(2 * np.pi * t / 1500)
    phase = np.cumsum(rng.normal(0, 0.05, n_steps))
    temp = amp * np.sin(2 * np.pi * t / 48 + phase)
    data = np.stack([temp, np.cos(2 * np.pi * t / 48 + phase), amp + 0.1 * rng.normal(size=n_steps),
                     0.3 * rng.normal(size=n_steps)], 1).astype(np.float32)
    return (data - data.mean(0)) / data.std(0)


def generator(data, lookback, delay, min_index, max_index, shuffle=False, batch_size=64, step=1, seed=0):
    """(samples, targets) batches: `lookback` steps every `step`, target channel 0 `delay` steps later."""
    rng = np.random.default_rng(seed)
    i = min_index + lookback
    while True:
        if shuffle:
            rows = rng.integers(min_index + lookback, max_index, size=batch_size)
        else:
            if i + batch_size >= max_index:
                i = min_index + lookback
            rows = np.arange(i, min(i + batch_size, max_index))
            i += len(rows)
        samples = np.stack([data[r - lookback:r:step] for r in rows])
        yield samples, data[rows + delay][:, 0]


def window_mean_baseline_mae(data, lookback, delay, lo, hi, fit_lo, fit_hi):
    """MAE of the best linear predictor from each window's per-channel mean (a model blind to order)."""
    def features(a, b):
        rows = np.arange(a + lookback, b)
        means = np.stack([data[r - lookback:r].mean(0) for r in rows])
        return np.c_[means, np.ones(len(rows))], data[rows + delay][:, 0]
    A, t = features(fit_lo, fit_hi)
    w = np.linalg.lstsq(A, t, rcond=None)[0]
    B, u = features(lo, hi)
    return float(np.abs(B @ w - u).mean())


def addition_data(n, DIGITS=2, seed=0):
    """Questions 'a+b' padded to MAXLEN, answers padded to DIGITS + 1, one-hot encoded (addition_rnn.py)."""
    rng = np.random.default_rng(seed)
    chars = "0123456789+ "
    MAXLEN = DIGITS + 1 + DIGITS
    qs, ans = [], []
    for _ in range(n):
        a, b = (int(rng.integers(0, 10 ** DIGITS)) for _ in range(2))
        qs.append(f"{a}+{b}".ljust(MAXLEN))
        ans.append(str(a + b).ljust(DIGITS + 1))
    idx = {c: i for i, c in enumerate(chars)}
    x = np.eye(len(chars), dtype=np.float32)[[[idx[c] for c in q] for q in qs]]
    y = np.eye(len(chars), dtype=np.float32)[[[idx[c] for c in a] for a in ans]]
    return x, y, qs, ans, chars, MAXLEN


def order_blind_accuracy(train_qs, train_ans, qs, ans):
    """Per-character accuracy of the best lookup that sees only each question's multiset of characters:
    fitted on the training questions (the most common answer character per multiset and position; the
    most common per position for a multiset never seen). It cannot tell 12+3 from 21+3 or 13+2."""
    from collections import Counter, defaultdict
    groups = defaultdict(list)
    for q, a in zip(train_qs, train_ans):
        groups["".join(sorted(q))].append(a)
    width = len(ans[0])
    overall = [Counter(a[k] for a in train_ans).most_common(1)[0][0] for k in range(width)]
    hits = 0
    for q, a in zip(qs, ans):
        group = groups.get("".join(sorted(q)))
        for k in range(width):
            guess = Counter(b[k] for b in group).most_common(1)[0][0] if group else overall[k]
            hits += guess == a[k]
    return hits / (len(ans) * width)
