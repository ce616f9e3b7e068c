"""What the models take from tools/hcs-schema/extras (fields, definitions and enum values
real HCS accepts beyond the public Swagger): provenance, strict mode, what is left out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyhcs import schema
from pyhcs.errors import InvalidJsonError
from tests.conftest import REPO
from tests.test_schema import SCHEMA_DIR, extras

GENERATOR = REPO / "tools" / "gen_schema.py"


def test_origin_of_swagger_and_extras_members() -> None:
    size = schema.origin("VirtualMachine_Memory", "SizeInMB")
    assert size.swagger
    assert size.release == "1809"
    assert str(size) == "public Swagger, since SDK 1809"
    backing = schema.origin("VirtualMachine_Memory", "Backing")
    assert not backing.swagger
    assert backing.release is None
    assert backing.source == "hcsshim internal/hcs/schema2/virtual_machine_memory.go"
    assert backing.hcsshim_first_seen == "2024-07-17 8ad5a9794"
    assert "not in the public Swagger" in str(backing)
    numa = schema.origin("Numa")
    assert not numa.swagger
    assert schema.origin("Numa", "VirtualNodeCount") == numa  # a new definition's members
    pci = schema.origin("VirtualPciDevice", "PropagateNumaAffinity")
    assert pci.schema_version == "2.11"
    assert "since schema 2.11" in str(pci)
    isolation = schema.origin("IsolationSettings", "IsolationType")
    assert "GuestStateOnly" in isolation.known_values
    assert schema.origin("Container", "IsolationType").known_values == ("HostProcess",)
    assert str(schema.origin("GetPropertyType", "Memory").source).startswith("MicrosoftDocs")
    with pytest.raises(KeyError):
        schema.since("Numa")
    with pytest.raises(KeyError):
        schema.since("VirtualMachine_Memory", "Backing")
    with pytest.raises(KeyError):
        schema.origin("VirtualMachine_Memory", "Backed")


def test_field_metadata_carries_the_provenance() -> None:
    field = schema.VirtualMachine_Memory.model_fields["backing"]
    assert isinstance(field.json_schema_extra, dict)
    origin = field.json_schema_extra["x-pyhcs-origin"]
    assert isinstance(origin, dict)
    assert origin["origin"] == "hcsshim"
    assert schema.VirtualMachine_Memory.model_fields["size_in_mb"].json_schema_extra is None


def test_every_extra_is_in_the_models_or_left_out_on_purpose() -> None:
    left_out = {
        "ContainerMemoryInformation",
        "CacheQueryStatsResponse",
        "SiloProperties",
        "System_PropertyType=ContainerCredentialGuard",
        "System_PropertyType=ProcessorTopology",
        "System_PropertyType=CpuGroup",
        "System_PropertyType=GuestMemory",
        "System_PropertyType=ICHeartbeatStatus",
        "ModifyRequestType=PreAdd",
    }
    missing = set()
    for name in extras()["new_definitions"]:
        if name not in schema.DEFINITIONS:
            missing.add(name)
    for name, entry in extras()["definitions"].items():
        model = schema.definition(name)
        assert issubclass(model, schema.HcsModel)
        for prop in entry["properties"]:
            assert prop in model.__hcs_extras__, (name, prop)
    for key, entry in extras()["enums"].items():
        if "." in key:  # values of a plain-string property: recorded, not an enum
            owner, prop = key.split(".")
            assert set(entry["add"]) <= set(schema.origin(owner, prop).known_values)
            continue
        enum = schema.definition(key)
        assert issubclass(enum, schema.HcsEnum)
        values = {str(member.value) for member in enum}
        missing |= {f"{key}={value}" for value in entry["add"] if value not in values}
    assert missing == left_out


def test_strict_mode_knows_the_extras_and_dates_the_versioned_ones() -> None:
    vm = {"ComputeTopology": {"Memory": {"SizeInMB": 1024, "Backing": "Hybrid"}}}
    schema.VirtualMachine.parse(vm, strict=True, release="1809")
    with pytest.raises(InvalidJsonError) as caught:
        schema.VirtualMachine_Memory.parse({"Backing": "Swapped"}, strict=True)
    assert caught.value.json_path == "$.Backing"
    device = {"PropagateNumaAffinity": True}
    schema.VirtualPciDevice.parse(device, strict=True)  # no version targeted
    with pytest.raises(InvalidJsonError, match=r"needs schema 2\.11 or newer"):
        schema.VirtualPciDevice.parse(device, strict=True, release="21H2")
    with pytest.raises(InvalidJsonError, match="PreAdd"):
        schema.ModifySettingRequest.parse({"RequestType": "PreAdd"}, strict=True)
    assert "SiloProperties" not in schema.DEFINITIONS


def _generate(schema_dir: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), "--schema-dir", str(schema_dir), "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_generator_refuses_extras_that_repeat_the_swagger(tmp_path: Path) -> None:
    copy = tmp_path / "hcs-schema"
    shutil.copytree(SCHEMA_DIR, copy)
    path = copy / "extras" / "schema-extras.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["definitions"]["VirtualMachine_Memory"]["properties"]["SizeInMB"] = {
        "type": "integer",
        "format": "uint64",
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    result = _generate(copy, tmp_path / "m.py")
    assert result.returncode == 2
    assert "VirtualMachine_Memory.SizeInMB is in the Swagger already" in result.stderr
    assert not (tmp_path / "m.py").exists()


def test_generator_without_extras_makes_the_swagger_only_models(tmp_path: Path) -> None:
    copy = tmp_path / "hcs-schema"
    copy.mkdir()
    for path in SCHEMA_DIR.glob("*.json"):
        shutil.copy(path, copy / path.name)
    result = _generate(copy, tmp_path / "m.py")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "m.py").read_text(encoding="utf-8")
    assert "__hcs_extras__" not in text
    assert "class Numa(" not in text
    assert 'alias="SlitType"' not in text
