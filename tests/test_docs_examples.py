"""The tutorial and the cookbook are tested examples: their code runs against the emulator (in
this process, through the ``hcs`` fixture, which also proves an example leaked no handle) and
prints exactly the output the page shows under it. Blocks that need a module that has not
landed yet are reported as skipped, never silently dropped (see `tests.docs_blocks`)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pyhcs.testing import Emulator
from tests.conftest import REPO
from tests.docs_blocks import Section, available, sections, whole

TUTORIAL = REPO / "docs" / "tutorial.md"
COOKBOOK = REPO / "docs" / "cookbook.md"

#: The tutorial's blocks share names from top to bottom; each cookbook recipe stands alone.
UNITS: list[Section] = [whole(TUTORIAL), *sections(COOKBOOK)]


def _unmount_leftovers(root: Path) -> None:
    """An example that failed between attach and detach leaves an overlay mount behind."""
    from tests.emulator.conftest import unmount_leftovers

    unmount_leftovers(root)


@pytest.mark.skipif(sys.platform == "win32", reason="runs against the emulator")
@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.heading)
def test_example_prints_what_the_page_shows(
    unit: Section, hcs: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program, expected, files = unit.runnable()
    if not program and not files:
        pytest.skip(f"needs {', '.join(sorted(unit.requirements()))}")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the examples' folders land here
    try:
        for file, shown in files:
            assert file.title is not None
            assert _run_pytest_file(file.title, file.body, tmp_path) == shown
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(program, unit.heading, "exec"), {"__name__": "__docs__"})
    finally:
        _unmount_leftovers(tmp_path)
    assert matches(expected, out.getvalue()), f"printed:\n{out.getvalue()}\npage:\n{expected}"


def matches(expected: str, printed: str) -> bool:
    """The page's output, where ``...`` stands for text that differs run to run (pids)."""
    pattern = ".*?".join(re.escape(piece) for piece in expected.split("..."))
    return re.fullmatch(pattern, printed, re.DOTALL) is not None


def _run_pytest_file(name: str, body: str, tmp_path: Path) -> str:
    """Save a page's test module and run it with pytest, as its reader would; the pytest
    summary line it prints is part of what the page shows."""
    folder = tmp_path / "reader"
    folder.mkdir()
    (folder / name).write_text(body, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYHCS_EMULATOR_DIR", None)  # the reader's run starts its own test emulator
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", ".", name],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    return summary.split(" in ")[0] + "\n"


REQUIREMENTS = sorted({name for unit in UNITS for name in unit.requirements()})


@pytest.mark.parametrize("name", REQUIREMENTS)
def test_blocks_waiting_for_a_module(name: str) -> None:
    """One visible skip per module the pages show before it exists; once it exists, its blocks
    run in the page tests above."""
    if not available(name):
        pytest.skip(f"{name} has not landed: the pages' blocks that need it did not run")


def test_pages_have_examples_and_are_in_the_nav() -> None:
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (TUTORIAL, COOKBOOK):
        assert page.name in nav
        assert any(block.lang == "python" for unit in sections(page) for block in unit.blocks)
    assert "notebooks/exploring-hcs.ipynb" in TUTORIAL.read_text(encoding="utf-8")
