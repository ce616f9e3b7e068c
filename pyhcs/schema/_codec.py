"""JSON text in and out, and the JSON path notation every schema error uses.

Kept apart from the models so that the lenient parser, the strict validator and the
serialisers share one reading of "what is a JSON document" and one path syntax:

- ``$`` is the document root;
- ``.Name`` selects an object member whose name is an identifier (``$.Container.Storage``),
  ``['name']`` any other member name;
- ``[3]`` selects an array element;
- ``['key']`` always selects a map entry (``$.VirtualMachine.Devices.Scsi['0']``), so a map key
  can never be mistaken for a property; ``\\`` and ``'`` inside the quotes are backslash-escaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from pydantic import BaseModel

from pyhcs.errors import InvalidJsonError

__all__ = ["dumps", "index", "json_kind", "key", "load_json", "member", "to_json_value"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def key(path: str, name: str) -> str:
    """``path['name']``: a map entry (or an object member whose name is no identifier)."""
    escaped = name.replace("\\", "\\\\").replace("'", "\\'")
    return f"{path}['{escaped}']"


def member(path: str, name: str) -> str:
    """``path.Name``: an object member, in the JSON (PascalCase) spelling."""
    return f"{path}.{name}" if _IDENTIFIER.match(name) else key(path, name)


def index(path: str, position: int) -> str:
    """``path[3]``: an array element."""
    return f"{path}[{position}]"


def json_kind(value: object) -> str:
    """The JSON type name of a parsed value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


class _NonStandardConstantError(ValueError):
    """``NaN``/``Infinity``: Python's json accepts them, JSON (and HCS) does not."""


def _reject_constant(name: str) -> Any:
    raise _NonStandardConstantError(name)


#: One decoder for every document: ``json.loads`` with a keyword argument builds a new one per
#: call, which costs more than decoding a small document.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def load_json(text: str | bytes | bytearray) -> Any:
    """Parse JSON text; anything that is not JSON raises InvalidJsonError at ``$``."""
    try:
        if isinstance(text, (bytes, bytearray)):  # as json.loads reads bytes
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        message = f"$: not valid JSON at line {error.lineno} column {error.colno}: {error.msg}"
    except _NonStandardConstantError as error:
        message = f"$: not valid JSON: {error} is not a JSON value"
    except (UnicodeDecodeError, TypeError) as error:
        message = f"$: not valid JSON: {error}"
    raise InvalidJsonError(message, json_path="$")


def _default(value: object) -> Any:
    """``json.dumps`` hook: models and enums nested in plain dicts serialise as HCS wants."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: object) -> str:
    """Compact JSON text of a JSON-like value that may contain models and enums."""
    return json.dumps(value, default=_default, allow_nan=False, separators=(",", ":"))


def to_json_value(document: object) -> Any:
    """What a JSON deserializer would see: text is parsed, anything else goes through JSON.

    A dict holding a set, bytes or a NaN therefore fails here exactly as it would fail to
    reach HCS, and a model is checked in the form it would be sent in.
    """
    if isinstance(document, (str, bytes, bytearray)):
        return load_json(document)
    if isinstance(document, Mapping) and not isinstance(document, dict):
        document = dict(document)
    try:
        text = dumps(document)
    except (TypeError, ValueError) as error:
        raise InvalidJsonError(f"$: not serialisable as JSON: {error}", json_path="$") from None
    return json.loads(text)
