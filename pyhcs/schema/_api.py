"""Module-level helpers over the generated models: lookup, parse, serialise, SDK dating.

Everything here accepts the same three document forms as ``HcsModel.parse`` (a model, a dict,
JSON text), so callers that only hold a dict or a string never need to pick a class first
to get HCS-correct JSON out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pyhcs.schema import _codec, _models
from pyhcs.schema._base import Document, HcsEnum, HcsModel
from pyhcs.schema._strict import RELEASE_SCHEMA_VERSIONS

__all__ = [
    "DEFINITIONS",
    "Origin",
    "definition",
    "origin",
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


@dataclass(frozen=True)
class Origin:
    """Where a definition, property or enum value of the models comes from.

    ``swagger`` is True for what the public Swagger files have; ``release`` is then the first
    SDK release whose file has it. Otherwise it comes from the extras (hcsshim's schema2 or an
    official sample): ``source`` names the file, ``schema_version`` the HCS schema version it
    appeared in where that is known, ``hcsshim_first_seen`` the date and commit of the first
    hcsshim change that used it (an upper bound on when HCS gained it).
    """

    swagger: bool
    release: str | None = None
    source: str | None = None
    schema_version: str | None = None
    hcsshim_first_seen: str | None = None
    known_values: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.swagger:
            return f"public Swagger, since SDK {self.release}"
        where = f"not in the public Swagger; {self.source}"
        if self.schema_version:
            where += f"; since schema {self.schema_version}"
        if self.hcsshim_first_seen:
            where += f"; in hcsshim since {self.hcsshim_first_seen}"
        return where


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

    KeyError if the definition, or the member, is in no public Swagger file (``origin`` says
    where such a member comes from).
    """
    cls = DEFINITIONS[name]
    if member is None:
        if cls.__hcs_origin__ is not None:
            raise KeyError(f"{name} is in no public Swagger file; see origin({name!r})")
        return cls.__hcs_release__
    return cls.__hcs_since__[member]


def origin(name: str, member: str | None = None) -> Origin:
    """Where definition ``name`` (or its property / enum value ``member``) comes from: the
    public Swagger (with its first SDK release) or the extras (source, version, hcsshim date).

    KeyError if the models have no such definition or member.
    """
    cls = DEFINITIONS[name]
    found: Mapping[str, str] | None = cls.__hcs_origin__
    if member is not None:
        if member in cls.__hcs_since__:
            return Origin(True, release=cls.__hcs_since__[member])
        if member in cls.__hcs_extras__:
            found = cls.__hcs_extras__[member]
        elif found is None or not _has_member(cls, member):
            raise KeyError(f"{name} has no property or value {member!r}")
    if found is None:
        return Origin(True, release=cls.__hcs_release__)
    known = found.get("known_values")
    return Origin(
        False,
        source=found.get("source"),
        schema_version=found.get("schema_version"),
        hcsshim_first_seen=found.get("hcsshim_first_seen"),
        known_values=tuple(known.split(", ")) if known else (),
    )


def _has_member(cls: type[HcsModel] | type[HcsEnum], member: str) -> bool:
    if issubclass(cls, HcsModel):
        return member in cls.__hcs_fields__
    return member in {str(item.value) for item in cls}


def release_for_schema_version(major: int, minor: int) -> str:
    """The SDK release to hold a document declaring ``SchemaVersion`` major.minor to.

    Minors newer than any known map to the newest release; schema 1.x and unknown majors
    raise ValueError (pyhcs speaks schema 2 only).
    """
    if major != 2 or minor < 0:
        raise ValueError(f"schema version {major}.{minor} is not a schema 2.x version")
    for release in _models.RELEASES:
        if RELEASE_SCHEMA_VERSIONS[release] >= (major, minor):
            return release
    return _models.RELEASES[-1]
