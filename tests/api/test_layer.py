"""pyhcs.Layer and LayerChain against the emulator service: real layer folders in tmp_path,
import/export round trips with progress, a container on an attached writable layer, typed
errors that name the call and the path, and LayerData documents built from arbitrary input
(hypothesis). The ``hcs`` fixture proves each test leaked no handle or string."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyhcs import ComputeSystem, Layer, LayerChain, errors, schema
from pyhcs import hresult as hr
from pyhcs import layer as layers
from pyhcs.testing import Emulator, FaultInjector

BASE_FILES = {
    "Windows/system.ini": "base",
    "Windows/System32/config/SYSTEM": "hive",
    "shared.txt": "from base",
    "doomed.txt": "x",
}
APP_FILES = {"shared.txt": "from app", "app.txt": "app"}


def transport(root: Path, files: dict[str, str], tombstones: list[str] | None = None) -> Path:
    """A layer in transport format (``Files/`` + optional ``tombstones.txt``) at ``root``."""
    for rel, text in files.items():
        target = root / "Files" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if tombstones is not None:
        lines = ["Version 1.0", *("\\" + t.replace("/", "\\") for t in tombstones)]
        (root / "tombstones.txt").write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    return root


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> text)."""
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def parents(hcs: Emulator, tmp_path: Path) -> tuple[Layer, Layer, LayerChain]:
    """Two imported layers with an overlapping file: (base, app, chain top-most first)."""
    base = Layer(tmp_path / "layers" / "base").import_from(
        transport(tmp_path / "base-download", BASE_FILES)
    )
    base.setup_base_os({"Type": "Container"})
    app = Layer(tmp_path / "layers" / "app").import_from(
        transport(tmp_path / "app-download", APP_FILES), [base]
    )
    return base, app, LayerChain([app, base])


def test_import_export_round_trip_with_progress(hcs: Emulator, tmp_path: Path) -> None:
    source = transport(tmp_path / "download", BASE_FILES)
    reports: list[layers.Progress] = []
    base = Layer(tmp_path / "base", "6D2B8C41-0F7E-4C43-9D1B-6A3C0C3E7F10")
    assert base.import_from(source, progress=reports.append, interval=0.01) is base
    assert base.id == "6d2b8c41-0f7e-4c43-9d1b-6a3c0c3e7f10"
    assert tree(base.files) == BASE_FILES
    assert reports[0].phase == "started"
    assert reports[-1] == layers.Progress("HcsImportLayer", "finished", 4, 4)
    assert reports[-1].fraction == 1.0
    assert all(r.phase == "running" for r in reports[1:-1])
    assert all(r.files_total == len(BASE_FILES) for r in reports)

    exported = tmp_path / "export"
    exported.mkdir()
    export_reports: list[layers.Progress] = []
    assert base.export_to(exported, progress=export_reports.append) == exported
    assert tree(exported / "Files") == BASE_FILES
    assert export_reports[-1].phase == "finished"
    # The export imports again, into a layer with the same content.
    again = Layer(tmp_path / "again").import_from(exported)
    assert tree(again.files) == BASE_FILES
    for layer in (base, again):
        layer.destroy()
        assert not Path(layer.path).exists()


def test_progress_reports_while_the_call_runs_and_a_failing_callback_waits_for_it(
    hcs: Emulator, hcs_faults: FaultInjector, tmp_path: Path
) -> None:
    """The C call is held until the callback has seen a ``running`` report: the report comes
    from the calling thread while the call is in flight. The callback's error is raised only
    after the call (which nothing can stop) has finished its work."""
    source = transport(tmp_path / "download", APP_FILES)
    target = Layer(tmp_path / "app")
    with hcs_faults.hold("HcsImportLayer") as fault:
        release = fault.hold
        assert release is not None

        def report(progress: layers.Progress) -> None:
            if progress.phase == "running":
                release.set()
                raise KeyError("the callback failed")

        with pytest.raises(KeyError, match="the callback failed"):
            target.import_from(source, progress=report, interval=0.01)
    assert tree(target.files) == APP_FILES  # the import ran to its end
    target.destroy()


