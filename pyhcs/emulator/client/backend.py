"""Entry point used by ``pyhcs.raw.backend``: the process-wide emulator function table."""

from __future__ import annotations

import threading
from pathlib import Path

from pyhcs import hresult as hr
from pyhcs.emulator.client import autostart
from pyhcs.emulator.client.computecore import Client
from pyhcs.emulator.client.table import Table
from pyhcs.errors import BackendError

_lock = threading.Lock()
_tables: list[Table] = []  # the process-wide table, once created


def open_table(directory: Path | None = None) -> Table:
    """A new, independent table connected to the service in ``directory`` (auto-started)."""
    where = autostart.ensure(directory)
    try:
        client = Client(where)
    except OSError as exc:
        raise BackendError(
            f"cannot connect to the emulator service in {where}: {exc}",
            hresult=hr.HCS_E_SERVICE_NOT_AVAILABLE,
        ) from exc
    return Table(client)


def load() -> Table:
    """The process-wide table (created on first call): what ``pyhcs.raw.lib`` dispatches to."""
    with _lock:
        if not _tables:
            _tables.append(open_table())
        return _tables[0]
