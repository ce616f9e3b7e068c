"""mkdocs hook: pages show tables generated from the code itself, so the docs cannot drift."""

from __future__ import annotations

from typing import Any

from pyhcs import errors, hresult

_MARK = "<!-- pyhcs:hresult-table -->"


def _hresult_table() -> str:
    rows = ["| HRESULT | Name | Raised as | Message |", "|---|---|---|---|"]
    for code, info in sorted(hresult.KNOWN.items()):
        cls = errors.error_class_for(code).__name__
        message = info.message.replace("|", "\\|")
        rows.append(f"| `0x{code:08X}` | `{info.name}` | `{cls}` | {message} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the generated-table marks of a page."""
    if _MARK in markdown:
        markdown = markdown.replace(_MARK, _hresult_table())
    return markdown
