"""Models: heads on top of the layers, and Sequential."""
from .sequential import Sequential

__all__ = ["Sequential"]
