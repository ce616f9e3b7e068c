"""Generate ``pyhcs/schema/_models.py`` from the HCS JSON schema (Swagger 2.0) files.

Usage::

    python tools/gen_schema.py [--schema-dir DIR] [--output FILE] [--check]

``DIR`` (default ``tools/hcs-schema`` in the repository) holds one Swagger file per
Windows SDK release (``hcs-schema-win10-1809.json`` ... ``hcs-schema-win11-21h2.json``). The
newest file defines the models; the older ones only say in which release each definition,
property and enum value first appeared. ``--check`` regenerates in memory and exits 1 if the
committed module differs. The product never runs this script: it only reads the module it wrote.

Only facts are carried over (names, types, formats, patterns, enum values); the Swagger
``description`` prose is deliberately dropped.

The public Swagger files leave out fields, definitions and enum values that real HCS accepts
(the official samples use ``VirtualMachine_Memory.Backing``). ``DIR/extras/schema-extras.json``
lists what hcsshim's ``internal/hcs/schema2`` (generated from a newer, internal schema) and the
official samples have beyond the Swagger, each with its source and, where known, the schema
version it appeared in (``since``) or the hcsshim commit that first used it. The models are
the union of both, minus the entries ``EXCLUDED_EXTRAS`` leaves out (with the reason). Every
member taken from the extras carries its provenance: ``__hcs_extras__`` on the class (and the
field's ``json_schema_extra``), ``__hcs_origin__`` on a definition no Swagger has; it never
enters ``__hcs_since__``, which only dates what the public Swagger files have.
"""

from __future__ import annotations

import argparse
import builtins
import hashlib
import json
import keyword
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA_DIR = REPO / "tools" / "hcs-schema"
DEFAULT_OUTPUT = REPO / "pyhcs" / "schema" / "_models.py"
#: Inside the schema directory: what real HCS accepts beyond the public Swagger files.
EXTRAS_FILE = Path("extras") / "schema-extras.json"

#: Entries of schema-extras.json the models leave out, and why. Keys: ``Definition`` (a new
#: definition), ``Definition.Property`` (a new property) or ``Enum=Value`` (a new enum value).
EXCLUDED_EXTRAS: Mapping[str, str] = {
    "ContainerMemoryInformation": "no definition or call refers to it, and its 2018 hcsshim "
    "struct gives every byte count as int32 (hcsshim then typed every unformatted integer so)",
    "CacheQueryStatsResponse": "no definition or call refers to it; 2018 int32 widths",
    "SiloProperties": "no definition or call refers to it",
    "System_PropertyType=ContainerCredentialGuard": "hcsshim sends it only to the service "
    "calls, where GetPropertyType/ModifyPropertyType already have it",
    "System_PropertyType=ProcessorTopology": "service-only (GetPropertyType has it)",
    "System_PropertyType=CpuGroup": "service-only (GetPropertyType/ModifyPropertyType have it)",
    "System_PropertyType=GuestMemory": "declared in hcsshim but never sent; no answer shape known",
    "System_PropertyType=ICHeartbeatStatus": "declared in hcsshim but never sent; no answer "
    "shape known",
    "ModifyRequestType=PreAdd": "a guest (GCS) request type of hcsshim's guestrequest package, "
    "not a host HCS value",
}
#: Extras properties whose Go type is a (named) string: kept a string, with the values
#: hcsshim uses recorded as known values instead of a closed enum.
STRING_PROPERTIES: Mapping[tuple[str, str], tuple[str, ...]] = {
    # Go ``type IsolationType string`` with the one constant "HostProcess"; the extras name a
    # definition that neither they nor the Swagger define.
    ("Container", "IsolationType"): ("HostProcess",),
}
#: Keys of an extras entry that describe where it came from rather than its type.
_PROVENANCE_KEYS = {"since", "source", "x-hcsshim-first-seen", "x-also-used-by", "note"}

