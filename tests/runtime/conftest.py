"""Fixtures of the CLI tests: a runtime with a fresh root on the session's emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.runtime.support import Runtime

if TYPE_CHECKING:
    from pyhcs.testing import Emulator


@pytest.fixture
def runtime(hcs_emulator: Emulator, tmp_path: Path) -> Iterator[Runtime]:
    """pyrunhcs with its own root; every container left behind is force-deleted after."""
    rt = Runtime(tmp_path / "root", hcs_emulator.directory)
    yield rt
    listed = rt("list", "-q")
    for container_id in listed.stdout.split():
        rt("delete", "--force", container_id)
