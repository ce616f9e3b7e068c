"""Output formats runc's callers parse, without pydantic (``state`` and ``list`` must start
fast): JSON as Go's encoding/json writes it, and times as Go's RFC3339Nano."""

from __future__ import annotations

import json
import time
from typing import Any, Final

__all__ = ["SPEC_VERSION", "go_json", "rfc3339_nano"]

#: The runtime spec version pyrunhcs writes (``state``, ``spec``) and reads up to.
SPEC_VERSION: Final = "1.2.0"


def go_json(value: Any, *, indent: bool = False) -> str:
    """JSON as Go's encoding/json writes it: compact (``json.Marshal``) or two-space indented
    (``json.MarshalIndent(v, "", "  ")``), UTF-8 kept, and ``<``, ``>``, ``&``, U+2028, U+2029
    escaped (Go's HTML-safe default). Those characters only ever occur inside strings in JSON
    text, so replacing them afterwards is exact."""
    text = json.dumps(
        value,
        ensure_ascii=False,
        indent=2 if indent else None,
        separators=None if indent else (",", ":"),
    )
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def rfc3339_nano(ns: int | None = None) -> str:
    """A UTC time (``time.time_ns()`` by default) as Go's RFC3339Nano writes it: trailing
    zeros of the fraction dropped, no fraction at all when it is zero."""
    if ns is None:
        ns = time.time_ns()
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"
