"""A writable layer keeps what its containers deleted after its storage filter is detached, as
on Windows (the filter keeps tombstones in the layer): an export after detach lists them, a
re-attach keeps the parents' entries hidden, a re-created file is no tombstone. Every test
runs with both storage filters (overlay mount as root, copying attach unprivileged)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, u32
from tests.emulator.test_container_storage import container, run, started_on_layer
from tests.emulator.test_storage import _layer_data
from tests.emulator.test_storage_filter import make_layer, overlay_xattrs, parents, snapshot

pytestmark = pytest.mark.usefixtures("storage_mode")
RECORD = ".pyhcs-deletions.json"


def stop(c: CApi, system: Any) -> None:
    assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    c.t.HcsCloseComputeSystem(system)


def in_container(c: CApi, scratch: Path, data: str, name: str, script: str) -> str:
    """Attach, run ``script`` in a new container on the layer, stop it, detach; its output."""
    assert c.t.HcsAttachLayerStorageFilter(str(scratch), data) == 0
    storage = {"Layers": json.loads(data)["Layers"], "Path": str(scratch)}
    system, code, _ = c.create(name, container(Storage=storage))
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    status, out = run(c, system, f'sh -c "{script}"')
    assert status == 0, out
    stop(c, system)
    assert c.t.HcsDetachLayerStorageFilter(str(scratch)) == 0
    return out


def export(table: Table, scratch: Path, data: str, name: str) -> tuple[dict[str, str], list[str]]:
    """HcsExportLayer into a new folder: (its Files/ snapshot, its tombstones)."""
    folder = scratch.parent / name
    folder.mkdir()
    assert table.HcsExportLayer(str(scratch), str(folder), data, '{"IsWritableLayer":true}') == 0
    lines = (folder / "tombstones.txt").read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "Version 1.0"
    return snapshot(folder / "Files"), lines[1:]


def test_deleted_parent_file_stays_deleted_after_detach(
    table: Table, c: CApi, tmp_path: Path
) -> None:
    base, _app, data = parents(tmp_path)
    scratch = tmp_path / "scratch"
    system = started_on_layer(c, scratch, data, "first")
    assert run(c, system, 'sh -c "rm doomed.txt; echo new > new.txt"') == (0, "")
    stop(c, system)
    attached = export(table, scratch, data, "attached")
    assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
    assert snapshot(scratch / "Files") == {"new.txt": "file:new\n"}
    detached = export(table, scratch, data, "detached")
    assert detached == attached == ({"new.txt": "file:new\n"}, ["\\doomed.txt"])
    # A new container on the re-attached layer: still deleted; the parent keeps its file.
    out = in_container(c, scratch, data, "second", "ls; test ! -e doomed.txt")
    assert out.split() == ["Windows", "app", "new.txt", "redo", "shared.txt", "tree"]
    assert (base / "Files" / "doomed.txt").read_text() == "x"
    assert export(table, scratch, data, "again")[1] == ["\\doomed.txt"]
    assert table.HcsDestroyLayer(str(scratch)) == 0  # the record goes with the layer
    assert not scratch.exists()


def test_recreated_file_is_no_tombstone(table: Table, c: CApi, tmp_path: Path) -> None:
    _base, _app, data = parents(tmp_path)
    scratch = tmp_path / "scratch"
    assert table.HcsInitializeWritableLayer(str(scratch), data, ffi.NULL) == 0
    in_container(c, scratch, data, "deletes", "rm doomed.txt shared.txt")
    assert export(table, scratch, data, "deleted")[1] == ["\\doomed.txt", "\\shared.txt"]
    # Re-created in a later container: the layer's own file, no longer a deletion.
    in_container(c, scratch, data, "recreates", "echo back > doomed.txt")
    files, tombstones = export(table, scratch, data, "recreated")
    assert (files, tombstones) == ({"doomed.txt": "file:back\n"}, ["\\shared.txt"])
    out = in_container(c, scratch, data, "reads", "cat doomed.txt; test ! -e shared.txt")
    assert out == "back\n"
    # Deleted and re-created within one attach: never a tombstone either.
    in_container(c, scratch, data, "both", "rm tree/b.txt; echo again > tree/b.txt")
    files, tombstones = export(table, scratch, data, "both-export")
    assert files["tree/b.txt"] == "file:again\n"
    assert tombstones == ["\\shared.txt"]


def test_deleted_tree_stays_deleted_and_can_be_refilled(
    table: Table, c: CApi, tmp_path: Path
) -> None:
    _base, _app, data = parents(tmp_path)
    scratch = tmp_path / "scratch"
    assert table.HcsInitializeWritableLayer(str(scratch), data, ffi.NULL) == 0
    in_container(c, scratch, data, "deletes", "rm -r tree/a Windows")
    expected = [
        "\\Windows\\System32\\drivers\\etc\\hosts",
        "\\Windows\\system.ini",
        "\\tree\\a\\one.txt",
        "\\tree\\a\\two.txt",
    ]
    assert export(table, scratch, data, "deleted") == ({}, expected)
    record = json.loads((scratch / RECORD).read_text())
    assert record["Hidden"] == ["Windows", "tree/a"]  # a tree is hidden at its top
    # A new Windows/ of the layer's own: none of the parent's old content shows through.
    script = "find Windows tree | sort; mkdir -p Windows/System32; echo own > Windows/new.ini"
    out = in_container(c, scratch, data, "refills", script)
    assert out.split() == ["tree", "tree/b.txt"]
    out = in_container(c, scratch, data, "lists", "find Windows | sort")
    assert out.split() == ["Windows", "Windows/System32", "Windows/new.ini"]
    files, tombstones = export(table, scratch, data, "refilled")
    assert files == {
        "Windows": "dir",
        "Windows/System32": "dir",
        "Windows/new.ini": "file:own\n",
    }
    assert tombstones == expected


def test_imported_tombstones_are_the_layers_deletions(table: Table, tmp_path: Path) -> None:
    """An export imported as a layer keeps its deletions: exporting it gives them back."""
    _base, _app, data = parents(tmp_path)
    scratch = tmp_path / "scratch"
    assert table.HcsInitializeWritableLayer(str(scratch), data, ffi.NULL) == 0
    assert table.HcsAttachLayerStorageFilter(str(scratch), data) == 0
    shutil.rmtree(scratch / "Files" / "tree")
    (scratch / "Files" / "new.txt").write_text("new")
    assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
    exported = scratch.parent / "export"
    exported.mkdir()
    assert table.HcsExportLayer(str(scratch), str(exported), data, ffi.NULL) == 0
    imported = tmp_path / "imported"
    assert table.HcsImportLayer(str(imported), str(exported), data) == 0
    assert snapshot(imported / "Files") == {"new.txt": "file:new"}
    files, tombstones = export(table, imported, data, "re-export")
    assert files == {"new.txt": "file:new"}
    assert tombstones == ["\\tree\\a\\one.txt", "\\tree\\a\\two.txt", "\\tree\\b.txt"]
    assert table.HcsDestroyLayer(str(imported)) == 0
    assert not imported.exists()


def test_tombstoned_directory_with_new_content_shows_only_that(
    table: Table, tmp_path: Path
) -> None:
    """A transport that deletes a parent's directory and fills it anew: attached, the
    directory shows the layer's content only (an opaque directory in the overlay)."""
    _base, _app, data = parents(tmp_path)
    source = make_layer(tmp_path / "source", {"tree/own.txt": "own"})
    (source / "tombstones.txt").write_text("\ufeffVersion 1.0\n\\tree\n", encoding="utf-8")
    layer = tmp_path / "layer"
    assert table.HcsImportLayer(str(layer), str(source), data) == 0
    assert export(table, layer, data, "as-imported")[1] == ["\\tree"]
    for _round in range(2):
        assert table.HcsAttachLayerStorageFilter(str(layer), data) == 0
        assert snapshot(layer / "Files" / "tree") == {"own.txt": "file:own"}
        assert table.HcsDetachLayerStorageFilter(str(layer)) == 0
        assert snapshot(layer / "Files") == {"tree": "dir", "tree/own.txt": "file:own"}
        assert overlay_xattrs(layer / "Files") == []
    files, tombstones = export(table, layer, data, "attached-once")
    assert files == {"tree": "dir", "tree/own.txt": "file:own"}
    assert tombstones == ["\\tree\\a\\one.txt", "\\tree\\a\\two.txt", "\\tree\\b.txt"]


