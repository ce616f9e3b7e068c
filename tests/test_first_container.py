"""docs/first-container.md is a tested example: its code blocks, joined in page order, run as
one program against the emulator, and print what the page says they print."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "first-container.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def page_program() -> str:
    """The page's Python code blocks, exactly as written, in order."""
    blocks = _BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, "the page lost its code blocks"
    return "\n".join(blocks)


@pytest.mark.skipif(sys.platform == "win32", reason="runs against the emulator")
def test_the_page_runs_a_container_on_the_emulator(tmp_path: Path) -> None:
    program = page_program()
    for call in (
        "HcsCreateOperation",
        "HcsCreateComputeSystem",
        "HcsStartComputeSystem",
        "HcsCreateProcess",
        "HcsWaitForOperationResultAndProcessInfo",
        "open_pipe(",
        "HcsWaitForProcessExit",
        "HcsTerminateComputeSystem",
        "HcsCloseComputeSystem",
        "LocalFree",
        '"Layers"',
        "CreateStdOutPipe",
        "INFINITE",
    ):
        assert call in program, call
    directory = tmp_path / "svc"
    env = {**os.environ, "PYHCS_BACKEND": "emulator", "PYHCS_EMULATOR_DIR": str(directory)}
    try:
        result = subprocess.run(
            [sys.executable, "-c", program],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "pyhcs", "emulator", "stop", "--dir", str(directory)],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from the base layer\nexit code 0\n"


def test_infinite_is_the_wait_forever_timeout() -> None:
    from pyhcs import raw

    assert raw.INFINITE == 0xFFFFFFFF
    assert "INFINITE" in raw.__all__
    assert "open_pipe" in raw.__all__


def _docs_pages() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in (REPO / "docs").glob("*.md")}


def test_docs_stand_alone() -> None:
    """No page points at files the reader does not have, talks to the team, or names an index
    that does not serve pyhcs."""
    for name, text in _docs_pages().items():
        assert "HCS-REFERENCE" not in text, name
        assert "§" not in text, name
        assert "the lead" not in text, name
        assert not re.search(r"pip install pyhcs\b", text), name
    assert "pip install -e ." in _docs_pages()["install.md"]


def test_first_container_page_is_in_the_nav() -> None:
    assert "first-container.md" in (REPO / "mkdocs.yml").read_text(encoding="utf-8")


def test_schema_page_lists_every_definition() -> None:
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)  # loaded as mkdocs loads a hook file
    spec.loader.exec_module(hooks)
    from pyhcs import schema

    page = hooks.on_page_markdown(_docs_pages()["schema.md"])
    listed = set(re.findall(r"^\| `(\w+)` \| (?:model|enum) \|", page, re.MULTILINE))
    assert listed == set(schema.DEFINITIONS)
