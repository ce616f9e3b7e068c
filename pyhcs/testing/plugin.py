"""pytest fixtures over `pyhcs.testing` (entry point ``pytest11``: ``pyhcs``).

- ``hcs_emulator`` (session): one isolated emulator service in a temporary directory, which
  every pyhcs call of the test run goes to; stopped after the last test. The directory is under
  pytest's ``basetemp`` (kept for debugging, its ``service.log`` included) unless the socket
  path would be too long for a Unix socket there (a deep ``--basetemp``, macOS's ``$TMPDIR``):
  then it is a fresh directory in the system's temporary directory, removed afterwards.
- ``hcs`` (test): the same emulator, and afterwards the check that the test leaked no handle,
  string or callback (`Emulator.assert_no_leaks`).
- ``hcs_faults`` (test): fault injection as context managers, cleared after the test.
- ``hcs_layers`` (test): fresh layers (a base layer with chosen files, layers on it, writable
  layers) in the test's temporary directory, destroyed after the test.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from pyhcs.testing import Emulator, FaultInjector, Layers


@pytest.fixture(scope="session")
def hcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    from pyhcs.testing import Emulator, socket_fits  # noqa: PLC0415 (light pytest start-up)

    directory = tmp_path_factory.mktemp("pyhcs") / "emulator"
    short = None if socket_fits(directory) else Path(tempfile.mkdtemp(prefix="pyhcs-"))
    emulator = Emulator(directory if short is None else short / "emulator")
    try:
        yield emulator
    finally:
        emulator.stop()
        if short is not None:
            shutil.rmtree(short)


@pytest.fixture
def hcs(hcs_emulator: Emulator) -> Iterator[Emulator]:
    yield hcs_emulator
    hcs_emulator.assert_no_leaks()


@pytest.fixture
def hcs_faults(hcs_emulator: Emulator) -> Iterator[FaultInjector]:
    yield hcs_emulator.faults
    hcs_emulator.table.client.faults.clear()


@pytest.fixture
def hcs_layers(hcs_emulator: Emulator, tmp_path: Path) -> Iterator[Layers]:
    from pyhcs.testing import Layers  # noqa: PLC0415

    layers = Layers(tmp_path / "layers")
    yield layers
    layers.cleanup()