def test_links_in_the_layer_are_never_followed(table: Table, tmp_path: Path) -> None:
    """A deletion recorded below the layer's own link to elsewhere: attach neither puts a
    whiteout nor copies a parent's file through the link."""
    _base, _app, data = parents(tmp_path)
    outside = make_layer(tmp_path / "outside", {"a/keep.txt": "keep"}) / "Files"
    before = snapshot(outside)
    source = make_layer(tmp_path / "source", {})
    (source / "Files" / "tree").symlink_to(outside)
    (source / "tombstones.txt").write_text("\ufeffVersion 1.0\n\\tree\\a\n", encoding="utf-8")
    layer = tmp_path / "layer"
    assert table.HcsImportLayer(str(layer), str(source), data) == 0
    assert table.HcsAttachLayerStorageFilter(str(layer), data) == 0
    assert (layer / "Files" / "tree").readlink() == outside  # the layer's own link wins
    assert table.HcsDetachLayerStorageFilter(str(layer)) == 0
    assert snapshot(outside) == before
    assert snapshot(layer / "Files") == {"tree": f"link:{outside}"}


def test_tombstone_outside_the_layer_is_refused(table: Table, tmp_path: Path) -> None:
    for bad in ("..\\outside.txt", "a\\..\\..\\x", "a\\\\b", "."):
        source = make_layer(tmp_path / "source", {"kept.txt": "k"})
        (source / "tombstones.txt").write_text(f"\ufeffVersion 1.0\n\\{bad}\n", encoding="utf-8")
        target = tmp_path / "target"
        code = u32(table.HcsImportLayer(str(target), str(source), _layer_data()))
        assert code == hr.ERROR_INVALID_DATA, bad
        assert not target.exists()  # refused before anything was copied


