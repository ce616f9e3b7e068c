"""The wheel carries the C declarations, and an installed copy loads them from inside itself."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from pyhcs.raw import cdefs
from tests.conftest import REPO


def test_wheel_ships_cdefs_and_loads_them(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("pyhcs-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    for header in cdefs.HEADERS:
        assert f"pyhcs/cdefs/{header}" in names
    assert "pyhcs/py.typed" in names
    assert "pyhcs/schema/_models.py" in names
    probe = (
        "from pyhcs.raw import cdefs, ffi\nprint(cdefs.cdefs_dir())\nprint(len(cdefs.exports()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    directory, count = result.stdout.split()
    assert Path(directory) == tmp_path / "site" / "pyhcs" / "cdefs"
    assert int(count) == len(cdefs.exports())
