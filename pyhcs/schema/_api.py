"""Module-level helpers over the generated models: lookup, parse, serialise, SDK dating.

Everything here accepts the same three document forms as ``HcsModel.parse`` (a model, a dict,
JSON text), so callers that only hold a dict or a string never need to pick a class first
to get HCS-correct JSON out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pyhcs.schema import _codec, _models
from pyhcs.schema._base import Document, HcsEnum, HcsModel

__all__ = [
    "DEFINITIONS",
    "definition",
    "parse",
    "release_for_schema_version",
    "since",
    "to_dict",
    "to_json",
]

_M = TypeVar("_M", bound=HcsModel)

#: Every Swagger definition, by its exact Swagger name: model classes and enum classes.
DEFINITIONS: Mapping[str, type[HcsModel] | type[HcsEnum]] = {
    name: getattr(_models, name) for name in _models.__all__ if name != "RELEASES"
}

#: HCS schema version (major, minor) -> first SDK release whose schema file describes it
#: (2.1 shipped with 1809, 2.2 with 1903, 2.3 with 2004, 2.4 and 2.5 with the 20348 SDK
#: "2104", 2.6 with 21H2).
_VERSION_RELEASES: tuple[tuple[tuple[int, int], str], ...] = (
    ((2, 0), "1809"),
    ((2, 1), "1809"),
    ((2, 2), "1903"),
    ((2, 3), "2004"),
    ((2, 4), "2104"),
    ((2, 5), "2104"),
    ((2, 6), "21H2"),
)


def definition(name: str) -> type[HcsModel] | type[HcsEnum]:
    """The class of the Swagger definition ``name`` (KeyError if there is none)."""
    return DEFINITIONS[name]


def parse(
    model: type[_M], document: Document, *, strict: bool = False, release: str | None = None
) -> _M:
    """``model.parse(document, strict=..., release=...)``; see ``HcsModel.parse``."""
    return model.parse(document, strict=strict, release=release)


def to_dict(document: Document) -> dict[str, Any]:
    """A document as a JSON object: models dumped HCS-style, text parsed, dicts normalised.

    A dict may contain models and enums anywhere; they are serialised as ``to_dict`` does.
    """
    if isinstance(document, HcsModel):
        return document.to_dict()
    value = _codec.to_json_value(document)
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {_codec.json_kind(value)}")
    return value


def to_json(document: Document | list[Any] | None) -> str:
    """The JSON text to hand HCS: compact, PascalCase, ``None`` omitted inside models.

    Text is passed through unchanged (HCS, not pyhcs, judges it); ``None`` gives ``""``.
    """
    if document is None:
        return ""
    if isinstance(document, str):
        return document
    if isinstance(document, (bytes, bytearray)):
        return document.decode("utf-8")
    if isinstance(document, HcsModel):
        return document.to_json()
    return _codec.dumps(document)


def since(name: str, member: str | None = None) -> str:
    """First SDK release whose schema has definition ``name`` (or its property / enum value).

    KeyError if the definition, or the member, is not in the schema.
    """
    cls = DEFINITIONS[name]
    if member is None:
        return cls.__hcs_release__
    return cls.__hcs_since__[member]


def release_for_schema_version(major: int, minor: int) -> str:
    """The SDK release to hold a document declaring ``SchemaVersion`` major.minor to.

    Minors newer than any known map to the newest release; schema 1.x and unknown majors
    raise ValueError (pyhcs speaks schema 2 only).
    """
    if major != 2 or minor < 0:
        raise ValueError(f"schema version {major}.{minor} is not a schema 2.x version")
    for version, release in _VERSION_RELEASES:
        if version == (major, minor):
            return release
    return _models.RELEASES[-1]
