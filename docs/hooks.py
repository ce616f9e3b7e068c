"""mkdocs hook: pages show tables generated from the code itself, so the docs cannot drift."""

from __future__ import annotations

import json
from typing import Any

from pyhcs import errors, hresult, schema

_MARK = "<!-- pyhcs:hresult-table -->"
_SCHEMA_MARK = "<!-- pyhcs:schema-models -->"


def _hresult_table() -> str:
    rows = ["| HRESULT | Name | Raised as | Message |", "|---|---|---|---|"]
    for code, info in sorted(hresult.KNOWN.items()):
        cls = errors.error_class_for(code).__name__
        message = info.message.replace("|", "\\|")
        rows.append(f"| `0x{code:08X}` | `{info.name}` | `{cls}` | {message} |")
    return "\n".join(rows)


def _schema_table() -> str:
    """Every definition of `pyhcs.schema`, so the page lists exactly what the package holds."""
    rows = ["| Definition | Kind | Fields or values |", "|---|---|---|"]
    for name, cls in sorted(schema.DEFINITIONS.items(), key=lambda item: item[0].lower()):
        if issubclass(cls, schema.HcsEnum):
            kind, members = "enum", [f"`{json.dumps(member.value)}`" for member in cls]
        else:
            kind = "model"
            members = [f"`{field.alias or key}`" for key, field in cls.model_fields.items()]
        rows.append(f"| `{name}` | {kind} | {', '.join(members) or '—'} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the generated-table marks of a page."""
    if _MARK in markdown:
        markdown = markdown.replace(_MARK, _hresult_table())
    if _SCHEMA_MARK in markdown:
        markdown = markdown.replace(_SCHEMA_MARK, _schema_table())
    return markdown
