"""computestorage on real directories (the layer layout: ``Files/``, ``Hives/``, ...).

Layers are directories. Attaching the storage filter to a writable layer makes its ``Files/``
show the union of its parent layers (top-most layer wins, the writable layer's own files win
over all), so a container running on it sees the union and every write lands in the writable
layer only. Two ways, chosen at attach and recorded in the layer (``ATTACH_RECORD``):

- as root, where the kernel has overlayfs (and ``PYHCS_EMULATOR_UNPRIVILEGED`` is not set), an
  overlay mount on ``Files/`` (``overlayfs``): the parents' ``Files/`` are the lower
  directories, the layer's own files move into its private upper directory (``.pyhcs-upper``,
  beside ``.pyhcs-work``) for the time of the attach. Attaching costs the same whatever the
  image size. Detach unmounts (never lazily: a mount in use fails with ERROR_BUSY and stays) and
  moves the upper directory's content back into ``Files/`` without overlayfs' whiteouts and
  attributes; export reads the upper directory (changes) and turns deletions into tombstones;
- otherwise (the documented unprivileged fallback) attach copies the union into ``Files/`` and
  records what it copied; detach removes the copies still identical to what was copied and
  export skips them. Attaching costs time and space in proportion to the image.

Both give the same container view, the same export (the layer's own changes, tombstones for
the parents' files deleted) and the same ``Files/`` after detach. A failed overlay attach is an
error with its HRESULT, never a quiet switch to copying. A layer without parents is attached
by the copying path, which then copies nothing.

Deletions outlive the attach, as on Windows, where the filter keeps them in the layer: detach
records the parents' entries the merged view no longer shows in ``DELETIONS`` beside
``Files/``; attach honours them (whiteouts in the upper directory, or not copying them);
export lists them as tombstones (while attached: what the merged view misses now, so a file
re-created after its deletion is none). Import records the transport's tombstones the same way.
All calls are synchronous and run in the caller's process (same host as the service).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from pyhcs import hresult as hr
from pyhcs.emulator.client import overlayfs
from pyhcs.emulator.documents import ATTACH_RECORD, CHAIN

#: The private folders of a writable layer attached as an overlay, beside its ``Files/``.
UPPER = ".pyhcs-upper"
WORK = ".pyhcs-work"
#: ``Mode`` of an ATTACH_RECORD written by an overlay attach (a copying attach has none).
OVERLAY_MODE = "overlay"
#: In a layer, beside ``Files/``: the parents' entries it deleted (see ``Deletions``).
DELETIONS = ".pyhcs-deletions.json"
DELETIONS_FORMAT = "pyhcs-layer-deletions/1"


class StorageError(Exception):
    """A storage call failed with an HRESULT."""

    def __init__(self, hresult: int, message: str) -> None:
        super().__init__(message)
        self.hresult = hresult


def _layers(layer_data: str | None) -> list[Path]:
    """Parent layer paths, top-most first, from a LayerData document."""
    if not layer_data:
        return []
    try:
        doc = json.loads(layer_data)
    except json.JSONDecodeError as exc:
        raise StorageError(hr.HCS_E_INVALID_JSON, f"LayerData: {exc.msg}") from exc
    layers = doc.get("Layers", []) if isinstance(doc, dict) else None
    if not isinstance(layers, list) or not all(
        isinstance(x, dict) and isinstance(x.get("Path"), str) for x in layers
    ):
        raise StorageError(hr.HCS_E_INVALID_JSON, "LayerData.Layers must list {Id, Path}")
    paths = [Path(x["Path"]) for x in layers]
    for path in paths:
        if not (path / "Files").is_dir():
            raise StorageError(hr.HCS_E_INVALID_LAYER, f"{path} is not a layer (no Files/)")
    return paths


def _require_dir(path: Path) -> None:
    if not path.is_dir():
        raise StorageError(hr.ERROR_PATH_NOT_FOUND, f"{path} does not exist")


def import_layer(layer: str, source: str, layer_data: str | None) -> None:
    """Copy the transport layout; its tombstones are the layer's deletions (recorded as a
    detach records them, so an export gives them back): a file the transport also holds at
    a tombstone's path is removed. A tombstone that is not a plain relative path (``..``,
    ``.``, empty components) is refused before anything is copied."""
    _layers(layer_data)
    src = Path(source)
    _require_dir(src / "Files")
    tombstones = src / "tombstones.txt"
    deleted = _read_tombstones(tombstones) if tombstones.is_file() else []
    dest = Path(layer)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Files", "Hives", "UtilityVM"):
        if (src / name).is_dir():
            shutil.copytree(src / name, dest / name, symlinks=True, dirs_exist_ok=True)
    if tombstones.is_file():
        for rel in deleted:
            target = dest / "Files" / rel
            if _inside(dest / "Files", rel) and target.is_file() and not target.is_symlink():
                target.unlink()
        shutil.copy2(tombstones, dest / "tombstones.txt")
        known = _read_deletions(dest)
        _write_deletions(
            dest,
            Deletions(sorted({*known.hidden, *deleted}), sorted({*known.tombstones, *deleted})),
        )


def _read_tombstones(path: Path) -> list[str]:
    """The relative paths (``/``-separated) a tombstones.txt lists."""
    found = []
    for line in path.read_text(encoding="utf-8-sig").splitlines()[1:]:
        if not line.strip():
            continue
        rel = _relative(line.strip().strip("\\/").replace("\\", "/"))  # "\\dir\\" is dir
        if rel is None:
            raise StorageError(
                hr.ERROR_INVALID_DATA, f"{path}: {line.strip()!r} is not a path inside the layer"
            )
        found.append(rel)
    return found


def _relative(text: str) -> str | None:
    """``text`` when it is a plain relative path (no ``..``, ``.`` or empty component)."""
    parts = text.split("/")
    if not text or any(part in ("", ".", "..") or "\0" in part for part in parts):
        return None
    return text


def _inside(root: Path, rel: str) -> bool:
    """Every directory on the way from ``root`` to ``rel`` is a real directory (no link), so
    ``root / rel`` names an entry inside ``root``."""
    current = root
    for part in rel.split("/")[:-1]:
        current = current / part
        try:
            if not stat.S_ISDIR(current.lstat().st_mode):
                return False
        except FileNotFoundError:
            return False
    return True


def export_layer(layer: str, export: str, layer_data: str | None, options: str | None) -> None:
    _layers(layer_data)
    src, dest = Path(layer), Path(export)
    _require_dir(src / "Files")
    _require_dir(dest)
    loaded = _read_record(src)
    if loaded is not None and loaded.get("Mode") == OVERLAY_MODE:
        _export_overlay(src, dest, loaded)
        return
    record, created = _attach_record(src)
    if loaded is None:  # detached: the deletions it recorded
        tombstones = _read_deletions(src).tombstones
    else:  # attached: what the union (Files/) no longer shows
        tombstones = _copy_deletions(src, loaded).tombstones
    for name in ("Files", "Hives", "UtilityVM"):
        if (src / name).is_dir():
            shutil.copytree(
                src / name,
                dest / name,
                symlinks=True,
                dirs_exist_ok=True,
                ignore=_ignore_copied(src / name, record) if name == "Files" else None,
            )
    if (dest / "Files").is_dir():
        _prune(dest / "Files", created)
    _write_tombstones(dest, tombstones)


def _export_overlay(src: Path, dest: Path, loaded: dict[str, Any]) -> None:
    """Export of a layer attached as an overlay: its upper directory is exactly its own
    content and changes (whiteouts and overlayfs' attributes left out); a parent's file that
    the merged view no longer shows is a tombstone."""
    upper = src.resolve() / UPPER
    for name in ("Hives", "UtilityVM"):
        if (src / name).is_dir():
            shutil.copytree(src / name, dest / name, symlinks=True, dirs_exist_ok=True)
    shutil.copytree(
        upper, dest / "Files", symlinks=True, dirs_exist_ok=True, ignore=_ignore_whiteouts
    )
    _settle(dest / "Files", _copied_up(loaded))
    _write_tombstones(dest, _overlay_deletions(src.resolve(), loaded).tombstones)


def _copied_up(loaded: dict[str, Any]) -> set[str]:
    """The parents' directories an overlay's upper directory may hold as copies: the ones
    the merged view showed at attach (not the layer's own, not hidden by its deletions)."""
    lower_dirs = _lower_entries([Path(p) for p in loaded["lowers"]])[1]
    hidden = _hides(loaded.get("hidden", []))
    return {d for d in lower_dirs - set(loaded["own_dirs"]) if not hidden(d)}


def _lower_entries(lowers: list[Path]) -> tuple[set[str], set[str]]:
    """(files and links, directories) of the union of ``lowers``, relative to them."""
    files: set[str] = set()
    dirs: set[str] = set()
    for lower in lowers:
        for directory, subdirs, names in os.walk(lower):
            rel_dir = Path(directory).relative_to(lower)
            dirs.add(str(rel_dir))
            links = [d for d in subdirs if (Path(directory) / d).is_symlink()]
            files.update(str(rel_dir / name) for name in [*names, *links])
    return files, dirs


def _settle(root: Path, copied_up: set[str]) -> None:
    """Make an overlay upper directory (or a copy of one) plain layer content: whiteouts
    removed, overlayfs' attributes removed, and the ``copied_up`` directories (a parent's, that
    overlayfs copied up because something inside changed) removed where nothing is left in
    them — as the copying attach removes the directories it created."""
    for directory, _dirs, names in os.walk(root, topdown=False):
        full = Path(directory)
        for name in names:
            entry = full / name
            if overlayfs.is_whiteout(entry.lstat()):
                entry.unlink()
            else:
                overlayfs.strip_xattrs(entry)
        overlayfs.strip_xattrs(full)
        rel = str(full.relative_to(root))
        if rel != "." and rel in copied_up and not any(full.iterdir()):
            full.rmdir()


def _ignore_whiteouts(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if overlayfs.is_whiteout(os.lstat(os.path.join(directory, n)))}


class Deletions(NamedTuple):
    """A layer's deletions of its parents' entries. ``hidden``: each path hides itself and
    everything below it (what attach honours); ``tombstones``: the files and links among the
    hidden entries (what export lists, as Windows does for a deleted tree)."""

    hidden: list[str]
    tombstones: list[str]


def _read_deletions(layer: Path) -> Deletions:
    """The deletions recorded in ``layer`` (none when there is no record); never follows a
    link; a record that is not one is ERROR_INVALID_DATA."""
    path = layer / DELETIONS
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return Deletions([], [])
    with os.fdopen(fd, encoding="utf-8") as f:
        text = f.read()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    lists = [doc.get(key) for key in ("Hidden", "Tombstones")] if isinstance(doc, dict) else []
    if (
        not isinstance(doc, dict)
        or doc.get("Format") != DELETIONS_FORMAT
        or not all(
            isinstance(x, list) and all(isinstance(r, str) and _relative(r) for r in x)
            for x in lists
        )
    ):
        raise StorageError(hr.ERROR_INVALID_DATA, f"{path} is not a deletions record")
    return Deletions(list(doc["Hidden"]), list(doc["Tombstones"]))


def _write_deletions(layer: Path, deletions: Deletions) -> None:
    """Record ``deletions`` in ``layer`` atomically (a new file, created without following
    links, renamed over the old record); no deletions: no record."""
    path = layer / DELETIONS
    if not deletions.hidden and not deletions.tombstones:
        path.unlink(missing_ok=True)
        return
    doc = {
        "Format": DELETIONS_FORMAT,
        "Hidden": sorted(deletions.hidden),
        "Tombstones": sorted(deletions.tombstones),
    }
    fd, temporary = tempfile.mkstemp(prefix=DELETIONS + ".", dir=layer)  # O_EXCL|O_NOFOLLOW
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=0)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


#: What the merged view shows at a path: "dir", "other" (file, link, device) or None.
View = Callable[[str], str | None]


def _prefixes(rel: str) -> list[str]:
    """The proper ancestors of ``rel``, outermost first (``a``, ``a/b`` for ``a/b/c``)."""
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _shown(rel: str, view: View) -> str:
    """ "shown", "gone" (every ancestor is a directory in the view, ``rel`` is not there: a
    deletion of its own) or "covered" (an ancestor is gone or is no directory)."""
    if any(view(p) != "dir" for p in _prefixes(rel)):
        return "covered"
    return "gone" if view(rel) is None else "shown"


def _deletions(
    lower_files: set[str], lower_dirs: set[str], recorded: Deletions, view: View
) -> Deletions:
    """The deletions of a layer whose merged view is ``view``: the parents' entries it does
    not show (and recorded ones still not shown). Hidden: only where the entry itself is gone
    (what is under a gone entry, or under the layer's own file, needs no record of its own)."""
    entries = (lower_files | lower_dirs) - {"."}
    hidden = {rel for rel in {*entries, *recorded.hidden} if _shown(rel, view) == "gone"}
    tombstones = {
        rel for rel in {*lower_files, *recorded.tombstones} if _shown(rel, view) != "shown"
    }
    return Deletions(sorted(hidden), sorted(tombstones))


def _tree(root: Path) -> dict[str, str]:
    """Every entry below ``root`` (never following a link): "dir", "whiteout" or "other"."""
    kinds: dict[str, str] = {}
    for directory, subdirs, names in os.walk(root):
        base = Path(directory)
        rel_dir = base.relative_to(root)
        for name in [*subdirs, *names]:
            st = (base / name).lstat()
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "other"
            kinds[str(rel_dir / name)] = "whiteout" if overlayfs.is_whiteout(st) else kind
    return kinds


def _copy_deletions(layer: Path, loaded: dict[str, Any]) -> Deletions:
    """Deletions of a layer attached by copying: its ``Files/`` is the merged view."""
    if not isinstance(loaded.get("lowers"), list):
        raise StorageError(hr.ERROR_INVALID_DATA, f"{layer / ATTACH_RECORD} names no parents")
    lower_files, lower_dirs = _lower_entries([Path(p) for p in loaded["lowers"]])
    return _deletions(lower_files, lower_dirs, _read_deletions(layer), _tree(layer / "Files").get)


def _overlay_deletions(root: Path, loaded: dict[str, Any]) -> Deletions:
    """Deletions of a layer attached as an overlay, read from its upper directory as
    overlayfs reads it (mounted or not): a whiteout hides the lower entry, an opaque
    directory everything the lower ones hold below it, the upper entry wins over the lower."""
    lower_files, lower_dirs = _lower_entries([Path(p) for p in loaded["lowers"]])
    upper = root / UPPER
    own = _tree(upper)
    opaque = {r for r, kind in own.items() if kind == "dir" and overlayfs.is_opaque(upper / r)}

    def view(rel: str) -> str | None:
        kind = own.get(rel)
        if kind is not None:
            return None if kind == "whiteout" else kind
        if any(p in opaque for p in _prefixes(rel)):
            return None
        return "dir" if rel in lower_dirs else "other" if rel in lower_files else None

    return _deletions(lower_files, lower_dirs, _read_deletions(root), view)


def _hides(hidden: Iterable[str]) -> Callable[[str], bool]:
    """Whether a path is hidden by one of ``hidden`` (itself or an ancestor)."""
    paths = set(hidden)
    return lambda rel: rel in paths or any(p in paths for p in _prefixes(rel))


def _write_tombstones(dest: Path, deleted: list[str]) -> None:
    """tombstones.txt of the transport format: BOM, ``Version 1.0``, one ``\\path`` a line."""
    lines = ["Version 1.0", *("\\" + rel.replace("/", "\\") for rel in deleted)]
    (dest / "tombstones.txt").write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")


#: What makes a folder a layer: only such a folder is ever destroyed.
_LAYER_MARKERS = ("Files", "Hives", CHAIN)


def destroy_layer(layer: str) -> None:
    """Delete a layer folder — and nothing that is not one: a folder without the layer layout,
    a link, or a mount point (``/`` included) is refused with HCS_E_INVALID_LAYER."""
    path = Path(layer)
    if not path.exists():
        raise StorageError(hr.ERROR_PATH_NOT_FOUND, f"{path} does not exist")
    if (
        path.is_symlink()
        or not path.is_dir()
        or os.path.ismount(path)
        or not any((path / marker).exists() for marker in _LAYER_MARKERS)
    ):
        raise StorageError(hr.HCS_E_INVALID_LAYER, f"{path} is not a layer folder")
    if (path / ATTACH_RECORD).exists():
        raise StorageError(
            hr.ERROR_BUSY,
            f"{path} has its storage filter attached (HcsDetachLayerStorageFilter first)",
        )
    inside = overlayfs.mounts_under(path.resolve())
    if inside:
        raise StorageError(hr.ERROR_BUSY, f"{path} holds a mount point ({inside[0]})")
    shutil.rmtree(path)


def setup_base_os_layer(layer: str, vhd_handle: Any, options: str | None) -> None:
    path = Path(layer)
    _require_dir(path / "Files")
    doc = json.loads(options) if options else {}
    if doc.get("Type", "Container") == "Container":
        if vhd_handle:
            raise StorageError(hr.E_INVALIDARG, "Container base layers take no VHD handle")
        if (path / "Hives").exists() or (path / "layout").exists():
            raise StorageError(hr.ERROR_ALREADY_EXISTS, "base layer already set up")
        (path / "Hives").mkdir()
        for name in ("layout", "blank.vhdx", "blank-base.vhdx"):
            (path / name).touch()
    else:
        (path / "SystemTemplateBase.vhdx").touch()


def initialize_writable_layer(layer: str, layer_data: str | None, options: str | None) -> None:
    parents = _layers(layer_data)
    path = Path(layer)
    (path / "Files").mkdir(parents=True, exist_ok=True)
    (path / CHAIN).write_text(json.dumps([str(p) for p in parents]))


def _read_record(layer: Path) -> dict[str, Any] | None:
    """The ATTACH_RECORD of a writable layer; None when its filter is not attached."""
    record = layer / ATTACH_RECORD
    if not record.is_file():
        return None
    loaded: dict[str, Any] = json.loads(record.read_text())
    return loaded


def _attach_record(layer: Path) -> tuple[dict[str, list[int]], list[str]]:
    """(copied file -> stamp, directories attach created) of an attached writable layer."""
    loaded = _read_record(layer)
    if loaded is None:
        return {}, []
    return dict(loaded["files"]), list(loaded["dirs"])


def _prune(root: Path, dirs: list[str]) -> None:
    """Remove the directories attach created that are empty now, deepest first (never
    through a link the container put on the way)."""
    for rel in sorted(dirs, key=lambda d: d.count("/"), reverse=True):
        target = root / rel
        if rel in ("", ".") or not _inside(root, rel) or not os.path.lexists(target):
            continue
        if stat.S_ISDIR(target.lstat().st_mode) and not any(target.iterdir()):
            target.rmdir()


def _ignore_copied(root: Path, record: dict[str, list[int]]) -> Any:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set()
        for name in names:
            full = Path(directory) / name
            rel = str(full.relative_to(root))
            if rel in record and _stamp(full) == record[rel]:
                skipped.add(name)
        return skipped

    return ignore


def _stamp(path: Path) -> list[int]:
    st = path.lstat()
    return [st.st_size, st.st_mtime_ns]


def _union_into(
    files: Path,
    parents: list[Path],
    record: Path,
    hidden: Iterable[str] = (),
    extra: dict[str, Any] | None = None,
) -> None:
    """Copy the union of ``parents`` (top-most first: the first copy of a path wins, and
    what ``files`` already holds wins over all: nothing is copied into or below an entry
    of its that is no directory) into ``files``, leaving out the ``hidden`` paths and all
    below them; remember what was copied (and ``extra``) in ``record``."""
    copied: dict[str, list[int]] = {}
    created_dirs: list[str] = []
    is_hidden = _hides(hidden)
    for parent in parents:
        base = parent / "Files"
        for directory, dirs, names in os.walk(base):
            rel_dir = Path(directory).relative_to(base)
            target_dir = files / rel_dir
            if not os.path.lexists(target_dir):
                target_dir.mkdir()
                created_dirs.append(str(rel_dir))
            elif not stat.S_ISDIR(target_dir.lstat().st_mode):
                dirs.clear()  # the layer's own file or link covers this directory
                continue
            dirs[:] = [d for d in dirs if not is_hidden(str(rel_dir / d))]
            for name in names:
                target = target_dir / name
                if is_hidden(str(rel_dir / name)) or os.path.lexists(target):
                    continue
                shutil.copy2(Path(directory) / name, target, follow_symlinks=False)
                copied[str(rel_dir / name)] = _stamp(target)
    record.write_text(json.dumps({**(extra or {}), "files": copied, "dirs": created_dirs}))


def _undo_union(files: Path, record: Path) -> None:
    """Remove what ``_union_into`` copied and is still unchanged (changes are the layer's)."""
    loaded: dict[str, Any] = json.loads(record.read_text())
    for rel, stamp in dict(loaded["files"]).items():
        target = files / rel
        if not _inside(files, rel) or not os.path.lexists(target):
            continue  # gone, or a link the container put on the way
        st = target.lstat()
        if not stat.S_ISDIR(st.st_mode) and [st.st_size, st.st_mtime_ns] == stamp:
            target.unlink()
    _prune(files, list(loaded["dirs"]))
    record.unlink()


def attach_filter(layer: str, layer_data: str | None) -> None:
    path = Path(layer)
    _require_dir(path / "Files")
    if (path / ATTACH_RECORD).exists():
        raise StorageError(hr.ERROR_ALREADY_EXISTS, f"{path} is already attached")
    parents = _layers(layer_data)
    hidden = _read_deletions(path).hidden
    if parents and overlayfs.available():
        try:
            _attach_overlay(path.resolve(), [p.resolve() / "Files" for p in parents], hidden)
        except overlayfs.MountError as exc:
            raise StorageError(exc.hresult, str(exc)) from exc
    else:
        lowers = {"lowers": [str(p.resolve() / "Files") for p in parents]}
        _union_into(path / "Files", parents, path / ATTACH_RECORD, hidden, lowers)


def _attach_overlay(root: Path, lowers: list[Path], hidden: list[str]) -> None:
    """Mount the union of ``lowers`` on ``root``/Files; the layer's own files move into the
    upper directory first (so they win over the parents), and its recorded deletions become
    whiteouts there. Any failure undoes every step."""
    files, upper, work = root / "Files", root / UPPER, root / WORK
    overlayfs.options(lowers, upper, work)  # refuses unsafe paths before anything changes
    overlayfs.check_target(files)
    for leftover in (upper, work):
        if os.path.lexists(leftover):
            raise StorageError(
                hr.ERROR_ALREADY_EXISTS,
                f"{leftover} is left from an earlier attach; remove it to attach again",
            )
    # The layer's own directories: a parent's directory among them is no copy-up to remove.
    own_dirs = sorted(str(Path(d).relative_to(files)) for d, _s, _n in os.walk(files))
    lower_files, lower_dirs = _lower_entries(lowers)
    moved: list[str] = []
    made: list[str] = []
    opaque: list[Path] = []
    try:
        upper.mkdir()
        work.mkdir()
        for name in os.listdir(files):
            os.rename(files / name, upper / name)
            moved.append(name)
        for rel in hidden:
            if rel not in lower_files and rel not in lower_dirs:
                continue  # nothing of the parents' there (any more)
            own = upper / rel
            if _inside(upper, rel) and own.is_dir() and not own.is_symlink():
                overlayfs.set_opaque(own, True)  # the layer's own directory, nothing below
                opaque.append(own)
            else:
                made.extend(overlayfs.make_whiteout(upper, rel))
        record = {
            "Mode": OVERLAY_MODE,
            "lowers": [str(p) for p in lowers],
            "own_dirs": own_dirs,
            "hidden": hidden,
        }
        (root / ATTACH_RECORD).write_text(json.dumps({**record, "files": {}, "dirs": []}))
        overlayfs.mount(lowers, upper, work, files)
    except BaseException:
        (root / ATTACH_RECORD).unlink(missing_ok=True)
        for own in opaque:
            overlayfs.set_opaque(own, False)
        for rel in reversed(made):  # whiteouts and the directories made for them
            if stat.S_ISDIR((upper / rel).lstat().st_mode):
                (upper / rel).rmdir()
            else:
                (upper / rel).unlink()
        for name in moved:
            os.rename(upper / name, files / name)
        if upper.is_dir():
            upper.rmdir()
        if work.is_dir():
            shutil.rmtree(work)
        raise


def detach_filter(layer: str) -> None:
    path = Path(layer)
    loaded = _read_record(path)
    if loaded is None:
        raise StorageError(hr.ERROR_NOT_FOUND, f"{path} is not attached")
    if loaded.get("Mode") == OVERLAY_MODE:
        try:
            _detach_overlay(path.resolve(), loaded)
        except overlayfs.MountError as exc:
            raise StorageError(exc.hresult, str(exc)) from exc
    else:
        _write_deletions(path, _copy_deletions(path, loaded))
        _undo_union(path / "Files", path / ATTACH_RECORD)


def _detach_overlay(root: Path, loaded: dict[str, Any]) -> None:
    """Unmount (ERROR_BUSY while in use, and then nothing changes), then give ``Files/`` the
    layer's own content back: the upper directory without whiteouts and overlayfs'
    attributes. A mount already gone (the host restarted) only needs the second step."""
    files, upper, work = root / "Files", root / UPPER, root / WORK
    overlayfs.unmount(files, upper)
    if any(files.iterdir()):
        raise StorageError(
            hr.ERROR_ALREADY_EXISTS,
            f"{files} has content of its own while the layer's changes are in {upper}",
        )
    deletions = _overlay_deletions(root, loaded)
    _settle(upper, _copied_up(loaded))
    for name in os.listdir(upper):
        os.rename(upper / name, files / name)
    upper.rmdir()
    shutil.rmtree(work)
    _write_deletions(root, deletions)
    (root / ATTACH_RECORD).unlink()


# -- overlay filters on volumes ---------------------------------------------------------------

OVERLAY_RECORD = ".pyhcs-overlay.json"
FILTER_TYPES = ("WCIFS", "UnionFS")


def _filter_type(layer_data: str | None) -> str:
    try:
        doc = json.loads(layer_data) if layer_data else {}
    except json.JSONDecodeError as exc:
        raise StorageError(hr.HCS_E_INVALID_JSON, f"LayerData: {exc.msg}") from exc
    kind = doc.get("FilterType", "WCIFS") if isinstance(doc, dict) else None
    if kind not in FILTER_TYPES:
        raise StorageError(
            hr.HCS_E_INVALID_JSON, f"LayerData.FilterType must be one of {FILTER_TYPES}"
        )
    return str(kind)


def attach_overlay(volume: str, layer_data: str | None) -> None:
    """Present the union of LayerData's layers at a volume mount point (a directory)."""
    _filter_type(layer_data)
    parents = _layers(layer_data)
    path = Path(volume)
    _require_dir(path)
    if (path / OVERLAY_RECORD).exists():
        raise StorageError(hr.ERROR_ALREADY_EXISTS, f"{path} has an overlay attached")
    _union_into(path, parents, path / OVERLAY_RECORD)


def detach_overlay(volume: str, layer_data: str | None) -> None:
    _filter_type(layer_data)
    path = Path(volume)
    if not (path / OVERLAY_RECORD).exists():
        raise StorageError(hr.ERROR_NOT_FOUND, f"{path} has no overlay attached")
    _undo_union(path, path / OVERLAY_RECORD)


# -- legacy (mount path + hive folder) writable layers -------------------------------------------


def initialize_legacy_writable_layer(
    mount_path: str, folder_path: str, layer_data: str | None, options: str | None
) -> None:
    """The volume at ``mount_path`` shows the union of the parents; the hive deltas live in
    ``folder_path``/Hives. ``options`` (paths to pre-expand) must be JSON when given."""
    parents = _layers(layer_data)
    if options:
        try:
            json.loads(options)
        except json.JSONDecodeError as exc:
            raise StorageError(hr.HCS_E_INVALID_JSON, f"options: {exc.msg}") from exc
    mount, folder = Path(mount_path), Path(folder_path)
    _require_dir(mount)
    if (mount / OVERLAY_RECORD).exists():
        raise StorageError(hr.ERROR_ALREADY_EXISTS, f"{mount} is already initialised")
    (folder / "Hives").mkdir(parents=True, exist_ok=True)
    (folder / CHAIN).write_text(json.dumps([str(p) for p in parents]))
    _union_into(mount, parents, mount / OVERLAY_RECORD)


def export_legacy_writable_layer(
    mount_path: str, folder_path: str, export: str, layer_data: str | None
) -> None:
    """Transport format of a legacy writable layer: what differs from the parents' union
    (changed or new files) under Files/, deleted parent files in tombstones.txt."""
    parents = _layers(layer_data)
    mount, folder, dest = Path(mount_path), Path(folder_path), Path(export)
    _require_dir(mount)
    _require_dir(folder)
    _require_dir(dest)
    record_files: dict[str, list[int]] = {}
    if (mount / OVERLAY_RECORD).exists():
        record_files = dict(json.loads((mount / OVERLAY_RECORD).read_text())["files"])
    lower: dict[str, Path] = {}
    for parent in reversed(parents):  # base first, so the top-most layer's copy wins
        base = parent / "Files"
        for directory, _dirs, names in os.walk(base):
            for name in names:
                full = Path(directory) / name
                lower[str(full.relative_to(base))] = full
    (dest / "Files").mkdir(exist_ok=True)
    for directory, _dirs, names in os.walk(mount):
        for name in names:
            full = Path(directory) / name
            rel = str(full.relative_to(mount))
            if rel == OVERLAY_RECORD:
                continue
            if rel in record_files and _stamp(full) == record_files[rel]:
                continue  # an untouched copy of a parent's file
            target = dest / "Files" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(full, target, follow_symlinks=False)
    _write_tombstones(dest, sorted(rel for rel in lower if not (mount / rel).exists()))
    if (folder / "Hives").is_dir():
        shutil.copytree(folder / "Hives", dest / "Hives", dirs_exist_ok=True)


# -- base OS volumes and VHDs ------------------------------------------------------------------

VHD_MARK = b"pyhcs-emulated-vhd\n"


def setup_base_os_volume(layer: str, volume: str, options: str | None) -> None:
    """Like SetupBaseOSLayer, from an already mounted volume: its content becomes the layer's
    Files/ (when the layer has none yet) before the base-layer files are created."""
    path, source = Path(layer), Path(volume)
    _require_dir(path)
    _require_dir(source)
    if not (path / "Files").is_dir():
        shutil.copytree(source, path / "Files", symlinks=True)
    setup_base_os_layer(layer, None, options)


def _vhd_path(fd: int) -> Path:
    """The VHD file an open handle refers to. Only a handle of a virtual disk is one: a
    regular ``.vhd``/``.vhdx`` file opened for writing that is empty or already holds the
    emulator's volume record — never some other file the program happens to have open."""
    try:
        st = os.fstat(fd)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        target = Path(os.readlink(f"/proc/self/fd/{fd}"))
    except (OSError, OverflowError) as exc:
        raise StorageError(hr.E_HANDLE, "the VHD handle is not an open file") from exc
    if (
        not stat.S_ISREG(st.st_mode)
        or target.suffix.lower() not in (".vhd", ".vhdx")
        or flags & os.O_ACCMODE == os.O_RDONLY
    ):
        raise StorageError(hr.E_HANDLE, "the handle is not a virtual disk opened for writing")
    try:
        head = os.pread(fd, len(VHD_MARK), 0) if st.st_size else b""
    except OSError as exc:
        raise StorageError(hr.E_HANDLE, f"the VHD handle cannot be read: {exc.strerror}") from exc
    if head and head != VHD_MARK:
        raise StorageError(hr.ERROR_INVALID_DATA, f"{target} is not a virtual disk")
    return target


def _volume_of(vhd: Path) -> Path:
    return vhd.with_name(vhd.name + ".volume")


def format_writable_layer_vhd(fd: int) -> None:
    """Format = give the VHD file an (emulated) NTFS volume: a directory beside the file,
    recorded in the file itself, emptied if the VHD was formatted before."""
    vhd = _vhd_path(fd)
    volume = _volume_of(vhd)
    if volume.exists():
        shutil.rmtree(volume)
    volume.mkdir()
    with open(vhd, "wb") as f:
        f.write(VHD_MARK + str(volume).encode() + b"\n")


def layer_vhd_mount_path(fd: int) -> str:
    """The mount path of a formatted VHD's volume (a host directory, with a trailing /)."""
    vhd = _vhd_path(fd)
    with open(vhd, "rb") as f:
        head = f.read(len(VHD_MARK) + 4096)
    if not head.startswith(VHD_MARK):
        raise StorageError(hr.ERROR_NOT_FOUND, f"{vhd} has no volume (format it first)")
    volume = Path(head[len(VHD_MARK) :].split(b"\n", 1)[0].decode())
    _require_dir(volume)
    return str(volume) + "/"
