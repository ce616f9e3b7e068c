"""Mapped directories of a container: `C:\\<ContainerPath>` reaches the host's `HostPath`.

The emulator places a symbolic link at the container path inside the container's root, so every
process of the container (which resolves `C:\\` paths under that root) reaches the host
directory, and nothing outside the container changes. A link, not a bind mount: it needs no
privileges and cannot outlive the service holding a mount. `ReadOnly` is recorded but not
enforced (a link cannot be read-only); the docs say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyhcs import hresult as hr
from pyhcs.emulator import oserrors
from pyhcs.emulator.service import cmdline


class MountError(Exception):
    """A mapped directory could not be applied."""

    def __init__(self, hresult: int, message: str) -> None:
        super().__init__(message)
        self.hresult = hresult


def apply(root: Path, entry: Any) -> Path:
    """Link one MappedDirectory into ``root``; returns the link (to remove it later)."""
    if not isinstance(entry, dict):
        raise MountError(hr.HCS_E_INVALID_JSON, "a MappedDirectory must be an object")
    host, inside = entry.get("HostPath"), entry.get("ContainerPath")
    if not isinstance(host, str) or not isinstance(inside, str) or not inside.strip("\\/:Cc"):
        raise MountError(hr.E_INVALIDARG, "MappedDirectory needs HostPath and ContainerPath")
    try:
        source = Path(host)
        if not source.is_dir():
            raise MountError(hr.ERROR_PATH_NOT_FOUND, f"HostPath {host} is not a directory")
        link = cmdline.to_host(inside, root)
        if link == root or root not in link.parents:
            raise MountError(hr.E_INVALIDARG, f"ContainerPath {inside} is not inside C:\\")
        if link.exists() or link.is_symlink():
            raise MountError(hr.ERROR_ALREADY_EXISTS, f"{inside} already exists in the container")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source.resolve(), target_is_directory=True)
    except OSError as exc:  # a name too long for the host, a file in the way, ...
        raise MountError(
            oserrors.hresult_for(exc, missing=hr.ERROR_PATH_NOT_FOUND),
            f"MappedDirectory {inside}: {exc.strerror}",
        ) from exc
    return link


def remove(link: Path) -> None:
    """Undo ``apply`` (only ever removes the link itself, never the host directory)."""
    if link.is_symlink():
        link.unlink()
