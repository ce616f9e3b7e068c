"""A container's C:\\ from its storage, mapped directories, hostname, and the VHD, legacy and
overlay storage calls."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, read_all, u32
from tests.emulator.test_storage import _layer_data

SCHEMA = {"Major": 2, "Minor": 1}


def container(**body: Any) -> dict[str, Any]:
    return {"SchemaVersion": SCHEMA, "Owner": "tests", "Container": body}


def run(c: CApi, system: Any, command: str) -> tuple[int, str]:
    """Run a command in the container; (exit code, stdout)."""
    process, code, info, _ = c.spawn(system, {"CommandLine": command, "CreateStdOutPipe": True})
    assert code == 0, hex(code)
    out = read_all(info.StdOutput).decode()
    c.t.CloseHandle(info.StdOutput)
    status = c.wait_process(process)[1]
    c.t.HcsCloseProcess(process)
    return int(status["ExitCode"]), out


def started_on_layer(c: CApi, scratch: Path, data: str, name: str) -> Any:
    """A started container on a new writable layer over ``data``'s parents, filter attached."""
    assert c.t.HcsInitializeWritableLayer(str(scratch), data, ffi.NULL) == 0
    assert c.t.HcsAttachLayerStorageFilter(str(scratch), data) == 0
    storage = {"Layers": json.loads(data)["Layers"], "Path": str(scratch)}
    system, code, _ = c.create(name, container(Storage=storage))
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    return system


@pytest.fixture
def layers(table: Table, tmp_path: Path) -> tuple[Path, Path, str]:
    """Two imported parent layers with an overlapping file: (base, app, LayerData top-first)."""
    made: list[Path] = []
    for name, files in (
        ("base", {"Windows/system.ini": "base", "shared.txt": "from base", "doomed.txt": "x"}),
        ("app", {"shared.txt": "from app", "app.txt": "app"}),
    ):
        transport = tmp_path / f"{name}-download"
        for rel, text in files.items():
            (transport / "Files" / rel).parent.mkdir(parents=True, exist_ok=True)
            (transport / "Files" / rel).write_text(text)
        layer = tmp_path / "layers" / name
        parents = _layer_data(*made[::-1])
        assert table.HcsImportLayer(str(layer), str(transport), parents) == 0
        made.append(layer)
    base, app = made
    return base, app, _layer_data(app, base)


@pytest.mark.usefixtures("storage_mode")
def test_container_root_is_the_union_and_writes_stay_in_the_writable_layer(
    table: Table, c: CApi, tmp_path: Path, layers: tuple[Path, Path, str]
) -> None:
    base, app, data = layers
    scratch = tmp_path / "scratch"
    system = started_on_layer(c, scratch, data, "layered")
    # Processes start in C:\\ (the root), so relative paths are container paths.
    script = "cat shared.txt Windows/system.ini; echo changed > app.txt; echo new > new.txt"
    code, out = run(c, system, f'sh -c "{script}; rm doomed.txt"')
    assert code == 0
    assert out == "from appbase"
    # The parents are untouched; the writable layer holds the changes.
    assert (app / "Files" / "app.txt").read_text() == "app"
    assert (base / "Files" / "doomed.txt").exists()
    assert (scratch / "Files" / "new.txt").read_text() == "new\n"
    assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    table.HcsCloseComputeSystem(system)
    assert scratch.exists()  # a root given by Storage is the caller's: never removed

    exported = tmp_path / "export"
    exported.mkdir()
    assert table.HcsExportLayer(str(scratch), str(exported), data, '{"IsWritableLayer":true}') == 0
    files = sorted(str(p.relative_to(exported / "Files")) for p in (exported / "Files").rglob("*"))
    assert files == ["app.txt", "new.txt"]
    tombstones = (exported / "tombstones.txt").read_text(encoding="utf-8-sig").splitlines()
    assert tombstones == ["Version 1.0", "\\doomed.txt"]
    # Importing the export on top of the parents gives the container's view back.
    again = tmp_path / "layers" / "changes"
    assert table.HcsImportLayer(str(again), str(exported), data) == 0
    assert sorted(p.name for p in (again / "Files").iterdir()) == ["app.txt", "new.txt"]
    assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0


