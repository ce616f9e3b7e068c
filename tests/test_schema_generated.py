"""The committed ``_models.py`` is exactly what tools/gen_schema.py makes of ../shared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyhcs import schema
from tests.conftest import REPO
from tests.test_schema import SCHEMA_DIR, swagger

GENERATOR = REPO / "tools" / "gen_schema.py"
MODELS = REPO / "pyhcs" / "schema" / "_models.py"
#: The schema files, oldest SDK release first, with the release names pyhcs uses.
FILES = {
    "1809": "hcs-schema-win10-1809.json",
    "1903": "hcs-schema-win10-1903.json",
    "2004": "hcs-schema-win10-2004.json",
    "2104": "hcs-schema-win10-2104.json",
    "21H2": "hcs-schema-win11-21h2.json",
}


def _generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_regenerating_reproduces_the_committed_module(tmp_path: Path) -> None:
    output = tmp_path / "_models.py"
    result = _generate("--schema-dir", str(SCHEMA_DIR), "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert output.read_bytes() == MODELS.read_bytes(), "run: python tools/gen_schema.py"


def test_check_mode_and_default_schema_dir(tmp_path: Path) -> None:
    assert _generate("--check").returncode == 0
    stale = tmp_path / "_models.py"
    stale.write_text("# stale\n", encoding="utf-8")
    result = _generate("--check", "--output", str(stale))
    assert result.returncode == 1
    assert "out of date" in result.stderr
    assert stale.read_text(encoding="utf-8") == "# stale\n"


def test_missing_schema_dir_is_reported(tmp_path: Path) -> None:
    result = _generate("--schema-dir", str(tmp_path / "absent"), "--output", str(tmp_path / "m.py"))
    assert result.returncode == 2
    assert "not found" in result.stderr
    assert "tools/hcs-schema" in result.stderr
    assert not (tmp_path / "m.py").exists()


def test_releases_are_the_schema_files_in_order() -> None:
    for name in FILES.values():
        assert (SCHEMA_DIR / name).is_file()
    assert tuple(FILES) == schema.RELEASES
    assert len(swagger(FILES["1809"])) == 161
    assert len(swagger(FILES["21H2"])) == 243


def test_since_is_never_later_than_the_first_file_with_the_name() -> None:
    order = list(FILES)
    for name, definition in swagger().items():
        first = next(release for release, file in FILES.items() if name in swagger(file))
        assert order.index(schema.since(name)) <= order.index(first), name
        members = definition.get("enum") or list(definition.get("properties", {}))
        for member in members:
            first_member = next(
                release
                for release, file in FILES.items()
                if member
                in (
                    swagger(file).get(name, {}).get("enum")
                    or swagger(file).get(name, {}).get("properties", {})
                )
            )
            assert order.index(schema.since(name, member)) <= order.index(first_member)


#: Definitions renamed when the 2104 schema disambiguated them, with the property that has
#: always referred to them: their history continues under the older name.
RENAMED = {
    "VirtualMachine_Memory": ("Topology", "Memory"),
    "VirtualMachine_Processor": ("Topology", "Processor"),
    "Container_Memory": ("Container", "Memory"),
    "Container_Processor": ("Container", "Processor"),
    "Container_HvSocket": ("Container", "HvSocket"),
    "VirtualMachine_HvSocket": ("Devices", "HvSocket"),
}


@pytest.mark.parametrize("name", sorted(RENAMED))
def test_renamed_definitions_keep_their_history(name: str) -> None:
    parent, prop = RENAMED[name]
    oldest = next(iter(FILES))
    ref = swagger(FILES[oldest])[parent]["properties"][prop]["$ref"]
    older = swagger(FILES[oldest])[ref.rsplit("/", 1)[1]]
    assert name not in swagger(FILES[oldest])
    assert schema.since(name) == oldest
    for member in older.get("properties", {}):
        if member in swagger()[name].get("properties", {}):
            assert schema.since(name, member) == oldest, member


def test_other_definitions_date_from_the_first_file_with_their_name() -> None:
    # ModifyPropertyType is 1809's PropertyType enum (ModificationRequest.PropertyType).
    renamed = set(RENAMED) | {"ModifyPropertyType"}
    for name in swagger():
        if name in renamed:
            continue
        first = next(release for release, file in FILES.items() if name in swagger(file))
        assert schema.since(name) == first, name


def test_no_swagger_description_prose_is_carried_over() -> None:
    text = MODELS.read_text(encoding="utf-8")
    descriptions = set()
    for definition in swagger().values():
        descriptions.add(definition.get("description", ""))
        for prop in definition.get("properties", {}).values():
            descriptions.add(prop.get("description", ""))
    prose = [d for d in descriptions if len(d) > 25]
    assert prose  # the Swagger does have prose to leave behind
    leaked = [d for d in prose if d.strip() in text]
    assert not leaked


def test_generated_field_specs_follow_the_swagger() -> None:
    for name, definition in swagger().items():
        cls = schema.definition(name)
        if "enum" in definition:
            continue
        assert issubclass(cls, schema.HcsModel)
        properties = definition.get("properties", {})
        public = [prop for prop in cls.__hcs_fields__ if prop not in cls.__hcs_extras__]
        assert public == list(properties)
        for prop, sub in properties.items():
            spec = cls.__hcs_fields__[prop]
            if "$ref" in sub:
                assert spec == "@" + sub["$ref"].rsplit("/", 1)[1]
            elif sub.get("type") == "array":
                assert spec.startswith("[]")
            elif sub.get("type") == "object":
                expected = "{}" if isinstance(sub.get("additionalProperties"), dict) else "any"
                assert spec.startswith(expected), (name, prop, spec)
            elif "pattern" in sub:
                assert spec == "string~" + sub["pattern"]
            elif sub.get("type") == "integer":
                assert spec == sub["format"]
    assert json.dumps(schema.ComputeSystem.__hcs_fields__)  # plain data, JSON-able
