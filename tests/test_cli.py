"""The ``pyhcs`` command, run as a user runs it: a subprocess of the installed console script."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from pyhcs import hresult
from pyhcs.raw import cdefs, constants


def _pyhcs(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("pyhcs")
    command = [executable] if executable else [sys.executable, "-m", "pyhcs"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_tour_shows_the_whole_surface() -> None:
    result = _pyhcs("tour")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in cdefs.exports():
        assert re.search(rf"\b{name}\(", out), name
    for name, value in constants().items():
        assert f"{name} = {value}" in out, name
    for info in hresult.KNOWN.values():
        assert info.name in out
    assert "Functions (119, by DLL)" in out
    assert "computecore.dll (59)" in out
    assert "computestorage.dll (14)" in out
    assert "computenetwork.dll (43)" in out
    assert "struct HCS_EVENT:" in out


def test_tour_sections() -> None:
    result = _pyhcs("tour", "errors")
    assert result.returncode == 0, result.stderr
    assert "HCS_E_INVALID_JSON" in result.stdout
    assert "Functions" not in result.stdout


@pytest.mark.parametrize("args", [("tour", "nonsense"), ("frobnicate",), ()])
def test_bad_usage_exits_2_with_a_message(args: tuple[str, ...]) -> None:
    result = _pyhcs(*args)
    assert result.returncode == 2
    assert "usage: pyhcs" in result.stderr


def test_version() -> None:
    result = _pyhcs("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("pyhcs ")
