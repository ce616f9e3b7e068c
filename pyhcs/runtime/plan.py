"""The seam between reading a bundle (`convert`) and running it (`cli`, `shim`): what to ask of
HCS for one container, and what was allocated on the way so that cleanup can be retried."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SystemPlan:
    """One compute system to create: its id and its ``ComputeSystem`` document (a dict)."""

    system_id: str
    document: dict[str, Any]


@dataclass
class Resources:
    """What a conversion or a create allocated (layer attachments, hosting VMs, mounts), as
    JSON-serializable records, kept in the container's state so that ``delete --force`` can
    release them even after a failure halfway."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, **details: Any) -> None:
        self.records.append({"kind": kind, **details})


@dataclass
class Plan:
    """A bundle as HCS sees it.

    ``systems`` are created in order: a Linux bundle or ``windows.hyperv`` first names the
    utility VM, then the container (whose document carries ``HostingSystemId``). ``container``
    is the id of the container's own system; ``init`` its ``ProcessParameters`` (a dict) from
    the spec's ``process``; ``terminal`` whether the spec asks for one; ``annotations`` the
    spec's, kept for ``state``.

    ``attach`` lists the writable layers whose storage filter must be attached before the
    container is created, each a `Resources` record (``{"kind": "layer", "path": scratch,
    "parents": [{"Id", "Path"}, ...]}``, parents topmost first): create attaches it
    (``Layer(path).attach_filter(parents)``) and then adds the record to ``resources``, which
    is how delete knows to detach it. A conversion allocates nothing, so its ``resources`` is
    empty; create records there what it allocated (attached layers, a utility VM it created).
    """

    container: str
    systems: list[SystemPlan]
    init: dict[str, Any]
    terminal: bool = False
    annotations: dict[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    attach: list[dict[str, Any]] = field(default_factory=list)