def test_failed_import_reports_failed_and_raises_typed_error(hcs: Emulator, tmp_path: Path) -> None:
    reports: list[layers.Progress] = []
    missing = tmp_path / "no-download"
    target = Layer(tmp_path / "layer")
    with pytest.raises(errors.NotFoundError) as error:
        target.import_from(missing, progress=reports.append)
    assert error.value.operation == "HcsImportLayer"
    assert str(missing) in str(error.value)
    assert [r.phase for r in reports] == ["started", "failed"]
    assert reports[0].files_total is None  # the source could not be counted
    assert not Path(target.path).exists()


@pytest.mark.skipif(sys.platform == "win32", reason="runs sh in the container")
def test_container_on_an_attached_writable_layer_sees_the_union(
    hcs: Emulator, tmp_path: Path, parents: tuple[Layer, Layer, LayerChain]
) -> None:
    base, app, chain = parents
    scratch = Layer(tmp_path / "scratch").initialize_writable(chain)
    config = {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "Owner": "api-tests",
        "ShouldTerminateOnLastHandleClosed": True,
        "Container": {"Storage": chain.storage(scratch)},
    }
    schema.ComputeSystem.parse(config, strict=True)  # the Storage the chain built is valid
    with scratch.attached(chain), ComputeSystem.create("api-layered", config) as system:
        system.start()
        script = "cat shared.txt Windows/system.ini; echo new > new.txt; rm doomed.txt"
        result = system.run(["sh", "-c", script], check=True)
        assert result.stdout == b"from appbase"
        system.terminate()
        system.wait(10)
        # Writes landed in the writable layer only.
        assert (scratch.files / "new.txt").read_text() == "new\n"
        assert (base.files / "doomed.txt").exists()
        with pytest.raises(errors.InvalidStateError) as busy:
            scratch.destroy()  # its filter is attached
        assert busy.value.operation == "HcsDestroyLayer"
        exported = tmp_path / "export"
        exported.mkdir()
        scratch.export_to(exported, chain, writable=True)
    assert tree(exported / "Files") == {"new.txt": "new\n"}
    tombstones = (exported / "tombstones.txt").read_text(encoding="utf-8-sig").splitlines()
    assert tombstones == ["Version 1.0", "\\doomed.txt"]
    # Detached: the folder holds the layer's own changes only.
    assert tree(scratch.files) == {"new.txt": "new\n"}
    with pytest.raises(errors.NotFoundError):
        scratch.detach_filter()
    # The export, imported over the same parents, gives the container's changes back.
    changes = Layer(tmp_path / "layers" / "changes").import_from(exported, chain)
    assert tree(changes.files) == {"new.txt": "new\n"}
    for layer in (scratch, changes, app, base):
        layer.destroy()


def test_attached_detaches_when_the_block_fails(
    hcs: Emulator, tmp_path: Path, parents: tuple[Layer, Layer, LayerChain]
) -> None:
    _base, _app, chain = parents
    scratch = Layer(tmp_path / "scratch").initialize_writable(chain)
    seen: list[str] = []

    def fail_inside() -> None:
        with scratch.attached(chain):
            seen.append((scratch.files / "app.txt").read_text())
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        fail_inside()
    assert seen == ["app"]
    assert tree(scratch.files) == {}
    with pytest.raises(errors.AlreadyExistsError), scratch.attached(chain):
        scratch.attach_filter(chain)  # attached twice
    assert tree(scratch.files) == {}
    scratch.destroy()


def test_destroy_refuses_what_is_not_a_layer(hcs: Emulator, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "precious.txt").write_text("keep")
    with pytest.raises(errors.InvalidLayerError) as error:
        Layer(plain).destroy()
    assert error.value.operation == "HcsDestroyLayer"
    assert error.value.hresult == hr.HCS_E_INVALID_LAYER
    assert str(plain) in str(error.value)
    assert (plain / "precious.txt").read_text() == "keep"
    with pytest.raises(errors.NotFoundError):
        Layer(tmp_path / "missing").destroy()


