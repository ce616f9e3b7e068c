"""Releasing what a conversion recorded in `plan.Resources` (layer attachments, hosting
systems, ...), at ``delete``: each record kind has one releaser. A record nobody knows how to
release is an error, not something to skip: the state stays, and ``delete`` can be retried once
the kind is known. The converter that writes a new kind registers its releaser here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ReleaseError(Exception):
    """A record could not be released (the state is kept for another try)."""


def _system(record: dict[str, Any]) -> None:
    """A compute system (a hosting utility VM, say): terminated; one HCS no longer has is fine."""
    from pyhcs import ComputeSystem  # noqa: PLC0415
    from pyhcs.errors import NotFoundError  # noqa: PLC0415

    try:
        with ComputeSystem.open(str(record["id"])) as system:
            system.terminate()
    except NotFoundError:
        return


def _layer(record: dict[str, Any]) -> None:
    """A writable layer whose storage filter create attached: detached; one that is no longer
    attached (or no longer there) is fine."""
    import os  # noqa: PLC0415

    from pyhcs.errors import InvalidLayerError, NotFoundError  # noqa: PLC0415
    from pyhcs.layer import Layer  # noqa: PLC0415

    path = str(record["path"])
    if not os.path.isdir(path):
        return
    try:
        Layer(path).detach_filter()
    except (InvalidLayerError, NotFoundError):
        return


def attach(record: dict[str, Any]) -> None:
    """Attach what a `plan.Plan.attach` record names (the inverse of its releaser)."""
    from pyhcs.layer import Layer, LayerChain  # noqa: PLC0415

    parents = LayerChain.from_schema({"Layers": record.get("parents") or []})
    Layer(str(record["path"])).attach_filter(parents)


RELEASERS: dict[str, Callable[[dict[str, Any]], None]] = {"system": _system, "layer": _layer}


def release(records: list[dict[str, Any]]) -> None:
    """Release ``records`` in reverse order of allocation."""
    from pyhcs.errors import HcsError  # noqa: PLC0415

    for record in reversed(records):
        kind = str(record.get("kind"))
        releaser = RELEASERS.get(kind)
        if releaser is None:
            raise ReleaseError(f"no way to release a resource of kind {kind!r}: {record}")
        try:
            releaser(record)
        except (HcsError, OSError) as exc:
            raise ReleaseError(f"releasing {kind} {record}: {exc}") from exc
