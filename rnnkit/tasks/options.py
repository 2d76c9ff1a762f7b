"""Task options: a dataclass whose fields carry help strings and groups, read from the command line
and from TOML config files (``--config FILE.toml``; command-line values win). No code is executed."""
from __future__ import annotations

import argparse
import sys
import types
import typing
from dataclasses import MISSING, field, fields
from pathlib import Path

from ..errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:   # pragma: no cover
    import tomli as tomllib

GROUPS = ("data", "model", "training", "output")


def option(default, help: str, group: str, choices=None, metavar: str | None = None):
    """A dataclass field for a task option: its default, one-line help, group and allowed values."""
    assert group in GROUPS, group
    return field(default=default, metadata={"help": help, "group": group, "choices": choices, "metavar": metavar})


def base_type(annotation):
    """int for ``int | None``, etc."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def option_types(cls) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: base_type(hints[f.name]) for f in fields(cls)}


class Parser(argparse.ArgumentParser):
    """argparse that raises UserError (one line, exit 2 in the CLI) instead of printing usage and exiting."""

    def error(self, message: str):
        raise UserError(message)


def add_options(parser: argparse.ArgumentParser, cls) -> None:
    """One ``--dashed-name`` per field, in argument groups; defaults suppressed so only given values appear."""
    types_ = option_types(cls)
    groups = {g: parser.add_argument_group(f"{g} options") for g in GROUPS}
    for f in fields(cls):
        kind, meta = types_[f.name], f.metadata
        default = "" if f.default is None else f" (default: {f.default})"
        kwargs = dict(dest=f.name, default=argparse.SUPPRESS, help=meta["help"] + default)
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is list:   # list[str]: one or more values, e.g. --text a.txt b.txt
            kwargs.update(nargs="+", type=typing.get_args(kind)[0], metavar=meta.get("metavar", "VALUE"))
        else:
            kwargs.update(type=kind, metavar=meta.get("metavar") or kind.__name__.upper())
            if meta.get("choices"):
                kwargs.update(choices=meta["choices"], metavar="{" + ",".join(map(str, meta["choices"])) + "}")
        groups[meta["group"]].add_argument("--" + f.name.replace("_", "-"), **kwargs)


def read_config(path: str, cls) -> dict:
    """Options from a TOML file: top-level keys, or keys inside [data], [model], [training], [output]."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {path}" if not p.exists() else f"config path is not a file: {path}")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"config file {path} is not valid TOML: {e}") from None
    if not raw:
        raise UserError(f"config file {path} is empty; expected option = value lines")
    flat = {}
    for key, value in raw.items():
        items = value.items() if key in GROUPS and isinstance(value, dict) else [(key, value)]
        for k, v in items:
            flat[k.replace("-", "_")] = v
    types_ = option_types(cls)
    for name, value in flat.items():
        if name not in types_:
            raise UserError(f"unknown option {name!r} in {path}; known options: {', '.join(sorted(types_))}")
        check_value(name, value, types_[name], f"in {path}")
    return flat


def check_value(name: str, value, kind: type, where: str) -> None:
    if typing.get_origin(kind) is list:
        item = typing.get_args(kind)[0]
        if not isinstance(value, list) or not all(isinstance(v, item) for v in value):
            raise UserError(f"option {name} {where} must be a list of {item.__name__}, got {value!r}")
        return
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise UserError(f"option {name} {where} must be {kind.__name__}, got {value!r}")


def parse_options(cls, argv: list[str], prog: str, description: str):
    """An instance of ``cls`` from defaults, then ``--config FILE.toml``, then the command line."""
    parser = Parser(prog=prog, description=description)
    parser.add_argument("--config", metavar="FILE.toml", help="read options from a TOML file (command line wins)")
    add_options(parser, cls)
    args = vars(parser.parse_args(argv))
    config = args.pop("config", None)
    values = read_config(config, cls) if config else {}
    values.update(args)
    for f in fields(cls):
        choices = f.metadata.get("choices")
        if f.name in values and choices and values[f.name] not in choices:
            raise UserError(f"option {f.name} must be one of {list(choices)}, got {values[f.name]!r}")
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in values]
    if missing:
        raise UserError(f"missing required option(s): {', '.join('--' + m.replace('_', '-') for m in missing)}")
    return cls(**values)


def resume_path(out: str, resume: bool) -> Path | None:
    """OUT/last.safetensors when ``resume`` is asked (UserError if it is not there), else None."""
    if not resume:
        return None
    path = Path(out) / "last.safetensors"
    if not path.is_file():
        raise UserError(f"nothing to resume: {path} does not exist")
    return path