_FILE_RE = re.compile(r"^hcs-schema-win(?P<win>\d+)-(?P<release>[0-9a-z]+)\.json$")

#: Integer formats -> the range-checked alias exported by ``pyhcs.schema._base``.
_INT_ALIASES = {
    "int8": "Int8",
    "uint8": "UInt8",
    "int16": "Int16",
    "uint16": "UInt16",
    "int32": "Int32",
    "uint32": "UInt32",
    "int64": "Int64",
    "uint64": "UInt64",
}
#: String formats that only say how to read the text; the value stays the string HCS uses.
_STRING_FORMATS = {"date-time", "binary", "mac-address", ""}

#: Capitalised words that must stay one snake_case word (``SizeInMB`` is fine on its own, but
#: ``MaximumFrequencyMHz`` would otherwise become ``maximum_frequency_m_hz``).
_WORDS = {
    "MHz": "Mhz",
    "QoS": "Qos",
    "DWord": "Dword",
    "QWord": "Qword",
    "PMem": "Pmem",
    "SByte": "Sbyte",
    "UInt": "Uint",
}
_SPLIT = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

#: Names the generated module itself binds; a definition may not take them.
_RESERVED = {
    "Annotated",
    "Any",
    "Field",
    "HcsEnum",
    "HcsModel",
    "RELEASES",
    *_INT_ALIASES.values(),
}
#: Attribute names a field may not take (pydantic's API and the HcsModel helpers).
_TAKEN_ATTRIBUTES = {*dir(BaseModel), "parse", "to_dict", "to_json"}


class SchemaError(Exception):
    """The Swagger files contain something this generator does not know how to map."""


def snake(name: str) -> str:
    """``SizeInMB`` -> ``size_in_mb``: the Python spelling of a Swagger property name."""
    for word, replacement in _WORDS.items():
        name = name.replace(word, replacement)
    return _SPLIT.sub("_", name).lower()


def member_name(value: str) -> str:
    """The Python name of a str-enum member: ``GracefulExit`` -> ``GRACEFUL_EXIT``."""
    if value == "":
        return "UNSPECIFIED"
    name = re.sub(r"\W", "_", snake(value)).upper()
    return f"V_{name}" if name[0].isdigit() else name


def attribute_name(prop: str) -> str:
    """A field name that is a valid identifier and shadows nothing on the model."""
    name = re.sub(r"\W", "_", snake(prop))
    if name[0].isdigit():
        name = f"f_{name}"
    if keyword.iskeyword(name) or name in _TAKEN_ATTRIBUTES or name.startswith("model_"):
        name = f"{name}_"
    return name


@dataclass(frozen=True)
class Release:
    """One Swagger file and the SDK release it describes."""

    name: str
    path: Path
    definitions: Mapping[str, Any]


def load_releases(schema_dir: Path) -> list[Release]:
    """Every ``hcs-schema-win*-*.json`` in ``schema_dir``, oldest release first."""
    if not schema_dir.is_dir():
        raise SchemaError(
            f"schema directory {schema_dir} not found: the HCS Swagger files live in the "
            "repository's tools/hcs-schema (pass --schema-dir to use another copy)"
        )
    found: list[tuple[tuple[int, str], Release]] = []
    for path in schema_dir.iterdir():
        match = _FILE_RE.match(path.name)
        if match is None:
            continue
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("swagger") != "2.0":
            raise SchemaError(f"{path.name}: not a Swagger 2.0 document")
        release = match["release"].upper()
        found.append(
            ((int(match["win"]), release), Release(release, path, document["definitions"]))
        )
    if not found:
        raise SchemaError(f"no hcs-schema-win*-*.json files in {schema_dir}")
    return [release for _, release in sorted(found, key=lambda item: item[0])]


