"""pyhcs: the Windows Host Compute Service from Python, with an emulator everywhere else.

The typed objects are imported on first use, so ``import pyhcs`` (and the emulator service,
which lives in this package) stays cheap::

    from pyhcs import ComputeSystem
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

_LAZY = {
    "ComputeSystem": "pyhcs.system",
    "Process": "pyhcs.process",
    "Event": "pyhcs.events",
    "EventType": "pyhcs.events",
    "Layer": "pyhcs.layer",
    "LayerChain": "pyhcs.layer",
}
#: Submodules reachable as attributes without an import (``pyhcs.network.Network``).
_SUBMODULES = frozenset({"layer", "network"})

__all__ = [
    "ComputeSystem",
    "Event",
    "EventType",
    "Layer",
    "LayerChain",
    "Process",
    "__version__",
]

if TYPE_CHECKING:
    from pyhcs import layer as layer
    from pyhcs import network as network
    from pyhcs.events import Event, EventType
    from pyhcs.layer import Layer, LayerChain
    from pyhcs.process import Process
    from pyhcs.system import ComputeSystem


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"pyhcs.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyhcs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
