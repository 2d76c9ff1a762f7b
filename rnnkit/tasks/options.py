"""Task options: a dataclass whose fields carry help strings, groups and allowed values, read from the
command line and from TOML config files (``--config FILE.toml``; command-line values win). No code is executed.

Every option is checked where it is declared, whichever way it arrives (command line, config file, code,
a checkpoint's header): its type, its choices, its range (``bounds="[1, 2**20]"``; floats must be finite,
integers fit in 64 bits). ``check_out_dir`` checks an output directory before any work starts.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path

from ..errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:   # pragma: no cover
    import tomli as tomllib

GROUPS = ("data", "model", "training", "output")
INT64 = 2**63 - 1


def option(default, help: str, group: str, choices=None, metavar: str | None = None, bounds: str | None = None,
           per_run: bool = False):
    """A dataclass field for a task option.

    default, help (one line), group (one of GROUPS), choices (allowed values), bounds (an interval such as
    "[1, 2**20]" or "(0, 1)", ends included with [ ], excluded with ( ), "inf" for none), per_run (True: the
    option may differ when a run is resumed, e.g. a time budget; every other option is the checkpoint's).
    """
    assert group in GROUPS, group
    if bounds is not None:
        parse_bounds(bounds)   # fail at import on a typo
    return field(default=default, metadata={"help": help, "group": group, "choices": choices, "metavar": metavar,
                                            "bounds": bounds, "per_run": per_run})


def parse_number(text: str):
    text = text.strip()
    if "**" in text:
        base, power = text.split("**")
        return int(base) ** int(power)
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_bounds(bounds: str) -> tuple[bool, float, float, bool]:
    """"[1, 2**20)" -> (low included, low, high, high included)."""
    b = bounds.strip()
    if b[0] not in "[(" or b[-1] not in "])" or b.count(",") != 1:
        raise ValueError(f"bad bounds {bounds!r}; expected e.g. '[1, 2**20]' or '(0, 1)'")
    low, high = b[1:-1].split(",")
    return b[0] == "[", parse_number(low), parse_number(high), b[-1] == "]"


def check_bounds(name: str, value, bounds: str | None, where: str = "") -> None:
    """UserError unless ``value`` is finite (floats), fits in 64 bits (ints) and lies in ``bounds``."""
    where = f" {where}" if where else ""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"option {name}{where} must be a finite number, got {value}")
    if bounds is None:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64:
            raise UserError(f"option {name}{where} must fit in 64 bits, got {value}")
        return
    low_in, low, high, high_in = parse_bounds(bounds)
    inside = (value >= low if low_in else value > low) and (value <= high if high_in else value < high)
    if not inside:
        kind = "an integer" if isinstance(value, int) else "a number"
        raise UserError(f"option {name}{where} must be {kind} in {bounds}, got {value}")


def check_field(f, value, kind, where: str = "") -> None:
    """One declared option: type, choices, bounds (None passes for an optional option)."""
    if value is None and f.default is None:
        return
    check_value(f.name, value, kind, where or "")
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise UserError(f"option {f.name}{' ' + where if where else ''} must be one of {list(choices)}, "
                        f"got {value!r}")
    if typing.get_origin(kind) is not list and kind is not bool and kind is not str:
        check_bounds(f.name, value, f.metadata.get("bounds"), where)


def validate(obj, where: str = "") -> None:
    """Check every declared option of a task's Options instance (call it first in ``__post_init__``)."""
    types_ = option_types(type(obj))
    for f in fields(obj):
        check_field(f, getattr(obj, f.name), types_[f.name], where)


def check_declared(cls, values: dict, where: str) -> None:
    """Check the entries of ``values`` (e.g. a model config read from a checkpoint's header) that ``cls``
    declares, with the same declarations as the command line. Unknown keys are left to the caller."""
    types_ = option_types(cls)
    for f in fields(cls):
        if f.name in values:
            check_field(f, values[f.name], types_[f.name], where)


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
        notes = ([] if f.default is None else [f"default: {f.default}"]) + (
            [f"in {meta['bounds']}"] if meta.get("bounds") else [])
        default = f" ({'; '.join(notes)})" if notes else ""
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
    except OSError as e:
        raise UserError(f"cannot read config file {path}: {e.strerror or e}") from None
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
    where = f"{where} " if where else ""
    if typing.get_origin(kind) is list:
        item = typing.get_args(kind)[0]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, item) for v in value):   # a tuple default too
            raise UserError(f"option {name} {where}must be a list of {item.__name__}, got {value!r}")
        return
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise UserError(f"option {name} {where}must be {kind.__name__}, got {value!r}")


def parse_options(cls, argv: list[str], prog: str, description: str):
    """An instance of ``cls`` from defaults, then ``--config FILE.toml``, then the command line."""
    parser = Parser(prog=prog, description=description)
    parser.add_argument("--config", metavar="FILE.toml", help="read options from a TOML file (command line wins)")
    add_options(parser, cls)
    args = vars(parser.parse_args(argv))
    config = args.pop("config", None)
    values = read_config(config, cls) if config else {}
    values.update(args)
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in values]
    if missing:
        raise UserError(f"missing required option(s): {', '.join('--' + m.replace('_', '-') for m in missing)}")
    options = cls(**values)   # its __post_init__ validates (see validate)
    options.given = frozenset(values)   # what the user set, for resume_options
    return options


