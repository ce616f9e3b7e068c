"""computestorage on real directories (HCS-REFERENCE §6 layout: ``Files/``, ``Hives/``, ...).

Layers are directories. A writable layer's attach materialises the union of its parent layers
into its own ``Files/`` (top-most layer wins, the writable layer's own files win over all), so a
container running on it sees the union and every write lands in the writable layer only; the
copied entries are recorded and detach removes the ones still identical to what was copied.
All calls are synchronous and run in the caller's process (same host as the service).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from pyhcs import hresult as hr

ATTACH_RECORD = ".pyhcs-attached.json"
CHAIN = "layerchain.json"


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
    _layers(layer_data)
    src = Path(source)
    _require_dir(src / "Files")
    dest = Path(layer)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Files", "Hives", "UtilityVM"):
        if (src / name).is_dir():
            shutil.copytree(src / name, dest / name, symlinks=True, dirs_exist_ok=True)
    tombstones = src / "tombstones.txt"
    if tombstones.is_file():
        for line in tombstones.read_text(encoding="utf-8-sig").splitlines()[1:]:
            target = dest / "Files" / line.strip().lstrip("\\/").replace("\\", "/")
            if line.strip() and target.is_file():
                target.unlink()
        shutil.copy2(tombstones, dest / "tombstones.txt")


def export_layer(layer: str, export: str, layer_data: str | None, options: str | None) -> None:
    _layers(layer_data)
    src, dest = Path(layer), Path(export)
    _require_dir(src / "Files")
    _require_dir(dest)
    record, created = _attach_record(src)
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
    (dest / "tombstones.txt").write_text("\ufeffVersion 1.0\n", encoding="utf-8")


def destroy_layer(layer: str) -> None:
    path = Path(layer)
    if not path.exists():
        raise StorageError(hr.ERROR_PATH_NOT_FOUND, f"{path} does not exist")
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


def _attach_record(layer: Path) -> tuple[dict[str, list[int]], list[str]]:
    """(copied file -> stamp, directories attach created) of an attached writable layer."""
    record = layer / ATTACH_RECORD
    if not record.is_file():
        return {}, []
    loaded: dict[str, Any] = json.loads(record.read_text())
    return dict(loaded["files"]), list(loaded["dirs"])


def _prune(root: Path, dirs: list[str]) -> None:
    """Remove the directories attach created that are empty now, deepest first."""
    for rel in sorted(dirs, key=lambda d: d.count("/"), reverse=True):
        target = root / rel
        if rel not in ("", ".") and target.is_dir() and not any(target.iterdir()):
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


def attach_filter(layer: str, layer_data: str | None) -> None:
    path = Path(layer)
    _require_dir(path / "Files")
    if (path / ATTACH_RECORD).exists():
        raise StorageError(hr.ERROR_ALREADY_EXISTS, f"{path} is already attached")
    files = path / "Files"
    copied: dict[str, list[int]] = {}
    created_dirs: list[str] = []
    for parent in _layers(layer_data):  # top-most first: the first copy of a path wins
        base = parent / "Files"
        for directory, _dirs, names in os.walk(base):
            rel_dir = Path(directory).relative_to(base)
            if not (files / rel_dir).exists():
                (files / rel_dir).mkdir(parents=True)
                created_dirs.append(str(rel_dir))
            for name in names:
                target = files / rel_dir / name
                if target.exists() or target.is_symlink():
                    continue
                shutil.copy2(Path(directory) / name, target, follow_symlinks=False)
                copied[str(rel_dir / name)] = _stamp(target)
    (path / ATTACH_RECORD).write_text(json.dumps({"files": copied, "dirs": created_dirs}))


def detach_filter(layer: str) -> None:
    path = Path(layer)
    record, created = _attach_record(path)
    if not (path / ATTACH_RECORD).exists():
        raise StorageError(hr.ERROR_NOT_FOUND, f"{path} is not attached")
    for rel, stamp in record.items():
        target = path / "Files" / rel
        if target.is_file() and _stamp(target) == stamp:
            target.unlink()
    _prune(path / "Files", created)
    (path / ATTACH_RECORD).unlink()
