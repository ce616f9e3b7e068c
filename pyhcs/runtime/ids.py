"""Container ids: what runc accepts, so that no id can name a path outside the state root or a
second system. Light (no pydantic, no cffi): every command checks the id it is given."""

from __future__ import annotations

import re
from typing import Final

from pyhcs.errors import InvalidArgumentError

__all__ = ["check_id", "vm_id"]

#: runc's rule: letters, digits and ``_ + - .``; never ``.`` or ``..`` alone.
_ID: Final = re.compile(r"[A-Za-z0-9_+\-.]+")
#: Longer ids are refused (a state directory's name must stay a valid file name).
MAX_ID: Final = 1024


def check_id(container_id: str) -> str:
    """``container_id`` if runc would accept it, else InvalidArgumentError saying why."""
    if not isinstance(container_id, str) or not container_id:
        raise InvalidArgumentError("container id cannot be empty")
    if container_id in (".", "..") or not _ID.fullmatch(container_id):
        raise InvalidArgumentError(f"invalid id format: {container_id}")
    if len(container_id) > MAX_ID:
        raise InvalidArgumentError(f"container id is longer than {MAX_ID} characters")
    return container_id


def vm_id(container_id: str) -> str:
    """The id of the utility VM a container (or a pod's sandbox) creates (as runhcs names it)."""
    return f"{container_id}@vm"
