"""Model files and summaries: the architecture as JSON, the weights as safetensors, one file.

``model.save(path)`` writes an rnnkit checkpoint (train/checkpoint.py: safetensors
with a JSON header, written atomically) whose config holds the architecture:
each layer's class name and ``get_config()``. ``load_model(path)`` rebuilds the
layers from a fixed registry of rnnkit classes (nothing is imported by name and
nothing is unpickled) and loads the weights. Layers without a JSON form (your
own modules, callable activations) are refused at save time with their name.
"""
from __future__ import annotations

import json
import re

import torch

from .. import layers as L
from ..errors import UserError
from ..layers.keras_layers import Input
from ..layers.wrappers import Bidirectional
from .sequential import Sequential

ARCH_FORMAT = "rnnkit-keras-model"


def registry() -> dict[str, type]:
    """The classes a saved model may name: the layers rnnkit exports."""
    classes = {name: getattr(L, name) for name in L.__all__ if isinstance(getattr(L, name), type)}
    return {f"{cls.__module__}.{cls.__qualname__}": cls for cls in classes.values()}


def layer_config(layer) -> dict:
    key = f"{type(layer).__module__}.{type(layer).__qualname__}"
    if key not in registry():
        raise ValueError(f"cannot save {type(layer).__name__}: only rnnkit's layers have a JSON architecture; "
                         "save the weights with model.save_weights(path) and rebuild the model in code")
    if isinstance(layer, Bidirectional):
        return {"class": key, "config": {"merge_mode": layer.merge_mode}, "layer": layer_config(layer.forward_layer)}
    if not hasattr(layer, "get_config"):
        raise ValueError(f"cannot save {type(layer).__name__}: it has no get_config()")
    config = layer.get_config()
    try:
        json.dumps(config)
    except TypeError:
        bad = [k for k, v in config.items() if not _jsonable(v)]
        raise ValueError(f"cannot save {type(layer).__name__}: its {', '.join(bad)} (e.g. a callable activation) "
                         "has no JSON form; use a Keras name, or save_weights and rebuild in code") from None
    out = {"class": key, "config": config}
    if hasattr(layer, "layer") and isinstance(layer.layer, torch.nn.Module):   # TimeDistributed
        out["layer"] = layer_config(layer.layer)
    return out


def _jsonable(v) -> bool:
    try:
        json.dumps(v)
        return True
    except TypeError:
        return False


def layer_from_config(d: dict):
    classes = registry()
    if not isinstance(d, dict) or d.get("class") not in classes or not isinstance(d.get("config"), dict):
        raise UserError(f"the saved architecture names an unknown layer: {str(d)[:80]}")
    cls = classes[d["class"]]
    if "layer" in d:
        return cls(layer_from_config(d["layer"]), **d["config"])
    return cls(**d["config"])


def architecture(model: Sequential) -> dict:
    spec = None
    if model.input_spec is not None:
        spec = {"shape": list(model.input_spec[0]), "dtype": str(model.input_spec[1]).replace("torch.", "")}
    return {"format": ARCH_FORMAT, "version": 1, "class": "Sequential", "name": model.name,
            "layers": [layer_config(layer) for layer in model], "input_spec": spec,
            "compile": None if model.compiled is None else model.compiled.get_config()}


def save_model(model: Sequential, path) -> None:
    from ..train.checkpoint import save_checkpoint
    arch = architecture(model)   # refuses unsavable layers before anything is written
    if any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in model.parameters()) or _unbuilt(model):
        model.build()
    save_checkpoint(path, model.state_dict(), config={"keras_model": arch})


def _unbuilt(model) -> bool:
    return any(getattr(m, "input_size", 0) is None for m in model.modules())


def load_model(path, compile: bool = True) -> Sequential:
    """The model saved by ``model.save(path)``, with its weights (and its compile settings when they have a
    JSON form)."""
    from ..train.checkpoint import load_checkpoint
    ck = load_checkpoint(path)
    arch = ck.config.get("keras_model")
    if not isinstance(arch, dict) or arch.get("format") != ARCH_FORMAT:
        raise UserError(f"{path} is an rnnkit checkpoint but not a saved model (model.save); "
                        "load its weights into a model you build")
    model = Sequential([layer_from_config(d) for d in arch["layers"]], name=arch.get("name"))
    if arch.get("input_spec"):
        model.input_spec = (tuple(arch["input_spec"]["shape"]), getattr(torch, arch["input_spec"]["dtype"]))
    try:
        model.load_state_dict(ck.weights)
    except RuntimeError as e:
        raise UserError(f"{path}: the weights do not match the architecture ({str(e)[:120]})") from None
    if compile and arch.get("compile"):
        model.compile(**arch["compile"])
    return model


def save_weights(model, path) -> None:
    from ..train.checkpoint import save_checkpoint
    save_checkpoint(path, model.state_dict())


def load_weights(model, path) -> None:
    from ..train.checkpoint import load_checkpoint
    ck = load_checkpoint(path)
    try:
        model.load_state_dict(ck.weights)
    except RuntimeError as e:
        raise UserError(f"{path}: the weights do not match the model ({str(e)[:120]})") from None


def snake(name: str) -> str:
    """Keras's default layer names: SimpleRNN -> simple_rnn, MaxPooling1D -> max_pooling1d."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def summary_table(model: Sequential) -> str:
    """Keras's summary: layer (type), output shape, parameters; totals below."""
    declared = model.declared_input()
    runs = [model.example(64), model.example(101)] if declared is not None and None in declared.shape \
        else [model.example()]
    shapes: list[list] = []
    for x in runs:
        seen = []
        hooks = [layer.register_forward_hook(lambda m, i, o: seen.append(o)) for layer in model]
        param = next(model.parameters(), None)
        if param is not None and x.is_floating_point():
            x = x.to(param.dtype)
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(x)
        finally:
            model.train(was)
            for h in hooks:
                h.remove()
        shapes.append(seen)

    def shape_of(outs):
        first = outs[0]
        if isinstance(first, torch.Tensor):
            dims = [tuple(o.shape) for o in outs]
            return "(None, " + ", ".join("None" if len(set(d[i] for d in dims)) > 1 else str(dims[0][i])
                                         for i in range(1, len(dims[0]))) + ")" if len(dims[0]) > 1 else "(None,)"
        return "[" + ", ".join(shape_of([o[i] for o in outs]) for i in range(len(first))) + "]"

    rows, counts = [], {}
    for i, layer in enumerate(model):
        if isinstance(layer, Input):
            continue
        base = snake(type(layer).__name__)
        name = getattr(layer, "name", None) or (f"{base}_{counts[base]}" if base in counts else base)
        counts[base] = counts.get(base, 0) + 1
        rows.append((f"{name} ({type(layer).__name__})", shape_of([s[i] for s in shapes]),
                     f"{sum(p.numel() for p in layer.parameters()):,}"))
    head = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(r[c]) for r in rows + [head]) + 2 for c in range(3)]
    line = lambda r: "".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rule = "=" * sum(widths)
    out = [f'Model: "{model.name or "sequential"}"', rule, line(head), rule]
    out += [line(r) for r in rows]
    out += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", rule]
    return "\n".join(out)
