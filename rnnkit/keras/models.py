"""keras.models on rnnkit."""
from ..models.saving import load_model
from ..models.sequential import Sequential

__all__ = ["Sequential", "load_model"]
