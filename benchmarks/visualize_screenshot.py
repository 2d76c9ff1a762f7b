"""The README's picture of `rnnkit visualize`: a trained charlm's page with a unit the ranking found.

    python benchmarks/visualize_screenshot.py --checkpoint runs/charlm/best.safetensors \
        --feature "inside brackets" --out benchmarks/results/visualize-charlm

Writes OUT.html (the page), OUT.png (headless Chromium's screenshot with the
best unit for --feature selected) and OUT.json (that unit, its correlation,
and the top of the ranking for every feature).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from chromium import Browser, find_chromium  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--text", help="text to read (default: the end of the checkpoint's training text)")
    p.add_argument("--chars", type=int, default=5000)
    p.add_argument("--feature", default="auto", help="the feature whose best unit is shown (auto: the quote or "
                                                     "bracket feature with the strongest unit)")
    p.add_argument("--out", required=True, help="path prefix of the .html, .png and .json written")
    a = p.parse_args()
    page, png, meta = (Path(a.out + ext) for ext in (".html", ".png", ".json"))
    cmd = [sys.executable, "-m", "rnnkit", "visualize", "--checkpoint", a.checkpoint, "--chars", str(a.chars),
           "--out", str(page), "--overwrite"] + (["--text", a.text] if a.text else [])
    subprocess.run(cmd, check=True)
    html = page.read_text()
    data = json.loads(html.split('<script id="rnnkit-data" type="application/json">', 1)[1].split("</script>", 1)[0])
    if a.feature == "auto":
        memory = [s for s in data["ranking"] if "quotes" in s["feature"] or "bracket" in s["feature"]]
        a.feature = max(memory, key=lambda s: abs(s["r"]))["feature"] if memory else data["ranking"][0]["feature"]
    best = [s for s in data["ranking"] if s["feature"] == a.feature]
    if not best:
        raise SystemExit(f"no ranked unit for feature {a.feature!r}")
    unit = best[0]
    browser = Browser(find_chromium(), width=1400, height=1050)
    try:
        browser.open(page.resolve().as_uri())
        browser.js(f"rnnkitViz.select({unit['layer']}, {json.dumps(unit['quantity'])}, {unit['unit']})")
        browser.js(f"(() => {{ const f = document.getElementById('feature'); f.value = {json.dumps(a.feature)};"
                   " f.dispatchEvent(new Event('change')); })()")
        time.sleep(0.3)
        browser.screenshot(png)
    finally:
        browser.close()
    tops = {}
    for s in data["ranking"]:
        tops.setdefault(s["feature"], s)
    meta.write_text(json.dumps({"checkpoint": a.checkpoint, "page_info": data["info"], "shown": unit,
                                "best_unit_per_feature": tops,
                                "note": "ranking: |Pearson r| of each unit's activation with the feature over the "
                                        "page's text (rnnkit.inspect.rank_units)"}, indent=1) + "\n")
    print(json.dumps({"shown": unit, "best_unit_per_feature": tops}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
