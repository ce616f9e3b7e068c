"""The writable layer's storage filter in both forms: an overlay mount as root, the copying
attach without privileges. Both must give the same container view, the same
export and the same ``Files/`` after detach; the overlay must never stay mounted."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pyhcs import hresult as hr
from pyhcs.emulator.client import overlayfs
from pyhcs.emulator.client.table import Table
from pyhcs.emulator.privilege import UNPRIVILEGED_ENV
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, u32
from tests.emulator.test_container_storage import container, run, started_on_layer
from tests.emulator.test_storage import _layer_data

#: Overlay-only tests (skipped unless root with overlayfs); no mount may outlive them.
overlay_only = pytest.mark.usefixtures("overlay_mode")
HIDDEN = (".pyhcs-upper", ".pyhcs-work")


def make_layer(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / "Files" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "Files" / rel).write_text(text)
    (root / "Files").mkdir(parents=True, exist_ok=True)
    return root


def parents(tmp_path: Path) -> tuple[Path, Path, str]:
    """(base, app, LayerData top-most first) with shadowed files, nested and removable dirs."""
    base = make_layer(
        tmp_path / "base",
        {
            "Windows/system.ini": "base",
            "Windows/System32/drivers/etc/hosts": "127.0.0.1",
            "shared.txt": "from base",
            "doomed.txt": "x",
            "tree/a/one.txt": "1",
            "tree/a/two.txt": "2",
            "tree/b.txt": "b",
            "redo/old.txt": "old",
        },
    )
    app = make_layer(tmp_path / "app", {"shared.txt": "from app", "app/app.txt": "app"})
    return base, app, _layer_data(app, base)


def snapshot(root: Path) -> dict[str, str]:
    """Every entry below ``root``: kind and content (files, links, dirs, devices)."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            found[rel] = "link:" + os.readlink(path)
        elif stat.S_ISDIR(st.st_mode):
            found[rel] = "dir"
        elif stat.S_ISREG(st.st_mode):
            found[rel] = "file:" + path.read_text()
        else:
            found[rel] = f"other:{st.st_mode:o}"
    return found


def overlay_xattrs(root: Path) -> list[str]:
    return [
        f"{p}:{name}"
        for p in [root, *root.rglob("*")]
        for name in os.listxattr(p, follow_symlinks=False)
        if name.startswith("trusted.overlay.")
    ]


def mounted_under(root: Path) -> list[Path]:
    return [m.target for m in overlayfs.mounts() if root.resolve() in m.target.parents]


@pytest.mark.usefixtures("storage_mode")
def test_own_files_survive_attach_and_detach(table: Table, tmp_path: Path) -> None:
    _base, _app, data = parents(tmp_path)
    scratch = tmp_path / "scratch"
    assert table.HcsInitializeWritableLayer(str(scratch), data, ffi.NULL) == 0
    make_layer(scratch, {"shared.txt": "own", "own/deep/file.txt": "mine", "app/extra.txt": "+"})
    (scratch / "Files" / "empty").mkdir()
    before = snapshot(scratch / "Files")
    for _round in range(2):  # re-attach after detach behaves the same
        assert table.HcsAttachLayerStorageFilter(str(scratch), data) == 0
        files = scratch / "Files"
        assert (files / "shared.txt").read_text() == "own"  # the layer's own files win
        assert (files / "Windows" / "system.ini").read_text() == "base"
        assert sorted(p.name for p in (files / "app").iterdir()) == ["app.txt", "extra.txt"]
        assert (files / "own" / "deep" / "file.txt").read_text() == "mine"
        again = u32(table.HcsAttachLayerStorageFilter(str(scratch), data))
        assert again == hr.ERROR_ALREADY_EXISTS
        assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
        assert snapshot(scratch / "Files") == before
        assert not any((scratch / name).exists() for name in HIDDEN)
        assert mounted_under(tmp_path) == []
    assert u32(table.HcsDetachLayerStorageFilter(str(scratch))) == hr.ERROR_NOT_FOUND


@pytest.mark.usefixtures("storage_mode")
def test_attach_without_parents(table: Table, tmp_path: Path) -> None:
    scratch = make_layer(tmp_path / "scratch", {"own.txt": "own"})
    assert table.HcsAttachLayerStorageFilter(str(scratch), _layer_data()) == 0
    assert mounted_under(tmp_path) == []  # nothing to lay over: nothing mounted
    assert snapshot(scratch / "Files") == {"own.txt": "file:own"}
    assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
    assert snapshot(scratch / "Files") == {"own.txt": "file:own"}


