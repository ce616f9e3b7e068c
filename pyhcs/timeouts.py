"""How long pyhcs waits for each class of operation, overridable per class by environment.

Every wait of the typed API is bounded. A method's ``timeout=`` wins; otherwise the default of
its class below applies, or ``PYHCS_TIMEOUT_<CLASS>`` (seconds, read at each call, ``inf`` or
``none`` to wait forever) when set. An operation that times out is cancelled
(``HcsCancelOperation``), never abandoned. The defaults are minutes, as real hosts under load
need (hcsshim uses four minutes for create and start).
"""

from __future__ import annotations

import math
import os
from enum import Enum
from typing import Final

from pyhcs.errors import InvalidArgumentError

#: Milliseconds meaning "forever" to HCS's waits (INFINITE).
INFINITE_MS: Final = 0xFFFFFFFF


class TimeoutClass(str, Enum):
    """Operation classes with their own default timeout (seconds)."""

    SYSTEM_CREATE = "system_create"
    SYSTEM_START = "system_start"
    SYSTEM_STOP = "system_stop"
    SYSTEM_PAUSE = "system_pause"
    SYSTEM_SAVE = "system_save"
    QUERY = "query"
    MODIFY = "modify"
    PROCESS_CREATE = "process_create"
    PROCESS_SIGNAL = "process_signal"
    STORAGE = "storage"
    NETWORK = "network"


DEFAULTS: Final[dict[TimeoutClass, float]] = {
    TimeoutClass.SYSTEM_CREATE: 240.0,
    TimeoutClass.SYSTEM_START: 240.0,
    TimeoutClass.SYSTEM_STOP: 240.0,
    TimeoutClass.SYSTEM_PAUSE: 240.0,
    TimeoutClass.SYSTEM_SAVE: 600.0,
    TimeoutClass.QUERY: 120.0,
    TimeoutClass.MODIFY: 240.0,
    TimeoutClass.PROCESS_CREATE: 240.0,
    TimeoutClass.PROCESS_SIGNAL: 120.0,
    TimeoutClass.STORAGE: 1800.0,
    TimeoutClass.NETWORK: 240.0,
}


_ENV_NAMES: Final[dict[TimeoutClass, str]] = {
    kind: f"PYHCS_TIMEOUT_{kind.name}" for kind in TimeoutClass
}


def env_name(kind: TimeoutClass) -> str:
    return _ENV_NAMES[kind]


def resolve(kind: TimeoutClass, timeout: float | None) -> float | None:
    """The timeout in seconds for a call (None: forever): the caller's, else the environment's,
    else the default of ``kind``."""
    if timeout is not None:
        return _checked(timeout, "timeout")
    text = os.environ.get(_ENV_NAMES[kind])
    if text is None or not (text := text.strip()):
        return DEFAULTS[kind]
    if text.lower() in ("inf", "infinite", "none", "forever"):
        return None
    try:
        return _checked(float(text), env_name(kind))
    except ValueError as exc:
        raise InvalidArgumentError(
            f"{env_name(kind)}={text!r} is not a number of seconds (or 'inf')"
        ) from exc


def _checked(value: float, what: str) -> float | None:
    if math.isnan(value) or value < 0:
        raise InvalidArgumentError(f"{what} must be a non-negative number of seconds, not {value}")
    return None if math.isinf(value) else value


def to_ms(seconds: float | None) -> int:
    """Seconds as HCS's DWORD milliseconds (INFINITE for None; capped just below it)."""
    if seconds is None:
        return INFINITE_MS
    return min(INFINITE_MS - 1, math.ceil(seconds * 1000))
