"""Strict validation: a parsed JSON value checked the way HCS's own deserializer checks it.

Pydantic's ``strict=True`` is not a JSON deserializer (it turns strings into enums in Python
mode, lets ``extra="allow"`` through, and cannot be switched per call), so strict mode walks
the parsed JSON itself, in document order, against the type specs the generator wrote into
each model as ``__hcs_fields__`` (JSON property name -> spec). The first offending value
raises InvalidJsonError naming its JSON path (notation in ``pyhcs.schema._codec``).

Spec grammar (one string per property)::

    spec   := "[]" spec          array of spec
            | "{}" spec          map: object with any keys, values of spec
            | "@" Definition     a model (JSON object) or an enum (JSON string)
            | "string" ["~" regex] | "byte" | "boolean" | "number" | "any"
            | "int8" | "uint8" | "int16" | "uint16" | "int32" | "uint32" | "int64" | "uint64"

``any`` (the Swagger's free-form ``type: object``) accepts every JSON value: HCS passes such
values through untouched (the documented memory resize sends ``"Settings": 4096``). ``null``
is accepted for any property and means "absent"; it is rejected inside arrays and maps.
Definitions named by ``@`` resolve in the namespace of the module that defines the root model,
exactly as its annotations do.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
from collections.abc import Mapping
from enum import Enum
from functools import lru_cache
from typing import Any

from pyhcs.errors import InvalidJsonError
from pyhcs.schema._codec import index, json_kind, key, member

__all__ = ["INT_RANGES", "RELEASE_SCHEMA_VERSIONS", "check", "release_rank"]

#: SDK release -> the newest HCS schema version (major, minor) its schema file describes
#: (2.0 and 2.1 shipped with 1809, 2.2 with 1903, 2.3 with 2004, 2.4 and 2.5 with the 20348
#: SDK "2104", 2.6 with 21H2).
RELEASE_SCHEMA_VERSIONS: Mapping[str, tuple[int, int]] = {
    "1809": (2, 1),
    "1903": (2, 2),
    "2004": (2, 3),
    "2104": (2, 5),
    "21H2": (2, 6),
}

#: Inclusive ranges of the Swagger integer formats.
INT_RANGES: Mapping[str, tuple[int, int]] = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


@lru_cache(maxsize=64)
def _pattern(regex: str) -> re.Pattern[str]:
    # JSON Schema patterns are searches; a final "$" must not accept a trailing newline.
    if regex.endswith("$") and not regex.endswith("\\$"):
        regex = regex[:-1] + r"\Z"
    return re.compile(regex)


def release_rank(namespace: Mapping[str, Any], release: str) -> int:
    """Position of ``release`` in the namespace's ``RELEASES`` (ValueError if unknown)."""
    releases: tuple[str, ...] = namespace["RELEASES"]
    if release not in releases:
        raise ValueError(f"unknown SDK release {release!r}; known: {', '.join(releases)}")
    return releases.index(release)


