"""keras.losses on rnnkit: the loss classes (from_logits as Keras)."""
from ..train.keras_losses import Loss


def BinaryCrossentropy(from_logits: bool = False) -> Loss:
    return Loss("binary_crossentropy", from_logits)


def CategoricalCrossentropy(from_logits: bool = False) -> Loss:
    return Loss("categorical_crossentropy", from_logits)


def SparseCategoricalCrossentropy(from_logits: bool = False) -> Loss:
    return Loss("sparse_categorical_crossentropy", from_logits)


def MeanSquaredError() -> Loss:
    return Loss("mse")


def MeanAbsoluteError() -> Loss:
    return Loss("mae")


def Huber(delta: float = 1.0) -> Loss:
    return Loss("huber", delta=delta)


__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "MeanSquaredError",
           "MeanAbsoluteError", "Huber"]
