"""Whether the emulator may use privileged host features (namespaces, mounts).

Both halves decide the same way: as root the service isolates processes in namespaces
(``service/isolation``) and the client's storage filter is an overlay mount
(``client/overlayfs``); ``PYHCS_EMULATOR_UNPRIVILEGED=1`` forces the unprivileged paths (no
namespaces, copied layers), so both can be tested on one machine. The service reads it when it
starts; the client reads it at each ``HcsAttachLayerStorageFilter`` (an attached layer keeps the
mode it was attached with).
"""

from __future__ import annotations

import os
from typing import Final

UNPRIVILEGED_ENV: Final = "PYHCS_EMULATOR_UNPRIVILEGED"


def forced_unprivileged() -> bool:
    """True when ``PYHCS_EMULATOR_UNPRIVILEGED`` asks for the unprivileged paths."""
    return os.environ.get(UNPRIVILEGED_ENV, "").strip().lower() in ("1", "true", "yes")


def root() -> bool:
    """Running as root and not told to behave as an unprivileged user."""
    return not forced_unprivileged() and os.geteuid() == 0