@pytest.mark.usefixtures("storage_mode")
def test_destroy_refuses_an_attached_layer(table: Table, tmp_path: Path) -> None:
    _base, _app, data = parents(tmp_path)
    scratch = tmp_path / "scratch"
    assert table.HcsInitializeWritableLayer(str(scratch), data, ffi.NULL) == 0
    assert table.HcsAttachLayerStorageFilter(str(scratch), data) == 0
    (scratch / "Files" / "work.txt").write_text("unsaved")
    assert u32(table.HcsDestroyLayer(str(scratch))) == hr.ERROR_BUSY
    assert (scratch / "Files" / "work.txt").read_text() == "unsaved"
    assert (scratch / "Files" / "shared.txt").read_text() == "from app"
    assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
    assert table.HcsDestroyLayer(str(scratch)) == 0
    assert not scratch.exists()
    assert (tmp_path / "base" / "Files" / "shared.txt").read_text() == "from base"


#: Run in the container: change, add, delete a file, delete a tree, replace a parent's
#: directory with new content (an opaque directory in overlayfs), add a link.
CHANGES = (
    "echo changed > Windows/system.ini; echo new > new.txt; rm doomed.txt; rm -r tree/a; "
    "rm -r redo; mkdir -p redo/sub made/deeper; echo fresh > redo/sub/new.txt; "
    "ln -s Windows/system.ini link.ini; cat shared.txt app/app.txt"
)


def _changes_in_a_container(c: CApi, tmp_path: Path, name: str) -> tuple[Path, str]:
    """Attach, run CHANGES in a container on the writable layer; (scratch, data)."""
    _base, _app, data = parents(tmp_path / name)
    scratch = tmp_path / name / "scratch"
    system = started_on_layer(c, scratch, data, name)
    code, out = run(c, system, f'sh -c "{CHANGES}"')
    assert (code, out) == (0, "from appapp")
    assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    c.t.HcsCloseComputeSystem(system)
    return scratch, data


def _export(table: Table, scratch: Path, data: str) -> Path:
    exported = scratch.parent / "export"
    exported.mkdir()
    assert table.HcsExportLayer(str(scratch), str(exported), data, '{"IsWritableLayer":true}') == 0
    return exported


