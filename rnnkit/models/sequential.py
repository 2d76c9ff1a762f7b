"""Sequential: layers in a row, with Keras's compile / fit / evaluate / predict.

    model = rnnkit.Sequential([rnnkit.layers.Embedding(10000, 32), rnnkit.SimpleRNN(32),
                               rnnkit.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    history = model.fit(x_train, y_train, epochs=10, batch_size=128, validation_split=0.2)

It is an ordinary torch ``nn.Sequential``: call it, train it in your own loop,
save its state_dict. Sizes are inferred at the first call. fit trains with
rnnkit.train.Trainer (gradients clipped to global norm 5 by default, unlike Keras).
"""
from __future__ import annotations

from torch import nn


class Sequential(nn.Sequential):
    """Layers applied one after another; each takes one tensor and returns one."""

    def __init__(self, layers=()):
        super().__init__(*layers)
        self.compiled = None

    def add(self, layer: nn.Module) -> None:
        self.append(layer)

    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        """optimizer: "sgd", "adam", "adamw", "rmsprop" (Keras's default rates), a torch optimizer or a
        callable params -> optimizer; loss: a Keras name or loss(y_true, y_pred); metrics: ["acc"]."""
        from ..train.keras import Compiled   # train/ sits below models/; imported only when used
        self.compiled = Compiled(optimizer, loss, metrics)

    def _needs_compile(self):
        if self.compiled is None:
            raise RuntimeError("call compile(optimizer, loss, metrics) before fit or evaluate")
        from ..train import keras
        return keras

    def fit(self, x, y, epochs=1, batch_size=32, verbose=1, callbacks=(), validation_split=0.0,
            validation_data=None, shuffle=True, **train_options):
        """Train; returns a History whose ``history`` dict holds per-epoch loss, metrics and val_ metrics.
        Extra keywords go to rnnkit.train.TrainConfig (clip_norm, max_minutes, patience...)."""
        keras = self._needs_compile()
        return keras.fit(self, self.compiled, x, y, epochs=epochs, batch_size=batch_size,
                         validation_split=validation_split, validation_data=validation_data, verbose=verbose,
                         callbacks=callbacks, shuffle=shuffle, **train_options)

    def evaluate(self, x, y, batch_size=32, verbose=0):
        """The loss, or [loss, accuracy] when compiled with metrics=["acc"]."""
        return self._needs_compile().evaluate(self, self.compiled, x, y, batch_size=batch_size, verbose=verbose)

    def predict(self, x, batch_size=32):
        """The model's outputs for x (NumPy in, NumPy out)."""
        from ..train.keras import predict
        return predict(self, x, batch_size=batch_size)
