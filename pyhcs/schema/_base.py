"""The base classes every generated schema model and enum derives from.

``HcsModel`` fixes the HCS conventions once: snake_case attributes with the exact PascalCase
JSON names as aliases (either spelling populates), unknown fields kept so nothing a newer HCS
sends is lost, and ``None`` omitted on output. Its ``parse`` is the one entry point for both
modes: lenient (pydantic's lax validation) and strict (``pyhcs.schema._strict``, the way HCS
itself deserializes). Both raise ``pyhcs.errors.InvalidJsonError`` with a JSON path.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Annotated, Any, ClassVar, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import Self

from pyhcs.errors import InvalidJsonError
from pyhcs.schema import _codec, _strict

__all__ = [
    "Document",
    "HcsEnum",
    "HcsModel",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "parse_list",
]

_R = _strict.INT_RANGES
Int8 = Annotated[int, Field(ge=_R["int8"][0], le=_R["int8"][1])]
UInt8 = Annotated[int, Field(ge=_R["uint8"][0], le=_R["uint8"][1])]
Int16 = Annotated[int, Field(ge=_R["int16"][0], le=_R["int16"][1])]
UInt16 = Annotated[int, Field(ge=_R["uint16"][0], le=_R["uint16"][1])]
Int32 = Annotated[int, Field(ge=_R["int32"][0], le=_R["int32"][1])]
UInt32 = Annotated[int, Field(ge=_R["uint32"][0], le=_R["uint32"][1])]
Int64 = Annotated[int, Field(ge=_R["int64"][0], le=_R["int64"][1])]
UInt64 = Annotated[int, Field(ge=_R["uint64"][0], le=_R["uint64"][1])]


class HcsEnum(str, Enum):
    """A Swagger string enum: members compare equal to (and serialise as) their JSON value."""

    #: First SDK release with this enum, and per value the first release that has it ("" and
    #: no entry for what no public Swagger has).
    __hcs_release__: ClassVar[str] = ""
    __hcs_since__: ClassVar[Mapping[str, str]] = {}
    #: Values no public Swagger has -> where they come from (see ``pyhcs.schema.origin``).
    __hcs_extras__: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    #: For an enum no public Swagger has: where it comes from.
    __hcs_origin__: ClassVar[Mapping[str, str] | None] = None

    def __str__(self) -> str:
        return str(self.value)


#: What every public entry point accepts: a model, a dict or JSON text.
Document = Union["HcsModel", Mapping[str, Any], str, bytes, bytearray]

_M = TypeVar("_M", bound="HcsModel")


class HcsModel(BaseModel):
    """A Swagger object definition (see the module docstring for the conventions)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow", protected_namespaces=())

    #: First SDK release with this definition.
    __hcs_release__: ClassVar[str] = ""
    #: JSON property name -> type spec read by the strict validator.
    __hcs_fields__: ClassVar[Mapping[str, str]] = {}
    #: JSON property name -> first SDK release that has it (public Swagger properties only).
    __hcs_since__: ClassVar[Mapping[str, str]] = {}
    #: Properties no public Swagger has -> where they come from (see ``pyhcs.schema.origin``).
    __hcs_extras__: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    #: For a definition no public Swagger has: where it comes from.
    __hcs_origin__: ClassVar[Mapping[str, str] | None] = None

    @classmethod
    def parse(cls, document: Document, *, strict: bool = False, release: str | None = None) -> Self:
        """Build this model from a model, a dict or JSON text.

        Lenient (default): pydantic's lax validation; unknown fields and enum values a newer
        HCS may add are kept. ``strict=True``: validated as HCS does (the input goes through
        JSON first; unknown or mistyped fields are rejected), and with ``release`` fields and
        enum values newer than that SDK release are rejected too. Any failure raises
        InvalidJsonError naming the JSON path of the first offending value.
        """
        if release is not None and not strict:
            raise ValueError("release= is a strict-mode check; pass strict=True")
        if strict:
            value = _codec.to_json_value(document)
            _strict.check(cls, value, release=release)
            return cls._validate(value, "$")
        if isinstance(document, cls):
            return document
        if isinstance(document, (str, bytes, bytearray)):
            return cls._validate(_codec.load_json(document), "$")
        if isinstance(document, HcsModel):
            return cls._validate(document.to_dict(), "$")
        return cls._validate(document, "$")

    @classmethod
    def _validate(cls, value: object, path: str) -> Self:
        try:
            return cls.model_validate(value)
        except ValidationError as error:
            raise _lenient_error(cls, error, path) from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object HCS expects: PascalCase names, enums as strings, ``None`` omitted.

        Unknown fields that came in are written back unchanged (unless ``null``).
        """
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json(self) -> str:
        """``to_dict()`` as compact JSON text."""
        return self.model_dump_json(by_alias=True, exclude_none=True)

    def __repr_args__(self) -> Any:
        # Most of a definition's many optional fields are unset: show only what is there.
        return ((name, value) for name, value in super().__repr_args__() if value is not None)

    def _repr_html_(self) -> str:
        """For notebooks: the document as HCS reads it (PascalCase JSON), under its type."""
        from html import escape  # noqa: PLC0415 (notebooks only)

        text = self.model_dump_json(by_alias=True, exclude_none=True, indent=2)
        summary = f"<summary><code>{escape(type(self).__name__)}</code></summary>"
        return f"<details open>{summary}<pre>{escape(text)}</pre></details>"


def parse_list(
    model: type[_M],
    document: Sequence[Any] | str | bytes | bytearray,
    *,
    strict: bool = False,
    release: str | None = None,
) -> list[_M]:
    """A JSON array of ``model`` documents (e.g. HcsEnumerateComputeSystems' result).

    Same modes and errors as ``HcsModel.parse``; paths start ``$[index]``.
    """
    if release is not None and not strict:
        raise ValueError("release= is a strict-mode check; pass strict=True")
    value = (
        _codec.to_json_value(document)
        if strict or isinstance(document, (str, bytes, bytearray))
        else document
    )
    if not isinstance(value, (list, tuple)):
        raise InvalidJsonError(
            f"$: expected an array, got {_codec.json_kind(value)}", json_path="$"
        )
    result = []
    for position, item in enumerate(value):
        path = _codec.index("$", position)
        if strict:
            _strict.check(model, item, path=path, release=release)
            result.append(model._validate(item, path))
        elif isinstance(item, model):
            result.append(item)
        else:
            raw = item.to_dict() if isinstance(item, HcsModel) else item
            result.append(model._validate(raw, path))
    return result


def _lenient_error(model: type[HcsModel], error: ValidationError, root: str) -> InvalidJsonError:
    """The first pydantic error as an InvalidJsonError whose path uses the JSON names."""
    first = error.errors()[0]
    path = _path_of(model, first["loc"], root)
    return InvalidJsonError(f"{path}: {first['msg']}", json_path=path)


def _path_of(model: type[HcsModel], loc: tuple[int | str, ...], root: str) -> str:
    """Translate a pydantic ``loc`` into the JSON path notation, guided by the field specs."""
    namespace = vars(sys.modules[model.__module__])
    path = root
    target: Any = model
    spec = ""
    for item in loc:
        if target is not None:
            name = str(item)
            field = target.model_fields.get(name)
            if field is not None and field.alias:
                name = field.alias
            path = _codec.member(path, name)
            spec = target.__hcs_fields__.get(name, "any")
        elif spec.startswith("[]") and isinstance(item, int):
            path = _codec.index(path, item)
            spec = spec[2:]
        elif spec.startswith("{}"):
            path = _codec.key(path, str(item))
            spec = spec[2:]
        else:
            break  # a scalar or enum: the rest of loc names union members, not JSON
        target = None
        if spec.startswith("@"):
            found = namespace.get(spec[1:])
            if isinstance(found, type) and issubclass(found, HcsModel):
                target = found
    return path
