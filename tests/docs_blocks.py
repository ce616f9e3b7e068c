"""The code of a documentation page, read the way its tests run it.

A page is a list of fenced blocks. ``python`` blocks are code; a ``text`` block after one is
the output that code prints; ``python title="test_x.py"`` is a file the reader saves (a pytest
module, run by pytest). An HTML comment ``<!-- requires: pyhcs.aio -->`` right before a python
block says the block needs that module (or attribute): while it is missing the block and its
output are left out, so a page can show an API before it lands without the page going untested.
``## `` headings split a page into sections, for pages whose sections stand alone.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

_FENCE = re.compile(
    r"(?:<!-- requires: (?P<requires>[\w.]+) -->\n)?"
    r"^```(?P<lang>python|text)(?: title=\"(?P<title>[^\"]+)\")?\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


@dataclass
class Block:
    lang: str
    body: str
    title: str | None = None
    requires: str | None = None


@dataclass
class Section:
    heading: str
    blocks: list[Block] = field(default_factory=list)

    def requirements(self) -> set[str]:
        return {b.requires for b in self.blocks if b.requires}

    def runnable(self) -> tuple[str, str, list[tuple[Block, str]]]:
        """(program, what it prints, [(file, what running it prints)]): what runs while the
        section's missing requirements are left out, with their outputs."""
        code: list[str] = []
        output: list[str] = []
        files: list[tuple[Block, list[str]]] = []
        sink: list[str] | None = output
        for block in self.blocks:
            if block.lang == "python":
                keep = block.requires is None or available(block.requires)
                sink = output if keep else None
                if keep and block.title:
                    files.append((block, []))
                    sink = files[-1][1]
                elif keep:
                    code.append(block.body)
            elif sink is not None:
                sink.append(block.body)
        return "\n".join(code), "".join(output), [(f, "".join(out)) for f, out in files]


def available(name: str) -> bool:
    """Whether ``pyhcs.aio`` (a module) or ``pyhcs.Layer`` (a name in a module) exists."""
    try:
        importlib.import_module(name)
    except ImportError:
        parent, _, attr = name.rpartition(".")
        try:
            return hasattr(importlib.import_module(parent), attr)
        except ImportError:
            return False
    return True


def sections(page: Path) -> list[Section]:
    """The page's sections (text before the first ``## `` heading is one too)."""
    found: list[Section] = []
    for part in re.split(r"^(?=## )", page.read_text(encoding="utf-8"), flags=re.MULTILINE):
        heading = part.splitlines()[0].lstrip("# ").strip() if part.strip() else ""
        section = Section(heading)
        for match in _FENCE.finditer(part):
            section.blocks.append(
                Block(match["lang"], match["body"], match["title"], match["requires"])
            )
        if section.blocks:
            found.append(section)
    return found


def whole(page: Path) -> Section:
    """The page as one section (its blocks share names from top to bottom)."""
    blocks = [block for section in sections(page) for block in section.blocks]
    return Section(page.name, blocks)
