"""Shared fixtures: the repository layout and a C stand-in for the Windows DLLs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def fake_dll(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/native/fakecore.c compiled into a shared library (needs a C compiler: gcc)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.fail("no C compiler (cc/gcc) on PATH: install Debian's gcc to run these tests")
    output = tmp_path_factory.mktemp("native") / "fakecore.so"
    subprocess.run(
        [
            compiler,
            "-shared",
            "-fPIC",
            "-O1",
            "-o",
            str(output),
            str(REPO / "tests/native/fakecore.c"),
        ],
        check=True,
    )
    return output
