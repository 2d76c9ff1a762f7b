"""docs/tour.md cannot rot: every ```python block runs, in order, in one namespace per page."""
import contextlib
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = [DOCS / "tour.md"]   # pages whose every python block must run


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every fenced ```python block."""
    return [(text[:m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)]


def test_blocks_are_found():
    blocks = python_blocks("x\n```python\na = 1\n```\n```\nnot python\n```\n```python\nb = 2\n```\n")
    assert blocks == [(3, "a = 1\n"), (9, "b = 2\n")]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_snippet_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                       # a snippet that writes files writes them here
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    assert blocks, f"{page.name} has no python blocks"
    namespace = {"__name__": f"tour_{page.stem}"}
    for line, code in blocks:
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
            except Exception as e:   # name the block: the traceback shows the page and line
                raise AssertionError(f"the block at {page.name} line {line} failed: {type(e).__name__}: {e}") from e
