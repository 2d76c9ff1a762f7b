"""Checkpoints: one safetensors file holding tensors and a JSON header, written atomically.

A checkpoint file (``last.safetensors``, ``best.safetensors``) holds
* tensors: the model's weights under ``model.<name>``, and every other tensor
  (optimizer moments, RNG state, carried recurrent state) under its own prefix;
* metadata ``rnnkit`` (JSON): format version, the task's config (model config,
  vocabulary...) and the trainer's state, with tensors replaced by
  ``{"__tensor__": key}`` references.
Nothing is ever unpickled: safetensors and JSON only. A file is written to a
temporary name in the same directory, fsynced, then moved over the old one
with ``os.replace``, so an interrupted write leaves the previous file intact.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_bytes, save as save_bytes

from ..errors import UserError

FORMAT = "rnnkit-checkpoint"
VERSION = 1


def pack(obj, tensors: dict, prefix: str):
    """A JSON-able copy of a nest of dicts/lists/tuples/scalars; tensors move into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().clone().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):   # keys may be ints (optimizer state), so kept as pairs
        return {"__items__": [[k, pack(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [pack(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [pack(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint (at {prefix})")


def unpack(obj, tensors: dict):
    """The inverse of pack."""
    if isinstance(obj, list):
        return [unpack(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(unpack(v, tensors) for v in obj["__tuple__"])
        return {k: unpack(v, tensors) for k, v in obj["__items__"]}
    return obj


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)   # make the rename itself durable
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_writable(directory, what: str = "checkpoints") -> None:
    """UserError unless ``directory`` can be created and written (a file is written and removed to find out);
    ``what``: the files to be written there, for the message.

    Directories the check had to create are removed again, so a run refused later (bad data) leaves nothing;
    the writers create them when they first write."""
    path = Path(directory).absolute()
    created = [d for d in [path, *path.parents] if not d.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"cannot write {what} to {directory}: {e.strerror or e}") from None
    finally:
        for d in created:   # innermost first
            try:
                d.rmdir()
            except OSError:
                break


def remove_temporaries(directory) -> list[Path]:
    """Delete the temporary files that interrupted ``atomic_write`` calls left in ``directory``."""
    gone = []
    for tmp in Path(directory).glob(".*.tmp"):
        if tmp.is_file() and tmp.name.count(".") >= 3:   # .<name>.<random>.tmp, as atomic_write names them
            tmp.unlink(missing_ok=True)
            gone.append(tmp)
    return gone


def save_checkpoint(path, model_state: dict[str, torch.Tensor], state: dict | None = None,
                    config: dict | None = None) -> None:
    """Save weights, a nest of other state (tensors allowed) and a JSON-able task config."""
    tensors = {f"model.{k}": v.detach().cpu().clone().contiguous() for k, v in model_state.items()}
    header = {"format": FORMAT, "version": VERSION, "config": config or {},
              "weights": sorted(model_state), "state": pack(state or {}, tensors, "state")}
    atomic_write(path, save_bytes(tensors, metadata={"rnnkit": json.dumps(header)}))


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``config`` (the task's dict), ``weights`` (a state dict), ``state`` (the rest)."""
    path: str
    config: dict
    weights: dict[str, torch.Tensor]
    state: dict


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint; any missing, corrupt, truncated or foreign file raises UserError."""
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    try:
        tensors = load_bytes(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len])
        text = header.get("__metadata__", {}).get("rnnkit")
        meta = None if text is None else json.loads(text)
    except Exception as e:   # safetensors, JSON and key errors alike: the file is not what it should be
        raise UserError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {str(e)[:80]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path} is not an rnnkit checkpoint")
    if meta.get("version") != VERSION:
        raise UserError(f"checkpoint {path} has format version {meta.get('version')}; this rnnkit reads {VERSION}")
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    if sorted(weights) != meta["weights"]:
        raise UserError(f"checkpoint {path} is corrupt: its weights do not match its header")
    try:
        state = unpack(meta["state"], tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"checkpoint {path} is corrupt: bad state ({e})") from None
    return Checkpoint(path, meta["config"], weights, state)


def restore_model(model: torch.nn.Module, checkpoint: Checkpoint, assign: bool = False) -> torch.nn.Module:
    """Load the checkpoint's weights into ``model``; a different architecture raises UserError.

    assign: the model takes the checkpoint's tensors themselves (for a model built on the meta device)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(checkpoint.weights))
    extra = sorted(set(checkpoint.weights) - set(own))
    shapes = [f"{k} {tuple(checkpoint.weights[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in checkpoint.weights and checkpoint.weights[k].shape != v.shape]
    if missing or extra or shapes:
        parts = [f"missing {', '.join(missing[:3])}" if missing else "",
                 f"unexpected {', '.join(extra[:3])}" if extra else "",
                 f"shapes differ: {', '.join(shapes[:3])} (checkpoint vs model)" if shapes else ""]
        raise UserError(f"checkpoint {checkpoint.path} does not match the model: " + "; ".join(p for p in parts if p))
    model.load_state_dict(checkpoint.weights, assign=assign)
    return model
