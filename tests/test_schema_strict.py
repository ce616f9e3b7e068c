"""Strict mode: documents are checked the way HCS deserializes them, first offence reported.

The mutation tests take a valid document generated from the Swagger file, break exactly one
value, and check that strict mode names exactly that value's JSON path.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pyhcs import hresult, schema
from pyhcs.errors import HcsError, InvalidJsonError
from tests.test_schema import _INT_RANGES, Documents, model_names, ref_name, swagger

# -- fixed cases ----------------------------------------------------------------------------

LAYER_ID = "0c3a8c1e-5ef4-4b46-9b3c-2a4f0e1d2c3b"


def _strict_error(model: type[schema.HcsModel], document: Any) -> InvalidJsonError:
    with pytest.raises(InvalidJsonError) as caught:
        model.parse(document, strict=True)
    error = caught.value
    assert error.hresult == hresult.HCS_E_INVALID_JSON
    assert isinstance(error, HcsError)
    assert error.message.startswith(f"{error.json_path}: ")
    return error


@pytest.mark.parametrize(
    ("document", "path", "fragment"),
    [
        ('{"Owner": "x", "Bogus": 1}', "$.Bogus", "unknown field 'Bogus'"),
        ('{"owner": "x"}', "$.owner", "unknown field 'owner'"),  # the wire format only
        ('{"Owner": 5}', "$.Owner", "expected a string, got integer"),
        ('{"SchemaVersion": {"Major": "2"}}', "$.SchemaVersion.Major", "expected an integer"),
        ('{"SchemaVersion": {"Major": 2.0}}', "$.SchemaVersion.Major", "got number"),
        ('{"SchemaVersion": {"Major": true}}', "$.SchemaVersion.Major", "got boolean"),
        (
            '{"SchemaVersion": {"Minor": 4294967296}}',
            "$.SchemaVersion.Minor",
            "out of range for uint32",
        ),
        (
            '{"ShouldTerminateOnLastHandleClosed": 1}',
            "$.ShouldTerminateOnLastHandleClosed",
            "boolean",
        ),
        ('{"Container": []}', "$.Container", "expected an object (Container), got array"),
        ('{"Container": {"Storage": {"Layers": {}}}}', "$.Container.Storage.Layers", "an array"),
        (
            json.dumps({"Container": {"Storage": {"Layers": [{"Id": LAYER_ID}, {"Id": "nope"}]}}}),
            "$.Container.Storage.Layers[1].Id",
            "does not match the pattern",
        ),
        (
            json.dumps({"Container": {"Storage": {"Layers": [{"Id": LAYER_ID, "Cache": "Fast"}]}}}),
            "$.Container.Storage.Layers[0].Cache",
            "'Fast' is not one of the enum values of CacheMode",
        ),
        ('{"Container": {"Storage": {"Layers": [null]}}}', "$.Container.Storage.Layers[0]", "null"),
        (
            json.dumps(
                {
                    "VirtualMachine": {
                        "Devices": {"Scsi": {"it's": {"Attachments": {"0": {"Type": 1}}}}}
                    }
                }
            ),
            "$.VirtualMachine.Devices.Scsi['it\\'s'].Attachments['0'].Type",
            "expected a string (enum AttachmentType), got integer",
        ),
        ('{"VirtualMachine": {"Devices": {"Scsi": []}}}', "$.VirtualMachine.Devices.Scsi", "map"),
        (
            json.dumps(
                {
                    "VirtualMachine": {
                        "ComputeTopology": {"Memory": {"SizeInMB": 1, "Backed": "Virtual"}}
                    }
                }
            ),
            "$.VirtualMachine.ComputeTopology.Memory.Backed",
            "unknown field 'Backed' (VirtualMachine_Memory has no such property)",
        ),
        ('{"Owner": "x",}', "$", "not valid JSON at line 1 column 15"),
        ('{\n  "Owner": tru\n}', "$", "not valid JSON at line 2 column 12"),
        ("", "$", "not valid JSON at line 1 column 1"),
        ('{"Owner": NaN}', "$", "NaN is not a JSON value"),
        ("[]", "$", "expected an object (ComputeSystem), got array"),
        ("null", "$", "expected an object (ComputeSystem), got null"),
        ('"text"', "$", "got string"),
    ],
)
def test_strict_rejects_with_the_json_path(document: str, path: str, fragment: str) -> None:
    error = _strict_error(schema.ComputeSystem, document)
    assert error.json_path == path
    assert fragment in error.message


def test_first_offence_in_document_order_is_reported() -> None:
    document = '{"Zebra": 1, "Owner": 2, "Container": {"Bad": 3}}'
    assert _strict_error(schema.ComputeSystem, document).json_path == "$.Zebra"
    reordered = '{"Owner": 2, "Zebra": 1}'
    assert _strict_error(schema.ComputeSystem, reordered).json_path == "$.Owner"


def test_filter_type_outside_the_schema_is_rejected_only_in_strict_mode() -> None:
    layer_data = {"SchemaVersion": {"Major": 2, "Minor": 1}, "Layers": [], "FilterType": "WCIFS"}
    assert schema.LayerData.parse(layer_data).to_dict() == layer_data
    assert _strict_error(schema.LayerData, layer_data).json_path == "$.FilterType"


def test_null_means_absent_for_properties() -> None:
    system = schema.ComputeSystem.parse('{"Owner": null, "Container": null}', strict=True)
    assert system.to_dict() == {}


def test_free_form_and_byte_values() -> None:
    for settings_value in (4096, None, "x", [1], {"A": {"B": None}}):
        schema.ModifySettingRequest.parse({"Settings": settings_value}, strict=True)
    schema.RegistryValue.parse({"BinaryValue": "AAEC"}, strict=True)
    error = _strict_error(schema.RegistryValue, {"BinaryValue": "not base64!"})
    assert (error.json_path, "base64" in error.message) == ("$.BinaryValue", True)


def test_dicts_and_models_go_through_json_first() -> None:
    error = _strict_error(schema.ComputeSystem, {"Owner": {1, 2}})
    assert error.json_path == "$"
    assert "not serialisable as JSON" in error.message
    error = _strict_error(schema.ComputeSystem, {"Owner": float("nan")})
    assert error.json_path == "$"
    lenient = schema.ComputeSystem.parse({"Owner": "x", "Extra": True})
    assert _strict_error(schema.ComputeSystem, lenient).json_path == "$.Extra"
    built = schema.ComputeSystem(owner="x", schema_version=schema.Version(major=2, minor=1))
    assert schema.ComputeSystem.parse(built, strict=True) == built


def test_enum_values_need_the_exact_case() -> None:
    error = _strict_error(schema.Properties, {"State": "running"})
    assert error.json_path == "$.State"
    assert "'Created', 'Running'" in error.message


# -- SDK release gating ----------------------------------------------------------------------


def test_release_rejects_newer_properties_and_enum_values() -> None:
    vm = {"VirtualMachine": {"Version": {"Major": 9, "Minor": 0}}}
    assert schema.since("VirtualMachine", "Version") == "2104"
    schema.ComputeSystem.parse(vm, strict=True, release="2104")
    error = _strict_error_release(schema.ComputeSystem, vm, "2004")
    assert error.json_path == "$.VirtualMachine.Version"
    assert "needs SDK 2104" in error.message
    assert "targets 2004" in error.message
    assert schema.since("ModifyResourceType", "CimMount") == "2004"
    assert schema.since("GuestModifySettingRequest", "ResourceType") == "1809"
    request = {"ResourceType": "CimMount", "RequestType": "Add"}
    schema.GuestModifySettingRequest.parse(request, strict=True, release="2004")
    error = _strict_error_release(schema.GuestModifySettingRequest, request, "1903")
    assert error.json_path == "$.ResourceType"
    assert "enum value 'CimMount' of ModifyResourceType needs SDK 2004" in error.message


def _strict_error_release(
    model: type[schema.HcsModel], document: Any, release: str
) -> InvalidJsonError:
    with pytest.raises(InvalidJsonError) as caught:
        model.parse(document, strict=True, release=release)
    return caught.value


def test_release_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="strict=True"):
        schema.ComputeSystem.parse({}, release="1809")
    with pytest.raises(ValueError, match="unknown SDK release"):
        schema.ComputeSystem.parse({}, strict=True, release="1507")


@pytest.mark.parametrize(
    ("version", "release"),
    [((2, 0), "1809"), ((2, 1), "1809"), ((2, 2), "1903"), ((2, 3), "2004"), ((2, 4), "2104")],
)
def test_schema_version_to_release(version: tuple[int, int], release: str) -> None:
    assert schema.release_for_schema_version(*version) == release


def test_schema_version_to_release_edges() -> None:
    assert schema.release_for_schema_version(2, 99) == schema.RELEASES[-1]
    with pytest.raises(ValueError, match="not a schema 2"):
        schema.release_for_schema_version(1, 0)


# -- hypothesis: break one value, find exactly it ---------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _quote(name: str) -> str:
    return "['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"


@dataclass(frozen=True)
class Location:
    """One value inside a document: how to reach it, its JSON path, what the Swagger says."""

    steps: tuple[str | int, ...]
    path: str
    kind: str  # model | map | array | enum | string | pattern | byte | boolean | <int format>
    detail: str = ""


def locations(value: Any, sub: Mapping[str, Any]) -> list[Location]:
    """Every checkable value of a valid document, given the Swagger schema of its root."""
    found: list[Location] = []
    _walk(value, sub, (), "$", found)
    return found


def _walk(
    value: Any, sub: Mapping[str, Any], steps: tuple[str | int, ...], path: str, out: list[Location]
) -> None:
    if value is None:
        return
    if "$ref" in sub:
        name = ref_name(sub)
        definition = swagger()[name]
        if "enum" in definition:
            out.append(Location(steps, path, "enum", name))
            return
        out.append(Location(steps, path, "model", name))
        properties = definition.get("properties", {})
        for key, item in value.items():
            where = f"{path}.{key}" if _IDENTIFIER.match(key) else path + _quote(key)
            _walk(item, properties[key], (*steps, key), where, out)
        return
    kind = sub.get("type")
    if kind == "array":
        out.append(Location(steps, path, "array"))
        for position, item in enumerate(value):
            _walk(item, sub["items"], (*steps, position), f"{path}[{position}]", out)
    elif kind == "object" and isinstance(sub.get("additionalProperties"), dict):
        out.append(Location(steps, path, "map"))
        for key, item in value.items():
            _walk(item, sub["additionalProperties"], (*steps, key), path + _quote(key), out)
    elif kind == "string":
        if "pattern" in sub:
            out.append(Location(steps, path, "pattern"))
        elif sub.get("format") == "byte":
            out.append(Location(steps, path, "byte"))
        else:
            out.append(Location(steps, path, "string"))
    elif kind == "integer":
        out.append(Location(steps, path, sub["format"]))
    elif kind == "boolean":
        out.append(Location(steps, path, "boolean"))
    # free-form objects accept every value: nothing to break there


def _breakages(location: Location) -> list[tuple[Any, str]]:
    """Replacement values that are wrong for the location, each with the message fragment."""
    kind = location.kind
    if kind == "model":
        return [([], f"expected an object ({location.detail})"), ("x", "got string")]
    if kind == "map":
        return [([], "expected an object (map)"), (1, "got integer")]
    if kind == "array":
        return [({}, "expected an array"), ("x", "got string")]
    if kind == "enum":
        return [
            ("ZzNotAValue", f"is not one of the enum values of {location.detail}"),
            (7, f"expected a string (enum {location.detail})"),
        ]
    if kind in ("string", "pattern", "byte"):
        wrong = [(7, "got integer"), (False, "got boolean"), ({}, "got object")]
        if kind == "pattern":
            wrong.append(("not-a-guid", "does not match the pattern"))
        if kind == "byte":
            wrong.append(("***", "invalid base64"))
        return wrong
    if kind == "boolean":
        return [(1, "expected a boolean, got integer"), ("true", "expected a boolean, got string")]
    low, high = _INT_RANGES[kind]
    return [
        ("1", f"expected an integer ({kind}), got string"),
        (1.5, "got number"),
        (True, "got boolean"),
        (high + 1, f"out of range for {kind}"),
        (low - 1, f"out of range for {kind}"),
    ]


def _replace(document: Any, steps: tuple[str | int, ...], new: Any) -> Any:
    if not steps:
        return new
    broken = copy.deepcopy(document)
    parent = broken
    for step in steps[:-1]:
        parent = parent[step]
    parent[steps[-1]] = new
    return broken


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_broken_value_is_reported_at_its_path(data: st.DataObject) -> None:
    name, document = data.draw(Documents().any_model())
    spots = locations(document, {"$ref": f"#/definitions/{name}"})
    spot = data.draw(st.sampled_from(spots))
    new, fragment = data.draw(st.sampled_from(_breakages(spot)))
    cls = schema.definition(name)
    assert issubclass(cls, schema.HcsModel)
    error = _strict_error(cls, json.dumps(_replace(document, spot.steps, new)))
    assert error.json_path == spot.path
    assert fragment in error.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_unknown_field_is_reported_at_its_path(data: st.DataObject) -> None:
    name, document = data.draw(Documents().any_model())
    objects = [
        spot
        for spot in locations(document, {"$ref": f"#/definitions/{name}"})
        if spot.kind == "model"
    ]
    spot = data.draw(st.sampled_from(objects))
    extra = data.draw(st.from_regex(r"Zz[A-Za-z0-9]{0,6}", fullmatch=True))
    # A JSON round trip, not deepcopy: the generator may put one dict object in several places
    # (as `[mapping] * 8` does), and adding the field to it would add it everywhere.
    target = json.loads(json.dumps(document))
    holder = target
    for step in spot.steps:
        holder = holder[step]
    value = data.draw(st.integers() | st.text(max_size=3) | st.booleans() | st.none())
    cls = schema.definition(name)
    assert issubclass(cls, schema.HcsModel)
    if value is not None:  # lenient keeps it (a null is omitted on output, as every None is)
        holder[extra] = value
        assert cls.parse(target).to_dict() == target
    holder[extra] = value
    error = _strict_error(cls, target)
    assert error.json_path == f"{spot.path}.{extra}"
    assert f"unknown field {extra!r} ({spot.detail} has no such property)" in error.message


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_null_properties_are_accepted_and_omitted(data: st.DataObject) -> None:
    name, document = data.draw(Documents().any_model())
    properties = [
        spot
        for spot in locations(document, {"$ref": f"#/definitions/{name}"})
        if spot.steps
        and isinstance(spot.steps[-1], str)
        and spot.path.endswith(f".{spot.steps[-1]}")
    ]
    assume(properties)
    spot = data.draw(st.sampled_from(properties))
    cleared = _replace(document, spot.steps, None)
    cls = schema.definition(name)
    assert issubclass(cls, schema.HcsModel)
    expected = copy.deepcopy(cleared)
    holder = expected
    for step in spot.steps[:-1]:
        holder = holder[step]
    del holder[spot.steps[-1]]
    assert cls.parse(cleared, strict=True).to_dict() == expected


def test_a_repeated_mapping_is_reported_where_it_first_offends() -> None:
    """`[mapping] * 3` is one object three times: its unknown field is at every position, so
    the first in document order is reported; a distinct equal copy offends only where it is."""
    layer = {"Id": "00000000-0000-0000-0000-000000000001", "Path": "C:\\l"}
    bad = {**layer, "Zz": None}
    error = _strict_error(schema.Storage, {"Layers": [bad] * 3})
    assert error.json_path == "$.Layers[0].Zz"
    error = _strict_error(schema.Storage, {"Layers": [layer, layer, dict(bad)]})
    assert error.json_path == "$.Layers[2].Zz"
    assert "unknown field 'Zz'" in error.message


@pytest.mark.parametrize("value", [None, 0, "", [], {}])
def test_unknown_field_is_rejected_whatever_its_value(value: object) -> None:
    """`null` means "absent" only for known properties: an unknown one is still unknown."""
    error = _strict_error(schema.ProcessParameters, {"CommandLine": "x", "Bogus": value})
    assert error.json_path == "$.Bogus"
    assert "unknown field 'Bogus'" in error.message


def test_mutation_helpers_see_every_model() -> None:
    assert len(model_names()) == 184
    assert {
        spot.kind
        for spot in locations(
            {"SchemaVersion": {"Major": 1}}, {"$ref": "#/definitions/ComputeSystem"}
        )
    } == {
        "model",
        "uint32",
    }