@dataclass
class RunOptions:
    """The output options of every task, declared once (tasks/contract.py adds the training options).

    A task's ``Options`` gives ``out`` its own default directory (contract.shared), and calls
    ``super().__post_init__()`` first (which validates every declared option)."""
    out: str = option("runs/run", "directory for checkpoints and history", "output", per_run=True)
    resume: bool = option(False, "continue from OUT/last.safetensors (with the run's own options)", "output",
                          per_run=True)
    overwrite: bool = option(False, "replace the checkpoints of a previous run in OUT", "output", per_run=True)
    quiet: bool = option(False, "no progress bar and no per-epoch lines, only the results", "output",
                         per_run=True)

    def __post_init__(self):
        validate(self)
        if self.resume and self.overwrite:
            raise UserError("options resume and overwrite contradict each other; pass one")


RUN_FILES = ("last.safetensors", "best.safetensors")


def check_out_dir(out: str, resume: bool = False, overwrite: bool = False) -> Path | None:
    """Check (and create) the output directory before any work; returns OUT/last.safetensors to resume from
    when ``resume``, else None.

    UserError when OUT is a file, lies under a file, cannot be created or written (a file is written and
    removed to find out), when ``resume`` finds nothing to resume, or when OUT holds a previous run's
    checkpoints and neither ``resume`` nor ``overwrite`` says what to do with them. Temporary files left by
    an interrupted checkpoint write are removed.
    """
    from ..train.distributed import on_lead
    return on_lead(lambda: out_dir_verdict(out, resume, overwrite))   # several processes: rank 0 checks


def out_dir_verdict(out: str, resume: bool, overwrite: bool) -> Path | None:
    path = Path(out)
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            where = "is a file" if parent == path else f"lies under {parent}, which is a file"
            raise UserError(f"output directory {out} {where}; pass --out with a directory")
    if resume:
        last = path / "last.safetensors"
        if not last.is_file():
            raise UserError(f"nothing to resume: {last} does not exist")
    elif not overwrite and any((path / name).exists() for name in RUN_FILES):
        raise UserError(f"{out} holds the checkpoints of a previous run; pass --resume to continue it, "
                        "--overwrite to replace it, or another --out")
    from ..train.checkpoint import check_writable, remove_temporaries
    check_writable(path)
    remove_temporaries(path)
    return path / "last.safetensors" if resume else None


def check_out_file(out, suffixes: tuple[str, ...], overwrite: bool, name: str = "--out",
                   replace: str = "pass --overwrite") -> Path:
    """The path of one output file (rnnkit visualize's page, rnnkit export's graph, a PNG), refused before any
    work (UserError): not ending in one of ``suffixes``, a directory, under a file, in a folder that does not
    exist or cannot be written (a file is written and removed there to find out), or an existing file without
    ``overwrite``. ``name``: how the user gave it; ``replace``: how to allow replacing a file."""
    path = Path(out)
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{name} needs a path ending in {' or '.join(suffixes)}, got {out}")
    if path.is_dir():
        raise UserError(f"{name} {out} is a directory; name the {suffixes[0]} file to write")
    folder = path.parent
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{name} {out} lies under {parent}, which is a file; name a file in a folder")
    if not folder.is_dir():
        raise UserError(f"{name} {out}: the folder {folder} does not exist")
    if path.exists() and not overwrite:
        raise UserError(f"{out} exists; choose another {name} or {replace}")
    from ..train.checkpoint import check_writable
    check_writable(folder, what=path.name)   # the writers replace the file by a rename inside this folder
    return path


def resume_options(options, stored: dict | None, where: str):
    """The options of a resumed run: the checkpoint's own (``stored``) for every option not declared
    ``per_run``; one the user set to another value is refused (UserError naming both values)."""
    if stored is None:   # a checkpoint of an older rnnkit: its model config alone is checked
        return options
    if not isinstance(stored, dict):
        raise UserError(f"checkpoint {where} has malformed options: {stored!r:.80}")
    given = getattr(options, "given", frozenset())
    keep, clash = {}, []
    for f in fields(options):
        if f.metadata.get("per_run"):
            continue
        if f.name not in stored:   # an option newer than the checkpoint: the run had its default's behaviour
            if f.name in given and f.default is not MISSING and getattr(options, f.name) != f.default:
                clash.append(f"--{f.name.replace('_', '-')} {getattr(options, f.name)!r} (the run predates the "
                             f"option: {f.default!r})")
            continue
        if f.name in given and getattr(options, f.name) != stored[f.name]:
            clash.append(f"--{f.name.replace('_', '-')} {getattr(options, f.name)!r} (the run has "
                         f"{stored[f.name]!r})")
        keep[f.name] = stored[f.name]
    if clash:
        raise UserError(f"cannot resume {where} with other options: {'; '.join(clash)}; resume without them, "
                        "or start a new run (another --out, or --overwrite)")
    check_declared(type(options), keep, f"in {where}")
    resumed = replace(options, **keep)
    resumed.given = getattr(options, "given", frozenset())
    return resumed


def check_memory(make_model, activation_floats: int, hint: str) -> int:
    """The parameter count of ``make_model()``, built on the meta device (nothing allocated); UserError when
    training it would need more memory than this machine has: 4 bytes each for the weights, gradients and two
    optimizer moments, plus ``activation_floats`` floats of activations kept for the backward pass."""
    import torch
    with torch.device("meta"):
        n = sum(p.numel() for p in make_model().parameters())
    return check_fits(n, activation_floats, hint)


def check_fits(n: int, activation_floats: int, hint: str) -> int:
    """``n`` (a parameter count) when training that many parameters and ``activation_floats`` fits in this
    machine's memory (see check_memory), else UserError."""
    need = 4 * (4 * n + activation_floats)
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):   # pragma: no cover - not POSIX
        return n
    if need > have:
        raise UserError(f"this run needs about {need / 2**30:,.1f} GiB ({n:,} parameters) and the machine has "
                        f"{have / 2**30:,.1f} GiB; {hint}")
    return n
