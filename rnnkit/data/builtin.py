"""Built-in labelled text, derived from the Python standard library's own source (no download).

* ``stdlib_docstrings()``: the first paragraph of every docstring (modules,
  classes, functions) in the standard library's modules, labelled with the
  chapter of the Python Library Reference that documents the module (its table
  of contents, docs.python.org/3/library/: "Numeric and Mathematical Modules",
  "Internet Protocols and Support", ...). Real English written by the CPython
  developers, with labels fixed by their documentation, not by us.
* ``python_roles()``: Python source lines, every token tagged; a name is tagged
  with its syntactic role read from ``ast`` (FUNC, CLASS, PARAM, ATTR, MODULE,
  LOCAL, GLOBAL, BUILTIN), other tokens by kind (KW, OP, NUM, STR). The same
  name is a PARAM in one function and a LOCAL in the next: the tagger needs
  context.

The source files are parsed, never imported. The texts depend on the Python
version that runs them (the figures in benchmarks/ name it).
"""
from __future__ import annotations

import ast
import builtins
import io
import keyword
import re
import sysconfig
import tokenize
from pathlib import Path

# Library Reference chapter -> modules (top-level names; a package brings all its submodules)
CHAPTERS = {
    "text processing": "string re difflib textwrap unicodedata stringprep rlcompleter",
    "data types": "datetime calendar collections heapq bisect array weakref types copy pprint reprlib enum "
                  "graphlib zoneinfo",
    "numeric and mathematical": "numbers math cmath decimal fractions random statistics _pydecimal",
    "file and directory access": "pathlib posixpath fileinput stat filecmp tempfile glob fnmatch linecache shutil",
    "persistence, compression and file formats": "pickle copyreg shelve dbm sqlite3 gzip bz2 lzma zipfile tarfile "
                                                 "csv configparser tomllib netrc plistlib",
    "concurrent execution": "threading multiprocessing concurrent subprocess sched queue",
    "networking and interprocess communication": "asyncio socket ssl selectors signal",
    "internet data handling and markup": "email json mailbox mimetypes base64 quopri html xml",
    "internet protocols": "webbrowser wsgiref urllib http ftplib poplib imaplib smtplib uuid socketserver "
                          "xmlrpc ipaddress",
    "development and debugging tools": "typing pydoc doctest unittest bdb pdb timeit trace cProfile profile "
                                       "pstats",
    "python runtime services": "sysconfig warnings dataclasses contextlib abc atexit traceback inspect site",
    "python language services": "ast symtable token keyword tokenize tabnanny pyclbr py_compile compileall dis "
                                "pickletools",
}
ROLE_TAGS = ("FUNC", "CLASS", "PARAM", "ATTR", "MODULE", "LOCAL", "GLOBAL", "BUILTIN", "KW", "OP", "NUM", "STR")
# the source of the tagging set: modules of many styles, parsed in this order
ROLE_MODULES = ("argparse", "ast", "bisect", "calendar", "configparser", "csv", "dataclasses", "difflib",
                "enum", "fractions", "functools", "gettext", "glob", "heapq", "inspect", "ipaddress", "json/decoder",
                "json/encoder", "logging/__init__", "netrc", "numbers", "optparse", "pathlib/_local", "pprint",
                "queue", "random", "sched", "shlex", "shutil", "statistics", "string", "tabnanny", "textwrap",
                "threading", "tokenize", "traceback", "typing", "uuid", "weakref", "zipfile/__init__")


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def module_files(name: str) -> list[Path]:
    """The .py files of a top-level stdlib module or package (tests excluded)."""
    root = stdlib_dir()
    if (root / name).is_dir():
        return sorted(p for p in (root / name).rglob("*.py") if "test" not in p.relative_to(root).parts[1:]
                      and not p.name.startswith("test"))
    return [root / f"{name}.py"] if (root / f"{name}.py").is_file() else []