def load_extras(schema_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """``DIR/extras/schema-extras.json`` and its content, or None if there is none."""
    path = schema_dir / EXTRAS_FILE
    if not path.is_file():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    if set(document) != {"definitions", "new_definitions", "enums"}:
        raise SchemaError(f"{path.name}: expected the keys definitions, new_definitions, enums")
    return path, document


def _provenance(entry: Mapping[str, Any]) -> dict[str, str]:
    """Where an extras entry came from, as plain strings (origin, source, dates, version)."""
    source = str(entry.get("source", ""))
    found: dict[str, str] = {
        "origin": "docs-sample" if source.startswith("MicrosoftDocs") else "hcsshim",
        "source": source,
    }
    if entry.get("since"):
        found["schema_version"] = str(entry["since"])
    if entry.get("x-hcsshim-first-seen"):
        found["hcsshim_first_seen"] = str(entry["x-hcsshim-first-seen"])
    if entry.get("x-also-used-by"):
        found["also_used_by"] = str(entry["x-also-used-by"])
    return found


def _type_only(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An extras property or definition without its provenance keys (``$ref`` wins over the
    ``type`` the Go generator also wrote)."""
    schema = {
        k: v for k, v in entry.items() if k not in _PROVENANCE_KEYS and not k.startswith("x-")
    }
    if "$ref" in schema:
        return {"$ref": schema["$ref"]}
    return schema


class Generator:
    """Turns the newest release's definitions (and the extras) into Python source text."""

    def __init__(
        self, releases: Sequence[Release], extras: tuple[Path, Mapping[str, Any]] | None = None
    ) -> None:
        self.releases = releases
        self.newest = releases[-1]
        self.extras_path = extras[0] if extras else None
        self._counterparts: dict[str, dict[str, str]] = {}
        self.definitions: dict[str, Any] = dict(self.newest.definitions)
        #: Definition -> member (property or enum value) -> provenance, for extras members.
        self.extra_members: dict[str, dict[str, dict[str, str]]] = {}
        #: Definitions no Swagger has -> provenance.
        self.extra_definitions: dict[str, dict[str, str]] = {}
        if extras:
            self._merge_extras(extras[1])
        self.enums: dict[str, list[str]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        for name, definition in self.definitions.items():
            if not name.isidentifier() or keyword.iskeyword(name) or name in _RESERVED:
                raise SchemaError(f"definition {name!r} needs a mapped Python name")
            if "enum" in definition:
                self.enums[name] = list(definition["enum"])
            elif definition.get("type") == "object":
                self.models[name] = definition.get("properties", {})
            else:
                raise SchemaError(f"definition {name!r}: unsupported shape {definition!r}")
        # Inline property enums become their own class, named like the Swagger's own
        # disambiguated names (``Definition_Property``).
        self.inline_enums: dict[tuple[str, str], str] = {}
        self.inline_owners: dict[str, tuple[str, str]] = {}
        for name, properties in self.models.items():
            for prop, schema in properties.items():
                if "enum" in schema and "$ref" not in schema:
                    enum_name = f"{name}_{prop}"
                    if enum_name in self.definitions or enum_name in _RESERVED:
                        raise SchemaError(f"inline enum name {enum_name!r} collides")
                    self.enums[enum_name] = list(schema["enum"])
                    self.inline_enums[(name, prop)] = enum_name
                    self.inline_owners[enum_name] = (name, prop)

    # -- extras -----------------------------------------------------------------------------

    def _merge_extras(self, extras: Mapping[str, Any]) -> None:
        """Add the extras to ``self.definitions``, recording the provenance of each member."""
        for name, entry in extras["new_definitions"].items():
            if name in EXCLUDED_EXTRAS:
                continue
            if name in self.definitions:
                raise SchemaError(f"extras: new definition {name!r} is in the Swagger already")
            self.definitions[name] = _type_only(entry)
            self.extra_definitions[name] = _provenance(entry)
        for name, entry in extras["definitions"].items():
            target = self.definitions.get(name)
            if target is None or "properties" not in target:
                raise SchemaError(f"extras: {name!r} is not an object definition")
            properties = dict(target["properties"])
            for prop, schema in entry["properties"].items():
                if f"{name}.{prop}" in EXCLUDED_EXTRAS:
                    continue
                if prop in properties:
                    raise SchemaError(f"extras: {name}.{prop} is in the Swagger already")
                provenance = _provenance(schema)
                known = STRING_PROPERTIES.get((name, prop))
                if known is not None:
                    properties[prop] = {"type": "string"}
                    provenance["known_values"] = ", ".join(known)
                else:
                    properties[prop] = _type_only(schema)
                self.extra_members.setdefault(name, {})[prop] = provenance
            self.definitions[name] = {**target, "properties": properties}
        for key, entry in extras["enums"].items():
            owner, _, prop = key.partition(".")
            if prop:
                # Values hcsshim assigns to a property that is a plain string in Go: recorded,
                # not enforced.
                schema = self.definitions.get(owner, {}).get("properties", {}).get(prop)
                if schema != {"type": "string"}:
                    raise SchemaError(f"extras: enum values for {key} need a string property")
                members = self.extra_members.setdefault(owner, {})
                if prop not in members and owner in self.extra_definitions:
                    members[prop] = dict(self.extra_definitions[owner])
                if prop not in members:
                    raise SchemaError(f"extras: {key} is a Swagger property")
                members[prop]["known_values"] = ", ".join(entry["add"])
                continue
            target = self.definitions.get(owner)
            if target is None or "enum" not in target:
                raise SchemaError(f"extras: {owner!r} is not an enum definition")
            values = list(target["enum"])
            for value in entry["add"]:
                if f"{owner}={value}" in EXCLUDED_EXTRAS:
                    continue
                if value in values:
                    raise SchemaError(f"extras: {owner} value {value!r} is in the Swagger already")
                values.append(value)
                self.extra_members.setdefault(owner, {})[value] = _provenance(entry)
            self.definitions[owner] = {**target, "enum": values}

    # -- SINCE ------------------------------------------------------------------------------

    def counterparts(self, release: Release) -> dict[str, str]:
        """Newest definition name -> its name in ``release``.

        Definitions were renamed between SDK files (``Memory_2`` became
        ``VirtualMachine_Memory``), so a name alone does not find a definition's older self.
        Starting from the definitions nothing refers to (matched by name), each property's
        ``$ref`` leads to the counterpart of the referenced definition; definitions reached
        that way use the older file's name, the rest keep matching by name.
        """
        newest = self.newest.definitions
        older = release.definitions
        referenced = {
            _ref_name(schema)
            for definition in newest.values()
            for schema in _property_schemas(definition)
            if _ref_name(schema)
        }
        mapping: dict[str, str] = {}
        queue = [name for name in newest if name not in referenced and name in older]
        for name in queue:
            mapping[name] = name
        while queue:
            name = queue.pop()
            new_props = newest[name].get("properties", {})
            old_props = older.get(mapping[name], {}).get("properties", {})
            for prop, schema in new_props.items():
                target, old_target = _ref_name(schema), _ref_name(old_props.get(prop, {}))
                if target and old_target and old_target in older and target not in mapping:
                    mapping[target] = old_target
                    queue.append(target)
        for name in newest:
            if name not in mapping and name in older:
                mapping[name] = name
        return mapping

    def first_release(self, name: str, member: str | None = None) -> str:
        """The oldest release whose file has the definition (and the property / enum value),
        following renames (see ``counterparts``)."""
        for release in self.releases:
            if release.name not in self._counterparts:
                self._counterparts[release.name] = self.counterparts(release)
            older_name = self._counterparts[release.name].get(name)
            definition = release.definitions.get(older_name) if older_name else None
            if definition is None:
                continue
            if member is None:
                return release.name
            members = definition.get("enum") or list(definition.get("properties", {}))
            if member in members:
                return release.name
        raise SchemaError(f"{name}.{member} is not in any release")

    # -- types ------------------------------------------------------------------------------

    def _ref(self, schema: Mapping[str, Any]) -> str:
        ref = str(schema["$ref"])
        prefix = "#/definitions/"
        if not ref.startswith(prefix) or ref[len(prefix) :] not in self.definitions:
            raise SchemaError(f"unresolvable $ref {ref!r}")
        return ref[len(prefix) :]

    def spec(self, schema: Mapping[str, Any], where: str, owner: tuple[str, str]) -> str:
        """The compact type spec the strict validator reads (see ``pyhcs.schema._strict``)."""
        if "$ref" in schema:
            return "@" + self._ref(schema)
        if "enum" in schema:
            return "@" + self.inline_enums[owner]
        kind = schema.get("type")
        fmt = schema.get("format", "")
        if kind == "string":
            if fmt == "byte":
                return "byte"
            if fmt not in _STRING_FORMATS:
                raise SchemaError(f"{where}: unknown string format {fmt!r}")
            if "pattern" in schema:
                return "string~" + str(schema["pattern"])
            return "string"
        if kind == "integer":
            if fmt not in _INT_ALIASES:
                raise SchemaError(f"{where}: unknown integer format {fmt!r}")
            return str(fmt)
        if kind in ("number", "boolean"):
            return str(kind)
        if kind == "array":
            return "[]" + self.spec(schema["items"], where + "[]", owner)
        if kind == "object":
            if "properties" in schema:
                raise SchemaError(f"{where}: inline object definitions are not supported")
            values = schema.get("additionalProperties")
            if isinstance(values, dict):
                return "{}" + self.spec(values, where + "{}", owner)
            return "any"
        if kind is None and not schema:
            return "any"
        raise SchemaError(f"{where}: unsupported schema {dict(schema)!r}")

    def annotation(self, spec: str) -> str:
        """The Python annotation of a spec (without the ``| None`` of an optional field)."""
        if spec.startswith("[]"):
            return f"list[{self.annotation(spec[2:])}]"
        if spec.startswith("{}"):
            return f"dict[str, {self.annotation(spec[2:])}]"
        if spec.startswith("@"):
            name = spec[1:]
            if name in self.enums:
                # Open enum: a value a newer HCS added is kept as a plain string.
                return f'Annotated[{name} | str, Field(union_mode="left_to_right")]'
            return name
        if spec.startswith("string") or spec == "byte":
            return "str"
        if spec in _INT_ALIASES:
            return _INT_ALIASES[spec]
        return {"number": "float", "boolean": "bool", "any": "Any"}[spec]

    # -- output -----------------------------------------------------------------------------

    def _header(self) -> list[str]:
        lines = [
            '"""Pydantic models of every definition of the HCS JSON schema (Swagger 2.0).',
            "",
            f"GENERATED by tools/gen_schema.py from {self.newest.path.name}; do not edit. Run",
            "``python tools/gen_schema.py`` to regenerate. Input files (sha256):",
            "",
        ]
        for release in self.releases:
            digest = hashlib.sha256(release.path.read_bytes()).hexdigest()
            lines.append(f"- {release.path.name} ({release.name}): {digest}")
        if self.extras_path is not None:
            digest = hashlib.sha256(self.extras_path.read_bytes()).hexdigest()
            lines += [
                f"- {EXTRAS_FILE.as_posix()} (fields, definitions and enum values beyond the",
                f"  public Swagger; see ``__hcs_extras__`` / ``__hcs_origin__``): {digest}",
            ]
        lines += [
            '"""',
            "",
            "from __future__ import annotations",
            "",
            "from typing import Annotated, Any",
            "",
            "from pydantic import Field",
            "",
            "from pyhcs.schema._base import (",
            "    HcsEnum,",
            "    HcsModel,",
            *(f"    {alias}," for alias in _INT_ALIASES.values()),
            ")",
            "",
            "#: The SDK releases whose schema files were read, oldest first.",
            "RELEASES: tuple[str, ...] = ("
            + ", ".join(f'"{release.name}"' for release in self.releases)
            + ("," if len(self.releases) == 1 else "")
            + ")",
        ]
        return lines

    def _enum(self, name: str) -> list[str]:
        values = self.enums[name]
        members = [member_name(value) for value in values]
        if len(set(members)) != len(members):
            raise SchemaError(f"enum {name}: member names collide: {members}")
        extras = self.extra_members.get(name, {})
        lines = ["", "", f"class {name}(HcsEnum):"]
        if name in self.extra_definitions:
            since = ""
            since_map: dict[str, str] = {}
            lines.append(f'    """``{name}``: in no public Swagger (see ``__hcs_origin__``)."""')
        elif name in self.inline_owners:
            # Values of an inline enum are dated by the property that holds them.
            since = self.first_release(*self.inline_owners[name])
            since_map = dict.fromkeys(values, since)
            lines.append(f'    """Inline enum of the Swagger property ``{name}``."""')
        else:
            since = self.first_release(name)
            since_map = {
                value: self.first_release(name, value) for value in values if value not in extras
            }
            lines.append(f'    """Swagger enum ``{name}`` (since SDK {since})."""')
        lines.append("")
        for member, value in zip(members, values, strict=True):
            lines.append(f"    {member} = {json.dumps(value)}")
        lines.append("")
        lines += self._dating(name, since, since_map)
        return lines

    def _dating(self, name: str, since: str, since_map: Mapping[str, str]) -> list[str]:
        """The class attributes that say where a definition and its members come from."""
        lines = [f"    __hcs_release__ = {json.dumps(since)}"]
        if name in self.models:
            specs = {
                prop: self.spec(schema, f"{name}.{prop}", (name, prop))
                for prop, schema in self.models[name].items()
            }
            lines.append(f"    __hcs_fields__ = {_literal(specs)}")
        lines.append(f"    __hcs_since__ = {_literal(since_map)}")
        if name in self.extra_definitions:
            lines.append(f"    __hcs_origin__ = {_literal(self.extra_definitions[name])}")
        extras = self.extra_members.get(name)
        if extras:
            lines.append(f"    __hcs_extras__ = {_nested_literal(extras)}")
        return lines

    def _model(self, name: str) -> list[str]:
        properties: Mapping[str, Any] = self.models[name]
        extras = self.extra_members.get(name, {})
        lines = ["", "", f"class {name}(HcsModel):"]
        if name in self.extra_definitions:
            since = ""
            lines.append(f'    """``{name}``: in no public Swagger (see ``__hcs_origin__``)."""')
        else:
            since = self.first_release(name)
            lines.append(f'    """Swagger definition ``{name}`` (since SDK {since})."""')
        lines.append("")
        specs: dict[str, str] = {}
        attributes: dict[str, str] = {}
        for prop, schema in properties.items():
            spec = self.spec(schema, f"{name}.{prop}", (name, prop))
            specs[prop] = spec
            attribute = attribute_name(prop)
            if attribute in attributes.values():
                raise SchemaError(f"{name}: two properties map to {attribute!r}")
            attributes[prop] = attribute
        for prop, spec in specs.items():
            annotation = self.annotation(spec)
            optional = annotation if annotation == "Any" else f"{annotation} | None"
            alias = json.dumps(prop)
            extra = ""
            if prop in extras:
                origin = _literal(extras[prop], 0)
                extra = f", json_schema_extra={{{json.dumps('x-pyhcs-origin')}: {origin}}}"
            lines.append(
                f"    {attributes[prop]}: {optional} = Field(default=None, alias={alias}{extra})"
            )
        if specs:
            lines.append("")
        since_map = (
            {}
            if name in self.extra_definitions
            else {prop: self.first_release(name, prop) for prop in properties if prop not in extras}
        )
        lines += self._dating(name, since, since_map)
        return lines

    def _model_order(self) -> tuple[list[str], set[str]]:
        """Models with the ones they reference first (ties alphabetical), and those in cycles.

        Emitting referenced classes first lets pydantic complete each class as it is defined,
        and is required for ``SystemExit``: until the model of that name exists, the name
        resolves to the builtin exception.
        """
        refs = {
            name: sorted(set(re.findall(r'"#/definitions/(\w+)"', json.dumps(properties))))
            for name, properties in self.models.items()
        }
        order: list[str] = []
        cyclic: set[str] = set()
        done: set[str] = set()

        def visit(name: str, stack: list[str]) -> None:
            if name in stack:
                cyclic.update(stack[stack.index(name) :])
                return
            if name in done:
                return
            done.add(name)
            for ref in refs[name]:
                if ref in self.models:
                    visit(ref, [*stack, name])
            order.append(name)

        for name in sorted(self.models):
            visit(name, [])
        shadowing = {name for name in cyclic if hasattr(builtins, name)}
        if shadowing:
            raise SchemaError(f"definitions {sorted(shadowing)} shadow builtins inside a cycle")
        return order, cyclic

    def render(self) -> str:
        """The whole module text: header, enums, models, forward-reference resolution."""
        lines = self._header()
        for name in sorted(self.enums):
            lines += self._enum(name)
        order, cyclic = self._model_order()
        for name in order:
            lines += self._model(name)
        if cyclic:
            lines += ["", "", "# Resolve the references of the models that contain themselves."]
            lines += [f"{name}.model_rebuild()" for name in sorted(cyclic)]
        names = sorted([*self.enums, *self.models])
        lines += ["", "__all__ = ["]
        lines += [f'    "{name}",' for name in [*names, "RELEASES"]]
        lines += ["]", ""]
        return "\n".join(lines)


def _ref_name(schema: Mapping[str, Any]) -> str | None:
    """The definition a property schema refers to (directly or as array items)."""
    for candidate in (schema, schema.get("items") or {}):
        ref = candidate.get("$ref") if isinstance(candidate, Mapping) else None
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            return ref[len("#/definitions/") :]
    return None


def _property_schemas(definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(definition.get("properties", {}).values())


def _literal(mapping: Mapping[str, str], indent: int = 4) -> str:
    """A dict literal with keys in the given order, one item per line below ``indent``
    (``indent`` 0: all on one line)."""
    if not mapping:
        return "{}"
    items = [f"{json.dumps(key)}: {json.dumps(value)}" for key, value in mapping.items()]
    if indent == 0:
        return "{" + ", ".join(items) + "}"
    pad = " " * indent
    return "{\n" + "".join(f"{pad}    {item},\n" for item in items) + pad + "}"


def _nested_literal(mapping: Mapping[str, Mapping[str, str]]) -> str:
    """``_literal`` of a mapping whose values are mappings of strings."""
    items = [f"{json.dumps(key)}: {_literal(value, 8)}" for key, value in mapping.items()]
    return "{\n" + "".join(f"        {item},\n" for item in items) + "    }"


def generate(schema_dir: Path) -> str:
    """The text of ``_models.py`` for the Swagger files (and extras) in ``schema_dir``."""
    return Generator(load_releases(schema_dir), load_extras(schema_dir)).render()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema-dir", type=Path, default=DEFAULT_SCHEMA_DIR)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the output file is not up to date"
    )
    args = parser.parse_args(argv)
    try:
        text = generate(args.schema_dir)
    except SchemaError as error:
        print(f"gen_schema: {error}", file=sys.stderr)
        return 2
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.is_file() else None
        if current != text:
            print(f"gen_schema: {output} is out of date; run tools/gen_schema.py", file=sys.stderr)
            return 1
        print(f"gen_schema: {output} is up to date")
        return 0
    output.write_text(text, encoding="utf-8", newline="\n")
    print(f"gen_schema: wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