# -- a model of the view across detach and re-attach ------------------------------------------

#: The parents: base, and app over it (app's a/x wins); f/ is an empty directory of base.
BASE = {"a/x": "base", "a/b/z": "z", "c": "c", "d/e": "e"}
APP = {"a/x": "app", "g/h": "h"}
PATHS = ["a", "a/x", "a/b", "a/b/z", "a/n", "c", "d", "d/e", "f", "f/k", "g", "g/h"]
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.sampled_from(PATHS), st.sampled_from(["1", "22"])),
        st.tuples(st.just("mkdir"), st.sampled_from(PATHS), st.just("")),
        st.tuples(st.just("rm"), st.sampled_from(PATHS), st.just("")),
        st.tuples(st.just("cycle"), st.just(""), st.just("")),
    ),
    max_size=20,
)


def initial_view() -> dict[str, str]:
    view = {"f": "dir"}
    for files in (BASE, APP):
        for rel, text in files.items():
            parts = rel.split("/")
            view.update({"/".join(parts[:i]): "dir" for i in range(1, len(parts))})
            view[rel] = "file:" + text
    return view


def apply(files: Path, view: dict[str, str], op: str, rel: str, text: str) -> None:
    """One change, to the attached layer's view and to the model, where it makes sense."""
    parent = rel.rpartition("/")[0]
    parent_is_dir = parent == "" or view.get(parent) == "dir"
    if op == "write" and parent_is_dir and view.get(rel, "file:").startswith("file:"):
        (files / rel).write_text(text)
        view[rel] = "file:" + text
    elif op == "mkdir" and parent_is_dir and rel not in view:
        (files / rel).mkdir()
        view[rel] = "dir"
    elif op == "rm" and rel in view:
        if view[rel] == "dir":
            shutil.rmtree(files / rel)
        else:
            (files / rel).unlink()
        for gone in [p for p in view if p == rel or p.startswith(rel + "/")]:
            del view[gone]


@pytest.fixture
def model_parents(tmp_path: Path) -> str:
    base = make_layer(tmp_path / "base", BASE)
    (base / "Files" / "f").mkdir()
    app = make_layer(tmp_path / "app", APP)
    return _layer_data(app, base)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_view_survives_detach_and_reattach(
    table: Table, tmp_path: Path, model_parents: str, ops: list[tuple[str, str, str]]
) -> None:
    data = model_parents
    scratch = Path(tempfile.mkdtemp(dir=tmp_path)) / "scratch"
    files = scratch / "Files"
    assert table.HcsInitializeWritableLayer(str(scratch), data, ffi.NULL) == 0
    assert table.HcsAttachLayerStorageFilter(str(scratch), data) == 0
    view = initial_view()
    try:
        for op, rel, text in ops:
            if op == "cycle":
                assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
                assert table.HcsAttachLayerStorageFilter(str(scratch), data) == 0
                assert snapshot(files) == view
            else:
                apply(files, view, op, rel, text)
        attached = export(table, scratch, data, "attached")
    finally:
        assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
    # The parents' files the view lost are the tombstones, before and after detach alike.
    lower = {*BASE, *APP}
    assert attached[1] == sorted("\\" + r.replace("/", "\\") for r in lower if r not in view)
    assert export(table, scratch, data, "detached") == attached
    assert table.HcsAttachLayerStorageFilter(str(scratch), data) == 0
    assert snapshot(files) == view
    assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
    assert table.HcsDestroyLayer(str(scratch)) == 0