def test_bad_input_is_refused_before_anything_changes(
    hcs: Emulator, tmp_path: Path, parents: tuple[Layer, Layer, LayerChain]
) -> None:
    base, _app, _chain = parents
    source = transport(tmp_path / "download", APP_FILES)
    target = tmp_path / "target"
    with pytest.raises(errors.InvalidArgumentError, match="GUID"):
        Layer(target, "not-a-guid")
    with pytest.raises(errors.InvalidArgumentError, match="NUL"):
        Layer(str(target) + "\0x")
    with pytest.raises(errors.InvalidArgumentError, match="bytes"):
        Layer(os.fsencode(target))  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgumentError, match="Layer"):
        Layer(target).import_from(source, [str(base.path)])  # type: ignore[list-item]
    with pytest.raises(errors.InvalidArgumentError, match="no layer id"):
        Layer(target).import_from(source, base.path)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgumentError, match="twice"):
        LayerChain([base, Layer(base.path)])
    with pytest.raises(errors.InvalidArgumentError, match="interval"):
        Layer(target).import_from(source, progress=print, interval=0)
    with pytest.raises(errors.InvalidArgumentError) as nul:
        Layer(target).import_from(str(source) + "\0")
    assert nul.value.operation == "HcsImportLayer"
    assert not target.exists()
    # A parent that is not a layer folder: HCS_E_INVALID_LAYER, nothing imported.
    with pytest.raises(errors.InvalidLayerError) as invalid:
        Layer(target).import_from(source, [Layer(tmp_path / "download" / "Files")])
    assert invalid.value.operation == "HcsImportLayer"
    assert not target.exists()
    # Export into a folder that does not exist: nothing is created.
    with pytest.raises(errors.NotFoundError) as missing:
        base.export_to(tmp_path / "no-export")
    assert str(tmp_path / "no-export") in str(missing.value)
    assert not (tmp_path / "no-export").exists()
    with pytest.raises(errors.InvalidJsonError) as bad_json:
        Layer(target).initialize_legacy_writable(tmp_path, None, "{")
    assert bad_json.value.operation == "HcsInitializeLegacyWritableLayer"
    assert not target.exists()
    with pytest.raises(errors.AlreadyExistsError) as twice:
        base.setup_base_os()
    assert twice.value.operation == "HcsSetupBaseOSLayer"


def test_overlay_on_a_volume_and_legacy_writable_layers(
    hcs: Emulator, tmp_path: Path, parents: tuple[Layer, Layer, LayerChain]
) -> None:
    _base, _app, chain = parents
    volume = tmp_path / "volume"
    volume.mkdir()
    with layers.overlay(volume, chain, filter_type="UnionFS") as mounted:
        assert (mounted / "shared.txt").read_text() == "from app"
        assert (mounted / "Windows" / "system.ini").read_text() == "base"
    assert list(volume.iterdir()) == []
    with pytest.raises(errors.InvalidArgumentError, match="filter_type"):
        layers.attach_overlay(volume, chain, filter_type="NTFS")  # type: ignore[arg-type]
    with pytest.raises(errors.NotFoundError):
        layers.detach_overlay(volume)

    mount = tmp_path / "legacy-volume"
    mount.mkdir()
    legacy = Layer(tmp_path / "legacy").initialize_legacy_writable(mount, chain)
    (mount / "new.txt").write_text("new")
    (mount / "doomed.txt").unlink()
    exported = tmp_path / "legacy-export"
    exported.mkdir()
    assert legacy.export_legacy_writable(mount, exported, chain) == exported
    assert tree(exported / "Files") == {"new.txt": "new"}
    assert "\\doomed.txt" in (exported / "tombstones.txt").read_text(encoding="utf-8-sig")


def test_vhd_format_and_mount_path(hcs: Emulator, tmp_path: Path) -> None:
    vhd = tmp_path / "sandbox.vhdx"
    vhd.write_bytes(b"")
    with open(vhd, "r+b") as disk:
        with pytest.raises(errors.NotFoundError) as unformatted:
            layers.vhd_mount_path(disk)
        assert unformatted.value.operation == "HcsGetLayerVhdMountPath"
        layers.format_writable_layer_vhd(disk)
        mount = layers.vhd_mount_path(disk)  # the string HCS returned is freed (hcs checks)
        assert Path(mount).is_dir()
        # The volume takes a writable layer.
        scratch = Layer(Path(mount) / "scratch").initialize_writable()
        assert scratch.files.is_dir()
    with pytest.raises(errors.InvalidArgumentError, match="VHD handle"):
        layers.format_writable_layer_vhd("sandbox.vhdx")
    with open(tmp_path / "not-a-disk.txt", "w+b") as other, pytest.raises(errors.HcsError) as bad:
        layers.format_writable_layer_vhd(other)
    assert bad.value.hresult == hr.E_HANDLE


