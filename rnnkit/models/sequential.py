"""Sequential: layers in a row, with Keras's compile / fit / evaluate / predict, summary and save.

    model = rnnkit.Sequential([rnnkit.layers.Embedding(10000, 32, mask_zero=True), rnnkit.SimpleRNN(32),
                               rnnkit.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    history = model.fit(x_train, y_train, epochs=10, batch_size=128, validation_split=0.2)

It is an ordinary torch ``nn.Sequential``: call it, train it in your own loop,
save its state_dict. Sizes are inferred at the first call, or at once from an
``Input(shape=...)`` first layer or a first layer's ``input_shape``. A mask made
by ``Embedding(mask_zero=True)`` or ``Masking`` flows through the layers
(layers/masking.py) and the loss and metrics of ``fit`` ignore masked steps.
fit follows Keras's defaults (no gradient clipping unless asked); docs/keras.md
lists every difference.
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers import functional, masking
from ..layers.basic import Embedding
from ..layers.keras_layers import Input


def release_input(layer) -> None:
    """An Input placed in a model is a layer, no longer the start of a functional chain."""
    if isinstance(layer, Input):
        functional.release(layer)


class Sequential(nn.Sequential):
    """Layers applied one after another; each takes one tensor (and a mask, if it supports one)."""

    def __init__(self, layers=(), name: str | None = None):
        super().__init__(*layers)
        for layer in self:
            release_input(layer)
        self.name, self.compiled, self.input_spec = name, None, None
        if len(self) and self.declared_input() is not None:
            self.build()

    def add(self, layer: nn.Module) -> None:
        release_input(layer)
        self.append(layer)

    @property
    def layers(self) -> list[nn.Module]:
        """The layers in order (Keras's ``model.layers``)."""
        return list(self)

    def forward(self, x, mask=None):
        return self.call_with_mask(x, mask)[0]

    def call_with_mask(self, x, mask=None):
        """(output, output mask): the mask that survives to the output (None if a layer consumed it)."""
        if isinstance(x, torch.Tensor):
            self.input_spec = (tuple(x.shape[1:]), x.dtype)
        embedded = None
        for layer in self:
            options = {"embedded": embedded} if embedded is not None and getattr(layer, "takes_embedded", False) else {}
            ids = x
            x, mask = masking.call(layer, x, mask, **options)
            # an Embedding's ids go to an LSTM right after it (layers/rnn.py run_on: the native kernel reads
            # the projected table instead of projecting every step's vector)
            embedded = (layer, torch.as_tensor(ids, device=x.device)) if isinstance(layer, Embedding) else None
        return x, mask

    # ---- building and inspecting ------------------------------------------------------------------
    def declared_input(self) -> Input | None:
        """An Input for the declared input shape: the Input layer, or the first layer's input_shape."""
        first = self[0]
        if isinstance(first, Input):
            return first
        shape = getattr(first, "input_shape", None)
        if shape is None:
            return None
        integer = isinstance(first, nn.Embedding)
        return Input(shape=tuple(shape), dtype="int64" if integer else None)

    def example(self, time: int = 64) -> torch.Tensor:
        """A one-sample batch shaped like the model's input (None time steps get ``time``)."""
        declared = self.declared_input()
        if declared is not None:
            return declared.example(time)
        if self.input_spec is None:
            raise ValueError("this model has not been built yet: give the first layer input_shape=..., start "
                             "with Input(shape=...), call model.build(input_shape), or call it on a batch")
        shape, dtype = self.input_spec
        return torch.ones((1,) + shape, dtype=dtype)   # ones: a valid id, never Masking's default value

    def build(self, input_shape=None) -> None:
        """Create every lazily sized layer's weights, from ``input_shape`` (one sample's shape, or Keras's
        (None, ...) with the batch) or the declared input."""
        if input_shape is not None:   # Keras's form: (batch, ...) with None for the batch
            integer = isinstance(self[0], nn.Embedding)
            shape = tuple(64 if d is None else d for d in tuple(input_shape)[1:])
            self.input_spec = (shape, torch.int64 if integer else torch.get_default_dtype())
        x = self.example()
        param = next(self.parameters(), None)
        if param is not None and x.is_floating_point():
            x = x.to(param.dtype)
        was = self.training
        self.eval()
        with torch.no_grad():
            self(x)
        self.train(was)

    def summary(self, print_fn=print) -> str:
        """A table of the layers, their output shapes (None: any batch / any length) and parameter counts."""
        from .saving import summary_table
        text = summary_table(self)
        if print_fn is not None:
            print_fn(text)
        return text

    def count_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def reset_states(self) -> None:
        """Forget the state every stateful layer carries."""
        for m in self.modules():
            if m is not self and hasattr(m, "reset_states"):
                m.reset_states()

    # ---- saving -----------------------------------------------------------------------------------
    def save(self, path) -> None:
        """The architecture (JSON) and the weights (safetensors) in one file; rnnkit.load_model reads it."""
        from .saving import save_model
        save_model(self, path)

    def save_weights(self, path) -> None:
        from .saving import save_weights
        save_weights(self, path)

    def load_weights(self, path) -> None:
        from .saving import load_weights
        load_weights(self, path)

    # ---- Keras's training API ---------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                **kwargs) -> None:
        """optimizer: a Keras name ("rmsprop", "adam", "sgd", ... with Keras's defaults), an
        rnnkit.keras.optimizers object, a torch optimizer or a callable params -> optimizer; loss: a Keras
        name, an rnnkit.keras.losses object or loss(y_true, y_pred); metrics: Keras names or objects."""
        from ..train.keras import Compiled   # train/ sits below models/; imported only when used
        self.compiled = Compiled(optimizer, loss, metrics, loss_weights=loss_weights,
                                 weighted_metrics=weighted_metrics, **kwargs)

    def _needs_compile(self):
        if self.compiled is None:
            raise RuntimeError("call compile(optimizer, loss, metrics) before fit or evaluate")
        from ..train import keras
        return keras

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=(), validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, **train_options):
        """Train as Keras's fit; returns a History whose ``history`` maps loss, metrics and val_ metrics to
        per-epoch values. Extra keywords go to rnnkit.train.TrainConfig (clip_norm, max_minutes...)."""
        keras = self._needs_compile()
        return keras.fit(self, self.compiled, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                         callbacks=callbacks, validation_split=validation_split, validation_data=validation_data,
                         shuffle=shuffle, class_weight=class_weight, sample_weight=sample_weight,
                         initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
                         validation_steps=validation_steps, **train_options)

    def fit_generator(self, generator, steps_per_epoch=None, epochs=1, verbose=1, callbacks=(),
                      validation_data=None, validation_steps=None, **kwargs):
        """Keras 2's name for fit on a generator of (x, y) batches."""
        return self.fit(generator, None, steps_per_epoch=steps_per_epoch, epochs=epochs, verbose=verbose,
                        callbacks=callbacks, validation_data=validation_data, validation_steps=validation_steps,
                        **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, sample_weight=None, return_dict=False):
        """The loss, or [loss, metric...] when compiled with metrics (a dict with return_dict=True)."""
        return self._needs_compile().evaluate(self, self.compiled, x, y, batch_size=batch_size, verbose=verbose,
                                              sample_weight=sample_weight, return_dict=return_dict)

    def predict(self, x, batch_size=None, verbose=0):
        """The model's outputs for x (NumPy in, NumPy out)."""
        from ..train.keras import predict
        return predict(self, x, batch_size=batch_size)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=len(x))
