"""One self-contained HTML page: the data as JSON in a script tag, the page's own small script and style inline.

No network at view time: a Content-Security-Policy forbids every fetch
(``default-src 'none'``), scripts and styles are inline, and nothing names
an outside address. The same shell serves the character page and the
attention pages; ``kind`` tells the script which to draw.
"""
from __future__ import annotations

import html
import json
from importlib import resources

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"


def asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def script_json(data) -> str:
    """JSON safe inside <script>: no '</' (which could end the tag) and no raw U+2028/2029."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render(kind: str, title: str, data: dict, body: str = "") -> str:
    """The page: ``data`` for the script, ``body`` (static HTML, e.g. SVG plots) after the script's panels."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
{asset("page.css")}
</style>
</head>
<body data-kind="{html.escape(kind)}">
<h1>{html.escape(title)}</h1>
<div id="app"></div>
{body}
<script id="rnnkit-data" type="application/json">{script_json(data)}</script>
<script>
{asset("page.js")}
</script>
</body>
</html>
"""
