"""keras.models on rnnkit."""
from ..models.functional import Model
from ..models.saving import load_model
from ..models.sequential import Sequential

__all__ = ["Model", "Sequential", "load_model"]