@overlay_only
def test_overlay_and_copy_give_the_same_export_and_files(
    table: Table, c: CApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results: dict[str, tuple[dict[str, str], list[str], dict[str, str]]] = {}
    for mode in ("overlay", "copy"):
        if mode == "copy":
            monkeypatch.setenv(UNPRIVILEGED_ENV, "1")
        else:
            monkeypatch.delenv(UNPRIVILEGED_ENV, raising=False)
        scratch, data = _changes_in_a_container(c, tmp_path, mode)
        assert bool(mounted_under(scratch)) == (mode == "overlay")
        exported = _export(table, scratch, data)
        deletions = (exported / "tombstones.txt").read_text(encoding="utf-8-sig")
        assert overlay_xattrs(exported) == []
        assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
        assert overlay_xattrs(scratch / "Files") == []
        results[mode] = (
            snapshot(exported / "Files"),
            deletions.splitlines(),
            snapshot(scratch / "Files"),
        )
    assert results["overlay"] == results["copy"]
    files, tombstones, after_detach = results["overlay"]
    assert files == {
        "Windows": "dir",
        "Windows/system.ini": "file:changed\n",
        "link.ini": "link:Windows/system.ini",
        "made": "dir",
        "made/deeper": "dir",
        "new.txt": "file:new\n",
        "redo": "dir",
        "redo/sub": "dir",
        "redo/sub/new.txt": "file:fresh\n",
    }
    assert tombstones == [
        "Version 1.0",
        "\\doomed.txt",
        "\\redo\\old.txt",
        "\\tree\\a\\one.txt",
        "\\tree\\a\\two.txt",
    ]
    assert after_detach == files  # Files/ holds exactly the layer's own content again


@overlay_only
def test_overlay_is_mounted_while_attached_only(table: Table, tmp_path: Path) -> None:
    _base, _app, data = parents(tmp_path)
    scratch = tmp_path / "scratch"
    assert table.HcsInitializeWritableLayer(str(scratch), data, ffi.NULL) == 0
    assert table.HcsAttachLayerStorageFilter(str(scratch), data) == 0
    mine = [m for m in overlayfs.mounts() if m.target == (scratch / "Files").resolve()]
    assert [m.upper for m in mine] == [(scratch / ".pyhcs-upper").resolve()]
    (scratch / "Files" / "doomed.txt").unlink()  # a whiteout in the upper directory
    whiteout = (scratch / ".pyhcs-upper" / "doomed.txt").lstat()
    assert overlayfs.is_whiteout(whiteout)
    assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
    assert mounted_under(tmp_path) == []
    assert snapshot(scratch / "Files") == {}  # no whiteout device exported as a file
    # The deletion stays in the layer (as the filter keeps it on Windows), in its record.
    assert sorted(p.name for p in scratch.iterdir()) == [
        ".pyhcs-deletions.json",
        "Files",
        "layerchain.json",
    ]


@overlay_only
def test_busy_detach_fails_and_changes_nothing(table: Table, c: CApi, tmp_path: Path) -> None:
    _base, _app, data = parents(tmp_path)
    scratch = tmp_path / "scratch"
    system = started_on_layer(c, scratch, data, "busy")
    # A process working in C:\\ (the mount) until its stdin closes.
    process, code, info, _ = c.spawn(system, {"CommandLine": "cat", "CreateStdInPipe": True})
    assert code == 0
    try:
        assert u32(table.HcsDetachLayerStorageFilter(str(scratch))) == hr.ERROR_BUSY
        assert mounted_under(tmp_path) == [(scratch / "Files").resolve()]
        assert (scratch / "Files" / "shared.txt").read_text() == "from app"
    finally:
        assert table.CloseHandle(info.StdInput) == 1
        assert c.wait_process(process)[0] == 0
        table.HcsCloseProcess(process)
        assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
        table.HcsCloseComputeSystem(system)
    assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
    assert mounted_under(tmp_path) == []


@overlay_only
def test_failed_mount_is_undone(table: Table, c: CApi, tmp_path: Path) -> None:
    """A parent inside the writable layer's own files: once those move to the upper
    directory, the lower directory is gone and the kernel refuses the mount."""
    scratch = make_layer(tmp_path / "scratch", {"own.txt": "own"})
    inner = make_layer(scratch / "Files" / "inner", {"x.txt": "x"})
    before = snapshot(scratch / "Files")
    data = _layer_data(inner)
    assert u32(table.HcsAttachLayerStorageFilter(str(scratch), data)) == hr.ERROR_PATH_NOT_FOUND
    assert snapshot(scratch / "Files") == before
    assert sorted(p.name for p in scratch.iterdir()) == ["Files"]
    assert mounted_under(tmp_path) == []
    storage = {"Layers": json.loads(data)["Layers"], "Path": str(scratch)}
    system, code, _ = c.create("not-attached", container(Storage=storage))
    assert code == hr.HCS_E_INVALID_LAYER
    table.HcsCloseComputeSystem(system)


@overlay_only
def test_paths_overlay_options_cannot_hold_are_refused(table: Table, tmp_path: Path) -> None:
    base = make_layer(tmp_path / "par:ent", {"a.txt": "a"})
    for name, parent in (("scratch,1", tmp_path / "base"), ("scratch", base)):
        make_layer(tmp_path / "base", {"a.txt": "a"})
        scratch = make_layer(tmp_path / name, {"own.txt": "own"})
        code = u32(table.HcsAttachLayerStorageFilter(str(scratch), _layer_data(parent)))
        assert code == hr.E_INVALIDARG
        assert sorted(p.name for p in scratch.iterdir()) == ["Files"]
        assert snapshot(scratch / "Files") == {"own.txt": "file:own"}
    # More parents than one mount(2) option page can name.
    many = [make_layer(tmp_path / ("p" * 150 + str(i)), {}) for i in range(30)]
    scratch = make_layer(tmp_path / "scratch-many", {})
    code = u32(table.HcsAttachLayerStorageFilter(str(scratch), _layer_data(*many)))
    assert code == hr.ERROR_FILENAME_EXCED_RANGE
    assert mounted_under(tmp_path) == []


_NAMES = st.one_of(
    st.text(alphabet="ab -_é\u00a0,:\\\t", min_size=1, max_size=12),
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="/\x00"),
        min_size=1,
        max_size=30,
    ),
).filter(lambda n: n not in (".", ".."))


@overlay_only
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(layer_name=_NAMES, parent_name=_NAMES)
def test_any_folder_name_is_mounted_or_refused_cleanly(
    table: Table, tmp_path: Path, layer_name: str, parent_name: str
) -> None:
    home = Path(tempfile.mkdtemp(dir=tmp_path))
    parent = make_layer(home / f"p-{parent_name}", {"from-parent.txt": "p"})
    scratch = make_layer(home / f"w-{layer_name}", {"own.txt": "own"})
    code = u32(table.HcsAttachLayerStorageFilter(str(scratch), _layer_data(parent)))
    unsafe = any(ch in ",:\\" or not ch.isprintable() for ch in str(parent) + str(scratch))
    event("refused" if unsafe else "mounted")
    if unsafe:
        assert code == hr.E_INVALIDARG
    else:
        assert code == 0
        assert snapshot(scratch / "Files") == {
            "from-parent.txt": "file:p",
            "own.txt": "file:own",
        }
        assert mounted_under(home) == [(scratch / "Files").resolve()]
        assert table.HcsDetachLayerStorageFilter(str(scratch)) == 0
    assert mounted_under(home) == []
    assert snapshot(scratch) == {"Files": "dir", "Files/own.txt": "file:own"}
