"""computestorage on real directories: import, writable layers, attach union, export, destroy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import u32


def _layer_data(*paths: Path) -> str:
    return json.dumps(
        {
            "SchemaVersion": {"Major": 2, "Minor": 1},
            "Layers": [
                {"Id": f"00000000-0000-0000-0000-00000000000{i}", "Path": str(p)}
                for i, p in enumerate(paths)
            ],
        }
    )


@pytest.mark.usefixtures("storage_mode")
def test_layers_union_and_writes_to_writable_only(table: Table, tmp_path: Path) -> None:
    transport = tmp_path / "download"
    (transport / "Files" / "Windows").mkdir(parents=True)
    (transport / "Files" / "Windows" / "base.txt").write_text("base")
    (transport / "Files" / "shared.txt").write_text("from base")
    base = tmp_path / "layers" / "base"
    assert table.HcsImportLayer(str(base), str(transport), _layer_data()) == 0
    assert table.HcsSetupBaseOSLayer(str(base), ffi.NULL, '{"Type":"Container"}') == 0
    assert (base / "Hives").is_dir()
    assert u32(table.HcsSetupBaseOSLayer(str(base), ffi.NULL, ffi.NULL)) == (
        hr.ERROR_ALREADY_EXISTS
    )
    app = tmp_path / "layers" / "app"
    (app / "Files").mkdir(parents=True)
    (app / "Files" / "shared.txt").write_text("from app")  # top-most wins

    scratch = tmp_path / "scratch"
    data = _layer_data(app, base)  # top-most first
    assert table.HcsInitializeWritableLayer(str(scratch), data, ffi.NULL) == 0
    assert table.HcsAttachLayerStorageFilter(str(scratch), data) == 0
    files = scratch / "Files"
    assert (files / "Windows" / "base.txt").read_text() == "base"
    assert (files / "shared.txt").read_text() == "from app"
    (files / "new.txt").write_text("written in the container")
    assert not (base / "Files" / "new.txt").exists()
    assert (base / "Files" / "shared.txt").read_text() == "from base"

    exported = tmp_path / "export"
    exported.mkdir()
    assert table.HcsExportLayer(str(scratch), str(exported), data, '{"IsWritableLayer":true}') == 0
    assert sorted(p.name for p in (exported / "Files").rglob("*")) == ["new.txt"]
    assert (exported / "tombstones.txt").read_text(encoding="utf-8-sig").startswith("Version 1.0")

    assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
    assert sorted(p.name for p in files.rglob("*")) == ["new.txt"]
    assert u32(table.HcsDetachLayerStorageFilter(str(scratch))) == hr.ERROR_NOT_FOUND
    assert table.HcsDestroyLayer(str(scratch)) == 0
    assert not scratch.exists()
    assert u32(table.HcsDestroyLayer(str(scratch))) == hr.ERROR_PATH_NOT_FOUND


def test_bad_layer_data(table: Table, tmp_path: Path) -> None:
    assert u32(table.HcsInitializeWritableLayer(str(tmp_path / "w"), "{", ffi.NULL)) == (
        hr.HCS_E_INVALID_JSON
    )
    not_a_layer = _layer_data(tmp_path)
    assert u32(table.HcsInitializeWritableLayer(str(tmp_path / "w"), not_a_layer, ffi.NULL)) == (
        hr.HCS_E_INVALID_LAYER
    )


def test_state_files_and_vm_access(table: Table, tmp_path: Path) -> None:
    vmgs = tmp_path / "guest.vmgs"
    assert table.HcsCreateEmptyGuestStateFile(str(vmgs)) == 0
    assert vmgs.is_file()
    assert table.HcsGrantVmAccess("vm-1", str(vmgs)) == 0
    assert u32(table.HcsGrantVmAccess("vm-1", str(tmp_path / "missing"))) == (
        hr.ERROR_FILE_NOT_FOUND
    )
    missing_dir = tmp_path / "nope" / "x.vmrs"
    assert u32(table.HcsCreateEmptyRuntimeStateFile(str(missing_dir))) == hr.ERROR_PATH_NOT_FOUND
    assert u32(table.HcsSubmitWerReport("{")) == hr.HCS_E_INVALID_JSON


@pytest.mark.usefixtures("storage_mode")
def test_destroy_layer_refuses_what_is_not_a_layer(table: Table, tmp_path: Path) -> None:
    """Found by the table fuzz: HcsDestroyLayer deleted any folder it was given."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "precious.txt").write_text("keep")
    layer = tmp_path / "layer"
    (layer / "Files").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(layer)
    for target in (plain, link, plain / "precious.txt"):
        assert u32(table.HcsDestroyLayer(str(target))) == hr.HCS_E_INVALID_LAYER, target
    assert (plain / "precious.txt").read_text() == "keep"
    assert (layer / "Files").is_dir()
    assert table.HcsDestroyLayer(str(layer)) == 0
    assert not layer.exists()