class _Checker:
    """One validation run: the namespace refs resolve in and the optional release cap."""

    def __init__(self, namespace: Mapping[str, Any], release: str | None) -> None:
        self.namespace = namespace
        self.release = release
        self.cap = None if release is None else release_rank(namespace, release)

    def _too_new(self, since: str | None) -> bool:
        return (
            self.cap is not None
            and since is not None
            and release_rank(self.namespace, since) > self.cap
        )

    def _extra_too_new(self, extra: Mapping[str, str] | None) -> str | None:
        """For a member no public Swagger has: the schema version it needs if that is newer
        than the targeted release's (members of unknown version are never capped)."""
        if self.release is None or not extra or "schema_version" not in extra:
            return None
        needed = tuple(int(part) for part in extra["schema_version"].split("."))
        newest = RELEASE_SCHEMA_VERSIONS.get(self.release)
        return extra["schema_version"] if newest is None or needed > newest else None

    def _fail(self, path: str, what: str) -> InvalidJsonError:
        return InvalidJsonError(f"{path}: {what}", json_path=path)

    def value(self, spec: str, value: Any, path: str) -> None:
        """Check one JSON value against a spec; raise at the first offending value."""
        if spec == "any":
            return
        if spec.startswith("[]"):
            if not isinstance(value, list):
                raise self._fail(path, f"expected an array, got {json_kind(value)}")
            for position, item in enumerate(value):
                self.required(spec[2:], item, index(path, position))
        elif spec.startswith("{}"):
            if not isinstance(value, dict):
                raise self._fail(path, f"expected an object (map), got {json_kind(value)}")
            for name, item in value.items():
                self.required(spec[2:], item, key(path, name))
        elif spec.startswith("@"):
            self.definition(spec[1:], value, path)
        else:
            self.scalar(spec, value, path)

    def required(self, spec: str, value: Any, path: str) -> None:
        """An array element or map value: ``null`` is not a value of any spec but ``any``."""
        if value is None and spec != "any":
            raise self._fail(path, f"expected {_describe(spec)}, got null")
        self.value(spec, value, path)

    def definition(self, name: str, value: Any, path: str) -> None:
        target = self.namespace[name]
        if isinstance(target, type) and issubclass(target, Enum):
            self.enum(target, value, path)
        else:
            self.model(target, value, path)

    def enum(self, enum: type[Enum], value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise self._fail(
                path, f"expected a string (enum {enum.__name__}), got {json_kind(value)}"
            )
        values = [str(item.value) for item in enum]
        if value not in values:
            shown = ", ".join(repr(item) for item in values)
            raise self._fail(
                path, f"{value!r} is not one of the enum values of {enum.__name__}: {shown}"
            )
        since: str | None = getattr(enum, "__hcs_since__", {}).get(value)
        if self._too_new(since):
            raise self._fail(
                path,
                f"enum value {value!r} of {enum.__name__} needs SDK {since} or newer; "
                f"the document targets {self.release}",
            )
        version = self._extra_too_new(getattr(enum, "__hcs_extras__", {}).get(value))
        if version is not None:
            raise self._fail(
                path,
                f"enum value {value!r} of {enum.__name__} needs schema {version} or newer; "
                f"the document targets {self.release}",
            )

    def model(self, model: type[Any], value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise self._fail(path, f"expected an object ({model.__name__}), got {json_kind(value)}")
        fields: Mapping[str, str] = model.__hcs_fields__
        since_map: Mapping[str, str] = model.__hcs_since__
        for name, item in value.items():
            where = member(path, name)
            spec = fields.get(name)
            if spec is None:
                raise self._fail(
                    where, f"unknown field {name!r} ({model.__name__} has no such property)"
                )
            since = since_map.get(name)
            if self._too_new(since):
                raise self._fail(
                    where,
                    f"field {name!r} of {model.__name__} needs SDK {since} or newer; "
                    f"the document targets {self.release}",
                )
            version = self._extra_too_new(model.__hcs_extras__.get(name))
            if version is not None:
                raise self._fail(
                    where,
                    f"field {name!r} of {model.__name__} needs schema {version} or newer; "
                    f"the document targets {self.release}",
                )
            if item is not None:
                self.value(spec, item, where)

    def scalar(self, spec: str, value: Any, path: str) -> None:
        if spec in INT_RANGES:
            if not isinstance(value, int) or isinstance(value, bool):
                raise self._fail(path, f"expected an integer ({spec}), got {json_kind(value)}")
            low, high = INT_RANGES[spec]
            if not low <= value <= high:
                raise self._fail(path, f"{value} is out of range for {spec} ({low}..{high})")
        elif spec == "number":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise self._fail(path, f"expected a number, got {json_kind(value)}")
        elif spec == "boolean":
            if not isinstance(value, bool):
                raise self._fail(path, f"expected a boolean, got {json_kind(value)}")
        elif spec == "byte":
            if not isinstance(value, str):
                raise self._fail(path, f"expected a base64 string, got {json_kind(value)}")
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error:
                raise self._fail(path, "expected a base64 string, got invalid base64") from None
        elif spec.startswith("string"):
            if not isinstance(value, str):
                raise self._fail(path, f"expected a string, got {json_kind(value)}")
            regex = spec.partition("~")[2]
            if regex and not _pattern(regex).search(value):
                raise self._fail(path, f"{value!r} does not match the pattern {regex}")
        else:  # pragma: no cover - the generator only writes the specs above
            raise AssertionError(f"unknown spec {spec!r}")


def _describe(spec: str) -> str:
    if spec.startswith("[]"):
        return "an array"
    if spec.startswith("{}"):
        return "an object (map)"
    if spec.startswith("@"):
        return f"a {spec[1:]}"
    if spec in INT_RANGES:
        return f"an integer ({spec})"
    return {"number": "a number", "boolean": "a boolean", "byte": "a base64 string"}.get(
        spec, "a string"
    )


def check(model: type[Any], value: Any, *, path: str = "$", release: str | None = None) -> None:
    """Validate a parsed JSON ``value`` as a ``model`` document; raise InvalidJsonError.

    With ``release`` (an SDK release such as ``"1809"``), properties and enum values that
    first appeared in a later release are rejected too.
    """
    namespace = vars(sys.modules[model.__module__])
    _Checker(namespace, release).model(model, value, path)
