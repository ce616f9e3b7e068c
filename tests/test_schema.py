"""Schema models, lenient mode: naming, round trips, the public API, the reference documents.

Documents for the property tests are generated from the Swagger file itself (not from the
tables the generator wrote), so a generator bug cannot hide behind its own output.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyhcs import schema
from pyhcs.errors import InvalidJsonError
from tests.conftest import REPO

SCHEMA_DIR = REPO / "tools" / "hcs-schema"
NEWEST = "hcs-schema-win11-21h2.json"

_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


@lru_cache(maxsize=8)
def swagger(name: str = NEWEST) -> Mapping[str, Any]:
    """The ``definitions`` of one Swagger file of tools/hcs-schema."""
    text = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    definitions: Mapping[str, Any] = json.loads(text)["definitions"]
    return definitions


def model_names() -> list[str]:
    return sorted(name for name, d in swagger().items() if "enum" not in d)


def enum_names() -> list[str]:
    return sorted(name for name, d in swagger().items() if "enum" in d)


def ref_name(schema_: Mapping[str, Any]) -> str:
    return str(schema_["$ref"]).rsplit("/", 1)[1]


# -- document strategies, straight from the Swagger ----------------------------------------

_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=6)
#: Any JSON value except a top-level null (which the models read as "absent").
FREE_FORM = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=4,
).filter(lambda value: value is not None)
#: Names no Swagger property has (none starts with "Zz"), so they are extra fields.
EXTRA_NAMES = st.from_regex(r"Zz[A-Za-z0-9]{0,6}", fullmatch=True)


class Documents:
    """Hypothesis strategies of valid documents for each Swagger definition."""

    def __init__(self, *, extras: bool = False, depth: int = 3) -> None:
        self.extras = extras
        self.depth = depth
        self._cache: dict[tuple[str, int], st.SearchStrategy[Any]] = {}

    def definition(self, name: str, depth: int | None = None) -> st.SearchStrategy[Any]:
        depth = self.depth if depth is None else depth
        key = (name, depth)
        if key not in self._cache:
            self._cache[key] = self._build(name, depth)
        return self._cache[key]

    def _build(self, name: str, depth: int) -> st.SearchStrategy[Any]:
        definition = swagger()[name]
        if "enum" in definition:
            return st.sampled_from(definition["enum"])
        if depth <= 0:
            return st.just({})
        optional = {
            prop: self.value(sub, depth - 1)
            for prop, sub in definition.get("properties", {}).items()
        }
        objects = st.fixed_dictionaries({}, optional=optional)
        if not self.extras:
            return objects
        extra = st.dictionaries(EXTRA_NAMES, FREE_FORM, max_size=2)
        return st.tuples(objects, extra).map(lambda pair: {**pair[0], **pair[1]})

    def value(self, sub: Mapping[str, Any], depth: int) -> st.SearchStrategy[Any]:
        if "$ref" in sub:
            return self.definition(ref_name(sub), depth)
        kind, fmt = sub.get("type"), sub.get("format")
        if kind == "string":
            if "pattern" in sub:
                return st.from_regex(sub["pattern"], fullmatch=True)
            if fmt == "byte":
                return st.binary(max_size=6).map(lambda b: base64.b64encode(b).decode())
            return st.text(max_size=8)
        if kind == "integer":
            low, high = _INT_RANGES[str(fmt)]
            return st.integers(low, high)
        if kind == "number":
            return st.floats(allow_nan=False, allow_infinity=False)
        if kind == "boolean":
            return st.booleans()
        if kind == "array":
            return st.lists(self.value(sub["items"], depth), max_size=2)
        if kind == "object" and isinstance(sub.get("additionalProperties"), dict):
            values = self.value(sub["additionalProperties"], depth)
            return st.dictionaries(st.text(max_size=5), values, max_size=2)
        return FREE_FORM

    def any_model(self) -> st.SearchStrategy[tuple[str, Any]]:
        return st.sampled_from(model_names()).flatmap(
            lambda name: st.tuples(st.just(name), self.definition(name))
        )


# -- naming ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def extras() -> Mapping[str, Any]:
    """tools/hcs-schema/extras/schema-extras.json: what HCS accepts beyond the Swagger."""
    text = (SCHEMA_DIR / "extras" / "schema-extras.json").read_text(encoding="utf-8")
    document: Mapping[str, Any] = json.loads(text)
    return document


def test_every_definition_is_exported_under_its_swagger_name() -> None:
    definitions = swagger()
    assert len(definitions) == 243
    added = {name for name, cls in schema.DEFINITIONS.items() if cls.__hcs_origin__ is not None}
    assert set(schema.DEFINITIONS) == set(definitions) | added
    assert not added & set(definitions)
    assert added <= set(extras()["new_definitions"])
    for name in definitions:
        cls = getattr(schema, name)
        assert cls.__name__ == name
        assert name in schema.__all__
        assert schema.definition(name) is cls
        expected_base = schema.HcsEnum if "enum" in definitions[name] else schema.HcsModel
        assert issubclass(cls, expected_base)


def test_enums_carry_the_exact_swagger_values() -> None:
    for name in enum_names():
        cls = schema.definition(name)
        assert issubclass(cls, schema.HcsEnum)
        public = [member.value for member in cls if member.value not in cls.__hcs_extras__]
        assert public == swagger()[name]["enum"]
        # Values no Swagger has come from the extras, after the Swagger's own.
        added = [member.value for member in cls][len(public) :]
        assert added == list(cls.__hcs_extras__)
        assert set(added) <= set(extras()["enums"].get(name, {}).get("add", []))
        for member in cls:
            assert member == member.value  # a str enum: compares equal to its JSON value
            assert str(member) == member.value


def test_properties_are_snake_case_with_exact_aliases() -> None:
    for name in model_names():
        cls = schema.definition(name)
        assert issubclass(cls, schema.HcsModel)
        aliases = {field.alias: attr for attr, field in cls.model_fields.items()}
        public = [alias for alias in aliases if alias not in cls.__hcs_extras__]
        assert public == list(swagger()[name].get("properties", {}))
        assert set(cls.__hcs_extras__) <= set(
            extras()["definitions"].get(name, {}).get("properties", {})
        )
        for attr in aliases.values():
            assert re.fullmatch(r"[a-z][a-z0-9_]*", attr), (name, attr)


@pytest.mark.parametrize(
    ("model", "alias", "attribute"),
    [
        (
            "ComputeSystem",
            "ShouldTerminateOnLastHandleClosed",
            "should_terminate_on_last_handle_closed",
        ),
        ("VirtualMachine_Memory", "SizeInMB", "size_in_mb"),
        ("VirtualMachine_Processor", "MaximumFrequencyMHz", "maximum_frequency_mhz"),
        ("RegistryValue", "DWordValue", "dword_value"),
        ("Devices", "VirtualPMem", "virtual_pmem"),
        ("CrashReport", "PreOSId", "pre_os_id"),
        ("Container", "HvSocket", "hv_socket"),
    ],
)
def test_snake_case_of_irregular_names(model: str, alias: str, attribute: str) -> None:
    field = schema.definition(model).model_fields[attribute]  # type: ignore[union-attr]
    assert field.alias == alias


def test_systemexit_definition_shadows_the_builtin_only_inside_the_package() -> None:
    assert not issubclass(schema.SystemExit, BaseException)
    assert issubclass(schema.SystemExit, schema.HcsModel)
    record = schema.AttributionRecord.parse({"SystemExit": {"Detail": "Terminate"}})
    assert isinstance(record.system_exit, schema.SystemExit)


# -- lenient parsing and output ---------------------------------------------------------------


def test_populate_by_name_or_alias_and_omit_none() -> None:
    by_name = schema.ProcessParameters(command_line="cmd", create_std_out_pipe=True)
    by_alias = schema.ProcessParameters.parse({"CommandLine": "cmd", "CreateStdOutPipe": True})
    assert by_name == by_alias
    assert by_name.to_dict() == {"CommandLine": "cmd", "CreateStdOutPipe": True}
    assert json.loads(by_name.to_json()) == by_name.to_dict()
    assert schema.ProcessParameters().to_dict() == {}


def test_every_entry_point_accepts_model_dict_and_text() -> None:
    as_dict = {"Owner": "t", "SchemaVersion": {"Major": 2, "Minor": 1}}
    model = schema.ComputeSystem.parse(as_dict)
    for document in (model, as_dict, json.dumps(as_dict), json.dumps(as_dict).encode()):
        assert schema.ComputeSystem.parse(document) == model
        assert schema.parse(schema.ComputeSystem, document, strict=True) == model
        assert schema.to_dict(document) == as_dict
        assert json.loads(schema.to_json(document)) == as_dict
    assert schema.ComputeSystem.parse(model) is model


def test_a_model_of_another_class_is_read_through_its_json() -> None:
    version = schema.Version(major=2, minor=4)
    assert schema.Version.parse(version) is version
    properties = schema.Properties.parse({"Id": "a", "Owner": "o", "State": "Running"})
    basic = schema.ComputeSystemProperties.parse(properties)
    assert basic.to_dict() == {"Id": "a", "Owner": "o", "State": "Running"}


def test_to_json_serialises_models_and_enums_nested_in_plain_dicts() -> None:
    request = {
        "ResourcePath": "VirtualMachine/ComputeTopology/Memory",
        "RequestType": schema.ModifyRequestType.UPDATE,
        "Settings": schema.VirtualMachine_Memory(size_in_mb=4096),
    }
    assert json.loads(schema.to_json(request)) == {
        "ResourcePath": "VirtualMachine/ComputeTopology/Memory",
        "RequestType": "Update",
        "Settings": {"SizeInMB": 4096},
    }
    assert schema.to_json(None) == ""
    assert schema.to_json('{"Raw": 1}') == '{"Raw": 1}'


def test_enums_parse_to_members_and_unknown_values_stay_strings() -> None:
    props = schema.Properties.parse({"State": "Running", "SystemType": "Pod"})
    assert props.state is schema.State.RUNNING
    assert props.system_type == "Pod"
    assert not isinstance(props.system_type, schema.SystemType)
    assert props.to_dict() == {"State": "Running", "SystemType": "Pod"}


def test_unknown_fields_are_kept_and_written_back() -> None:
    document = {
        "SchemaVersion": {"Major": 2, "Minor": 1, "Patch": 7},
        "VirtualMachine": {
            "ComputeTopology": {"Memory": {"SizeInMB": 1024, "FutureKnob": "Virtual"}},
        },
        "FutureField": {"Nested": [1, None, "x"]},
    }
    system = schema.ComputeSystem.parse(document)
    assert system.to_dict() == document
    assert system.model_extra == {"FutureField": {"Nested": [1, None, "x"]}}
    memory = system.virtual_machine.compute_topology.memory  # type: ignore[union-attr]
    assert memory is not None
    assert memory.model_extra == {"FutureKnob": "Virtual"}


def test_free_form_properties_take_any_json_value() -> None:
    for settings_value in (4096, "x", [1, 2], {"SizeInMB": 1}, True):
        request = schema.ModifySettingRequest.parse({"Settings": settings_value})
        assert request.settings == settings_value
        assert request.to_dict() == {"Settings": settings_value}


@pytest.mark.parametrize(
    ("document", "path", "fragment"),
    [
        ("{", "$", "not valid JSON at line 1 column 2"),
        ("[1, 2]", "$", "valid dictionary"),
        ('{"Owner": ["x"]}', "$.Owner", "valid string"),
        ('{"SchemaVersion": {"Major": -1}}', "$.SchemaVersion.Major", "greater than or equal"),
        ('{"Container": {"Storage": {"Layers": [{}, 5]}}}', "$.Container.Storage.Layers[1]", ""),
        (
            json.dumps(
                {
                    "VirtualMachine": {
                        "Devices": {"Scsi": {"a b": {"Attachments": {"0": {"Path": 1}}}}}
                    }
                }
            ),
            "$.VirtualMachine.Devices.Scsi['a b'].Attachments['0'].Path",
            "valid string",
        ),
        ('{"Owner": NaN}', "$", "NaN is not a JSON value"),
    ],
)
def test_lenient_errors_are_invalid_json_with_the_json_path(
    document: str, path: str, fragment: str
) -> None:
    with pytest.raises(InvalidJsonError) as caught:
        schema.ComputeSystem.parse(document)
    assert caught.value.json_path == path
    assert caught.value.message.startswith(f"{path}: ")
    assert fragment in caught.value.message


def test_parse_list_reads_arrays_of_documents() -> None:
    text = '[{"Id": "a", "State": "Running"}, {"Id": "b", "Zz": 1}]'
    systems = schema.parse_list(schema.Properties, text)
    assert [system.id for system in systems] == ["a", "b"]
    assert [system.to_dict() for system in systems] == json.loads(text)
    assert schema.parse_list(schema.Properties, []) == []
    with pytest.raises(InvalidJsonError) as caught:
        schema.parse_list(schema.Properties, '{"Id": "a"}')
    assert caught.value.json_path == "$"
    with pytest.raises(InvalidJsonError) as caught:
        schema.parse_list(schema.Properties, '[{"Id": "a"}, {"Id": 1}]')
    assert caught.value.json_path == "$[1].Id"


def test_models_resolve_every_reference() -> None:
    for name in model_names():
        cls = schema.definition(name)
        assert cls.__pydantic_complete__, name  # type: ignore[union-attr]
    node = schema.RegistryMakeKey.parse({"mkkey": [{"mkkey": [{"name": "x"}]}]})
    assert node.to_dict() == {"mkkey": [{"mkkey": [{"name": "x"}]}]}


# -- hypothesis round trips -----------------------------------------------------------------


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_documents_round_trip(data: st.DataObject) -> None:
    name, document = data.draw(Documents().any_model())
    cls = schema.definition(name)
    assert issubclass(cls, schema.HcsModel)
    model = cls.parse(document)
    assert model.to_dict() == document
    assert cls.parse(model.to_json()) == model
    assert cls.parse(document, strict=True).to_dict() == document


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_unknown_fields_survive_round_trips(data: st.DataObject) -> None:
    name, document = data.draw(Documents(extras=True).any_model())
    cls = schema.definition(name)
    assert issubclass(cls, schema.HcsModel)
    assert cls.parse(document).to_dict() == document
    assert json.loads(cls.parse(json.dumps(document)).to_json()) == document


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=st.deferred(lambda: Documents(depth=5).definition("ComputeSystem")))
def test_deep_compute_system_documents_round_trip(document: dict[str, Any]) -> None:
    assert schema.ComputeSystem.parse(document).to_dict() == document
    assert schema.ComputeSystem.parse(document, strict=True).to_dict() == document


# -- the documents of the HCS reference notes ------------------------------------------------

#: Every JSON document of the team's HCS reference notes, each with the models it is a document
#: of and the strict outcome (None = accepted, else the JSON path strict mode rejects). A list
#: document is read with ``parse_list``; no models marks a fragment that is not a document.
REFERENCE_DOCUMENTS = Path(__file__).parent / "data" / "reference_documents.json"
_GUID_PATH = "does not match the pattern"


def test_reference_documents_parse_with_their_models() -> None:
    entries = json.loads(REFERENCE_DOCUMENTS.read_text(encoding="utf-8"))
    assert len(entries) >= 30
    checked = 0
    for entry in entries:
        value, strict_path = entry["document"], entry["strict_json_path"]
        text = json.dumps(value, ensure_ascii=False)  # the reference's own key order
        for name in entry["models"]:
            cls = schema.definition(name)
            assert issubclass(cls, schema.HcsModel)
            where = f"{entry['where']} as {name}"
            if isinstance(value, list):
                assert [item.to_dict() for item in schema.parse_list(cls, text)] == value, where
                strict: Callable[[], object] = partial(schema.parse_list, cls, text, strict=True)
            else:
                assert cls.parse(text).to_dict() == value, where
                strict = partial(cls.parse, text, strict=True)
            checked += 1
            if strict_path is None:
                strict()
                continue
            with pytest.raises(InvalidJsonError) as caught:
                strict()
            assert caught.value.json_path == strict_path, where
            assert _GUID_PATH in caught.value.message, where
    assert checked >= 30
