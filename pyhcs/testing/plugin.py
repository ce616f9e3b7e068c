"""pytest fixtures over `pyhcs.testing` (entry point ``pytest11``: ``pyhcs``).

- ``hcs_emulator`` (session): one isolated emulator service in a temporary directory, which
  every pyhcs call of the test run goes to; stopped after the last test.
- ``hcs`` (test): the same emulator, and afterwards the check that the test leaked no handle,
  string or callback (`Emulator.assert_no_leaks`).
- ``hcs_faults`` (test): fault injection as context managers, cleared after the test.
- ``hcs_layers`` (test): fresh layers (a base layer with chosen files, layers on it, writable
  layers) in the test's temporary directory, destroyed after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from pyhcs.testing import Emulator, FaultInjector, Layers


@pytest.fixture(scope="session")
def hcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    from pyhcs.testing import Emulator  # noqa: PLC0415 (keep pytest start-up light)

    emulator = Emulator(tmp_path_factory.mktemp("pyhcs") / "emulator")
    yield emulator
    emulator.stop()


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
