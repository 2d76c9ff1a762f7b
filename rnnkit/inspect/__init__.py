"""What a character model computes inside, as tensors: states, gates and predictions per character.

    from rnnkit.inspect import activations
    acts = activations("runs/charlm/best.safetensors", "print(\\"hello\\")\\n")
    acts.layers[0]["cell"]          # (T, units): the LSTM cell state after each character
    acts.layers[1]["forget gate"]   # (T, units)
    acts.top_chars[3], acts.top_probs[3]   # the 5 likeliest next characters after text[:4]
    rank_units(acts)[:5]            # the units that best follow quotes, brackets, line position, ...

Karpathy, Johnson & Fei-Fei 2015 ("Visualizing and Understanding Recurrent
Networks") looked at a character model this way. ``rnnkit visualize`` draws
the same data as one HTML page.
"""
from .activations import Activations, LayerActivations, activations
from .features import FEATURES, rank_units, saturation, text_features

__all__ = ["Activations", "LayerActivations", "activations", "FEATURES", "rank_units", "saturation",
           "text_features"]
