"""The JSON documents of the official HCS samples (tests/data/official_samples, verbatim, see
its MANIFEST.md) parse with the schema models in strict mode, as the function that takes each
would validate it. The emulator accepting them through the C API is tested in
tests/emulator/test_official_samples.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pyhcs import schema
from pyhcs.errors import InvalidJsonError
from tests.conftest import REPO

SAMPLES = REPO / "tests" / "data" / "official_samples"

#: Every sample and the schema definition of the parameter that takes it (MANIFEST.md).
KINDS: dict[str, str] = {
    "tutorial_vm_configuration.json": "ComputeSystem",
    "tutorial_vm_query_memory.json": "System_PropertyQuery",
    "tutorial_modify_memory_size.json": "ModifySettingRequest",
    "empty_vm.json": "ComputeSystem",
    "compute_system_pause_options.json": "PauseOptions",
    "compute_system_save_options.json": "SaveOptions",
    "service_property_query_memory.json": "Service_PropertyQuery",
    "service_modify_cpugroup_create.json": "ModificationRequest",
    "service_modify_cpugroup_create_substituted.json": "ModificationRequest",
    "hist_vm_configuration_schema_test_path.json": "ComputeSystem",
    "hist_modify_virtualsmb_share.json": "ModifySettingRequest",
    "hist_hcssample_config_template.json": "ComputeSystem",
    "hist_jsonsample_vm_filled.json": "ComputeSystem",
    "hist_jsonsample_container_filled.json": "ComputeSystem",
}


def sample(name: str) -> str:
    """The verbatim text of one sample (leading newline and indentation included)."""
    return (SAMPLES / name).read_text(encoding="utf-8")


def release_of(document: Any) -> str | None:
    """The SDK release a document's declared SchemaVersion holds it to (None: undeclared)."""
    version = document.get("SchemaVersion") if isinstance(document, dict) else None
    if not isinstance(version, dict):
        return None
    return schema.release_for_schema_version(version["Major"], version["Minor"])


def test_every_sample_is_listed() -> None:
    assert sorted(path.name for path in SAMPLES.glob("*.json")) == sorted(KINDS)
    manifest = (SAMPLES / "MANIFEST.md").read_text(encoding="utf-8")
    for name in KINDS:
        assert f"`{name}`" in manifest


@pytest.mark.parametrize("name", sorted(KINDS))
def test_sample_parses_strictly(name: str) -> None:
    text = sample(name)
    model = schema.definition(KINDS[name])
    assert issubclass(model, schema.HcsModel)
    document = json.loads(text)
    parsed = model.parse(text, strict=True, release=release_of(document))
    assert parsed.to_dict() == document  # nothing lost, nothing added


def test_the_samples_need_the_extras() -> None:
    # What the public Swagger lacks and the samples use: Backing, GetPropertyType "Memory".
    for name, value in (
        ("tutorial_vm_configuration.json", "Virtual"),
        ("empty_vm.json", "Physical"),
    ):
        system = schema.ComputeSystem.parse(sample(name), strict=True, release="1809")
        memory = system.virtual_machine.compute_topology.memory  # type: ignore[union-attr]
        assert memory is not None
        assert memory.backing == value
        assert memory.backing == schema.MemoryBackingType(value)
        assert memory.model_extra == {}
    assert not schema.origin("VirtualMachine_Memory", "Backing").swagger
    query = schema.Service_PropertyQuery.parse(sample("service_property_query_memory.json"))
    assert query.property_types == [schema.GetPropertyType.MEMORY]
    assert schema.origin("GetPropertyType", "Memory").source is not None


def test_cpu_group_settings_and_the_placeholder_group_id() -> None:
    # ServiceSample's request, verbatim, carries the placeholder "GroupId": "GUID": the nested
    # CreateGroupOperation refuses it (a documented doc error); with a real GUID it passes.
    good = json.loads(sample("service_modify_cpugroup_create_substituted.json"))
    schema.HostProcessorModificationRequest.parse(good["Settings"], strict=True)
    schema.CreateGroupOperation.parse(good["Settings"]["OperationDetails"], strict=True)
    bad = json.loads(sample("service_modify_cpugroup_create.json"))
    schema.HostProcessorModificationRequest.parse(bad["Settings"], strict=True)
    with pytest.raises(InvalidJsonError) as caught:
        schema.CreateGroupOperation.parse(bad["Settings"]["OperationDetails"], strict=True)
    assert caught.value.json_path == "$.GroupId"
    assert "'GUID' does not match the pattern" in str(caught.value)