@pytest.mark.usefixtures("storage_mode")
def test_storage_path_errors(
    table: Table, c: CApi, tmp_path: Path, layers: tuple[Path, Path, str]
) -> None:
    _base, _app, data = layers
    missing = container(Storage={"Path": str(tmp_path / "nowhere")})
    system, code, doc = c.create("no-storage", missing)
    assert code == hr.ERROR_PATH_NOT_FOUND
    assert doc is not None
    table.HcsCloseComputeSystem(system)
    scratch = tmp_path / "unattached"
    assert table.HcsInitializeWritableLayer(str(scratch), data, ffi.NULL) == 0
    storage = {"Layers": json.loads(data)["Layers"], "Path": str(scratch)}
    system, code, _ = c.create("unattached", container(Storage=storage))
    assert code == hr.HCS_E_INVALID_LAYER
    table.HcsCloseComputeSystem(system)
    assert c.open("unattached")[1] == hr.HCS_E_SYSTEM_NOT_FOUND


def test_mapped_directories_and_hostname(table: Table, c: CApi, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("from the host")
    mapped = [{"HostPath": str(shared), "ContainerPath": "C:\\data", "ReadOnly": True}]
    doc = container(GuestOs={"HostName": "box1"}, MappedDirectories=mapped)
    system, code, _ = c.create("mapped", doc)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    root = next(p for p in (table.client.directory / "systems").glob("*/root"))
    code, out = run(c, system, 'sh -c "cat data/hello.txt; echo; echo $COMPUTERNAME"')
    assert (code, out) == (0, "from the host\nbox1\n")

    more = tmp_path / "more"
    more.mkdir()
    add = {
        "ResourcePath": "Container/MappedDirectories",
        "RequestType": "Add",
        "Settings": {"HostPath": str(more), "ContainerPath": "C:\\more"},
    }
    modify = table.HcsModifyComputeSystem
    assert c.run(lambda op: modify(system, op, json.dumps(add), ffi.NULL)) == (0, None)
    assert (root / "more").resolve() == more.resolve()
    again = c.run(lambda op: modify(system, op, json.dumps(add), ffi.NULL))
    assert again[0] == hr.ERROR_ALREADY_EXISTS  # the path exists in the container now
    remove = dict(add, RequestType="Remove")
    assert c.run(lambda op: modify(system, op, json.dumps(remove), ffi.NULL)) == (0, None)
    assert not (root / "more").exists()
    assert more.is_dir()  # only the link went away

    assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    assert not (root / "data").exists()  # stop removes the mappings
    assert (shared / "hello.txt").exists()
    table.HcsCloseComputeSystem(system)


def test_bad_mapping_fails_start_and_changes_nothing(table: Table, c: CApi, tmp_path: Path) -> None:
    mapped = [{"HostPath": str(tmp_path / "absent"), "ContainerPath": "C:\\data"}]
    system, code, _ = c.create("bad-map", container(MappedDirectories=mapped))
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", system)[0] == hr.ERROR_PATH_NOT_FOUND
    assert c.properties(system)["State"] == "Created"
    table.HcsCloseComputeSystem(system)


def test_vhd_format_and_mount_path(table: Table, c: CApi, tmp_path: Path) -> None:
    vhd = tmp_path / "sandbox.vhdx"
    vhd.write_bytes(b"")
    fd = os.open(vhd, os.O_RDWR)
    handle = ffi.cast("HANDLE", fd)
    out = ffi.new("PWSTR *")
    assert u32(table.HcsGetLayerVhdMountPath(handle, out)) == hr.ERROR_NOT_FOUND
    assert out[0] == ffi.NULL
    assert table.HcsFormatWritableLayerVhd(handle) == 0
    assert table.HcsGetLayerVhdMountPath(handle, out) == 0
    volume = Path(c.take(out) or "")
    assert volume.is_dir()
    assert u32(table.HcsGetLayerVhdMountPath(handle, ffi.NULL)) == hr.E_POINTER
    stale = ffi.cast("HANDLE", 0x7FFFF)
    assert u32(table.HcsFormatWritableLayerVhd(stale)) == hr.E_HANDLE
    os.close(fd)


def test_legacy_writable_layer_and_overlay(
    table: Table, tmp_path: Path, layers: tuple[Path, Path, str]
) -> None:
    base, _app, data = layers
    mount, folder = tmp_path / "volume", tmp_path / "legacy"
    mount.mkdir()
    assert table.HcsInitializeLegacyWritableLayer(str(mount), str(folder), data, ffi.NULL) == 0
    assert (mount / "shared.txt").read_text() == "from app"
    assert (folder / "Hives").is_dir()
    (mount / "shared.txt").write_text("edited")
    (mount / "doomed.txt").unlink()
    exported = tmp_path / "legacy-export"
    exported.mkdir()
    code = table.HcsExportLegacyWritableLayer(str(mount), str(folder), str(exported), data)
    assert code == 0
    assert sorted(p.name for p in (exported / "Files").rglob("*")) == ["shared.txt"]
    tombstones = (exported / "tombstones.txt").read_text(encoding="utf-8-sig").splitlines()
    assert tombstones == ["Version 1.0", "\\doomed.txt"]

    overlay = tmp_path / "overlay"
    overlay.mkdir()
    union = json.dumps(dict(json.loads(data), FilterType="UnionFS"))
    assert table.HcsAttachOverlayFilter(str(overlay), union) == 0
    assert (overlay / "Windows" / "system.ini").read_text() == "base"
    assert u32(table.HcsAttachOverlayFilter(str(overlay), union)) == hr.ERROR_ALREADY_EXISTS
    bad = json.dumps(dict(json.loads(data), FilterType="Ext4"))
    assert u32(table.HcsDetachOverlayFilter(str(overlay), bad)) == hr.HCS_E_INVALID_JSON
    assert table.HcsDetachOverlayFilter(str(overlay), union) == 0
    assert not any(p.name != ".pyhcs-overlay.json" for p in overlay.iterdir())
    assert u32(table.HcsDetachOverlayFilter(str(overlay), union)) == hr.ERROR_NOT_FOUND

    volume_layer = tmp_path / "layers" / "from-volume"
    volume_layer.mkdir()
    assert table.HcsSetupBaseOSVolume(str(volume_layer), str(base / "Files"), ffi.NULL) == 0
    assert (volume_layer / "Files" / "Windows" / "system.ini").read_text() == "base"
    assert (volume_layer / "Hives").is_dir()


def _isolation_scenario(c: CApi, tmp_path: Path) -> tuple[str, int]:
    """(hostname seen by a process, exit code of a write into a read-only mapped directory)."""
    shared = tmp_path / "ro"
    shared.mkdir()
    mapped = [{"HostPath": str(shared), "ContainerPath": "C:\\ro", "ReadOnly": True}]
    system, code, _ = c.create(
        "isolated", container(GuestOs={"HostName": "box2"}, MappedDirectories=mapped)
    )
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    code, name = run(c, system, "hostname")
    assert code == 0
    write_code, _out = run(c, system, 'sh -c "echo x > ro/file"')
    assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    c.t.HcsCloseComputeSystem(system)
    return name.strip(), write_code


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and bind mounts")
def test_as_root_hostname_and_read_only_are_real(c: CApi, tmp_path: Path) -> None:
    name, write_code = _isolation_scenario(c, tmp_path)
    assert name == "box2"
    assert write_code != 0  # read-only bind mount
    assert not (tmp_path / "ro" / "file").exists()
    assert os.uname().nodename != "box2"  # the host's name is untouched


def test_unprivileged_hostname_and_read_only_are_emulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyhcs.emulator.client import autostart
    from pyhcs.emulator.client.backend import open_table
    from tests.emulator.conftest import assert_clean, stop_service

    monkeypatch.setenv("PYHCS_EMULATOR_UNPRIVILEGED", "1")
    pid = autostart.start(tmp_path / "emu")
    table = open_table(tmp_path / "emu")
    try:
        name, write_code = _isolation_scenario(CApi(table), tmp_path)
        assert name == os.uname().nodename  # only COMPUTERNAME carries the container's name
        assert write_code == 0  # ReadOnly is not enforced without privileges (documented)
        assert (tmp_path / "ro" / "file").exists()
        assert_clean(table)
    finally:
        table.close()
        stop_service(pid)