def first_paragraph(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n")[0].split())


def stdlib_docstrings(min_words: int = 4) -> tuple[list[str], list[str]]:
    """(texts, chapter labels), de-duplicated, in a fixed order."""
    texts, labels, seen = [], [], set()
    for chapter, modules in CHAPTERS.items():
        for module in modules.split():
            for path in module_files(module):
                try:
                    tree = ast.parse(path.read_bytes())
                except (SyntaxError, ValueError, OSError):
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                        doc = ast.get_docstring(node)
                        text = first_paragraph(doc) if doc else ""
                        if len(text.split()) >= min_words and text not in seen:
                            seen.add(text)
                            texts.append(text)
                            labels.append(chapter)
    if not texts:
        raise FileNotFoundError(f"no standard-library sources found under {stdlib_dir()}")
    return texts, labels


# ---- identifier roles -----------------------------------------------------------------------------

class Roles(ast.NodeVisitor):
    """(line, column) of a name token -> its role, by scope: parameters and locals of each function,
    the module's functions, classes and imported modules, attributes, builtins."""

    def __init__(self, tree: ast.Module):
        self.at: dict[tuple[int, int], str] = {}
        self.module_roles = {}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.module_roles[node.name] = "FUNC"
            elif isinstance(node, ast.ClassDef):
                self.module_roles[node.name] = "CLASS"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.module_roles[(a.asname or a.name).split(".")[0]] = "MODULE"
        self.scopes: list[tuple[set, set]] = []   # (parameters, locals) of the enclosing functions
        self.visit(tree)

    def role_of(self, name: str) -> str:
        for params, local in reversed(self.scopes):
            if name in params:
                return "PARAM"
            if name in local:
                return "LOCAL"
        if name in self.module_roles:
            return self.module_roles[name]
        return "BUILTIN" if hasattr(builtins, name) else "GLOBAL"

    def visit_FunctionDef(self, node):
        args = node.args
        params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        local = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for d in node.decorator_list + args.defaults + [d for d in args.kw_defaults if d is not None]:
            self.visit(d)
        for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
            if a is not None:
                self.at[(a.lineno, a.col_offset)] = "PARAM"
        self.scopes.append((params, local - params))
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Name(self, node):
        self.at[(node.lineno, node.col_offset)] = self.role_of(node.id)

    def visit_Attribute(self, node):
        self.generic_visit(node)
        self.at[(node.end_lineno, node.end_col_offset - len(node.attr))] = "ATTR"

    def visit_keyword(self, node):
        if node.arg is not None:
            self.at[(node.lineno, node.col_offset)] = "PARAM"
        self.generic_visit(node)


def tag_source(source: str) -> list[tuple[list[str], list[str]]]:
    """One (tokens, tags) per logical line of ``source`` (comments and docstring-only lines left out)."""
    roles = Roles(ast.parse(source)).at
    sentences, tokens, tags, after = [], [], [], None
    in_import = False
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if tokens and not (len(tokens) == 1 and tags[0] == "STR"):
                sentences.append((tokens, tags))
            tokens, tags, after, in_import = [], [], None, False
            continue
        if tok.type == tokenize.NAME:
            if keyword.iskeyword(tok.string) or keyword.issoftkeyword(tok.string) and tok.start not in roles:
                tag = "KW"
                in_import = in_import or tok.string in ("import", "from") and not tokens
            elif after in ("def", "class"):
                tag = "FUNC" if after == "def" else "CLASS"
            elif in_import:
                tag = "MODULE"
            else:
                tag = roles.get(tok.start, "GLOBAL")
            after = tok.string
        elif tok.type == tokenize.OP:
            tag = "OP"
        elif tok.type == tokenize.NUMBER:
            tag = "NUM"
        elif tok.type in (tokenize.STRING, getattr(tokenize, "FSTRING_START", tokenize.STRING)):
            tag = "STR"
        else:   # comments, NL, INDENT, DEDENT, f-string middles and ends
            continue
        text = tok.string if tag != "STR" else re.sub(r"\s+", " ", tok.string)[:30]
        tokens.append(text)
        tags.append(tag)
    return sentences


def python_roles() -> list[tuple[list[str], list[str]]]:
    """The tagged logical lines of ROLE_MODULES, file by file."""
    sentences = []
    for name in ROLE_MODULES:
        path = stdlib_dir() / f"{name}.py"
        if path.is_file():
            try:
                sentences += tag_source(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError, tokenize.TokenError):
                continue
    if not sentences:
        raise FileNotFoundError(f"no standard-library sources found under {stdlib_dir()}")
    return sentences