def test_repr_and_html(tmp_path: Path) -> None:
    layer = Layer(tmp_path / "a&b", uuid.UUID(int=1), path_type="AbsolutePath")
    assert repr(layer) == (
        f"Layer({str(tmp_path / 'a&b')!r}, id='00000000-0000-0000-0000-000000000001', "
        "path_type='AbsolutePath')"
    )
    assert "a&amp;b" in layer._repr_html_()
    chain = LayerChain([layer])
    assert repr(chain) == f"LayerChain([{layer!r}])"
    assert "a&amp;b" in chain._repr_html_()
    assert chain[0] is layer
    assert chain[:1] == chain
    assert len(chain) == 1


def test_default_ids_are_stable_per_path(tmp_path: Path) -> None:
    assert Layer(tmp_path / "x").id == Layer(str(tmp_path / "x")).id
    assert Layer(tmp_path / "x").id != Layer(tmp_path / "y").id
    assert Layer(tmp_path / "x") == Layer(tmp_path / "x")


# -- LayerData from arbitrary input -------------------------------------------------------------

paths = st.text(min_size=1).filter(lambda s: "\0" not in s)
ids = st.uuids().flatmap(
    lambda u: st.sampled_from(
        [u, str(u), str(u).upper(), "{" + str(u) + "}", u.hex, f"urn:uuid:{u}"]
    )
)
path_types = st.sampled_from([None, "AbsolutePath", "VirtualSmbShareName"])


@st.composite
def chains(draw: Any) -> LayerChain:
    chosen = draw(st.lists(st.tuples(paths, ids, path_types), max_size=6, unique_by=lambda t: t[1]))
    unique = {uuid.UUID(str(i)) if not isinstance(i, uuid.UUID) else i for _p, i, _t in chosen}
    if len(unique) != len(chosen):  # two spellings of one GUID
        chosen = chosen[:1]
    version = draw(st.tuples(st.integers(0, 9), st.integers(0, 9)))
    return LayerChain([Layer(p, i, path_type=t) for p, i, t in chosen], schema_version=version)


@given(chains())
@settings(max_examples=150, deadline=None)
def test_layer_data_round_trips_through_the_schema(chain: LayerChain) -> None:
    document = chain.to_dict()
    assert json.loads(chain.to_json()) == document
    # What HCS would validate: the strict schema accepts it (GUID ids, known PathTypes).
    model = schema.LayerData.parse(chain.to_json(), strict=True)
    assert model.to_dict() == document
    assert LayerChain.from_schema(model) == chain
    assert LayerChain.from_schema(chain.to_json()) == chain
    for layer in chain:
        assert Layer.from_schema(layer.to_schema()) == layer
        assert layer.id == str(uuid.UUID(layer.id))
    assert chain.storage(Layer("scratch"))["Layers"] == document["Layers"]


@given(st.text().filter(lambda s: not _is_guid(s)))
@settings(max_examples=100, deadline=None)
def test_ids_that_are_not_guids_are_refused(text: str) -> None:
    with pytest.raises(errors.InvalidArgumentError):
        Layer("/layers/x", text)


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def test_from_schema_needs_id_and_path() -> None:
    with pytest.raises(errors.InvalidJsonError) as no_path:
        Layer.from_schema({"Id": str(uuid.UUID(int=2))})
    assert no_path.value.json_path == "$.Path"
    with pytest.raises(errors.InvalidJsonError):
        Layer.from_schema('{"Path": "/x"}')


@pytest.fixture(autouse=True)
def _no_overlay_left(tmp_path: Path) -> Iterator[None]:
    """A failed test must not leave an overlay mount under its tmp_path."""
    yield
    if sys.platform != "linux":
        return
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        left = [line.split()[1] for line in mounts if str(tmp_path) in line.split()[1]]
    assert left == [], f"mounts left under {tmp_path}: {left}"
