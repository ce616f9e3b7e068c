"""The runtime is built on pyhcs's public API only (ARCHITECTURE.md: it is the proof that a
third-party runtime can be), and its fast commands stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.runtime.support import REPO

#: What a runtime module may import from pyhcs: the public objects and modules.
PUBLIC = {
    "pyhcs",
    "pyhcs.aio",
    "pyhcs.errors",
    "pyhcs.events",
    "pyhcs.layer",
    "pyhcs.network",
    "pyhcs.process",
    "pyhcs.schema",
    "pyhcs.system",
    "pyhcs.timeouts",
}


def test_only_the_public_api() -> None:
    for path in sorted((REPO / "pyhcs" / "runtime").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("pyhcs") and not name.startswith("pyhcs.runtime"):
                    assert name in PUBLIC, f"{path.name} imports {name}"


def test_state_and_list_import_nothing_of_the_hcs_layer(tmp_path: Path) -> None:
    code = (
        "import sys; from pyhcs.runtime import cli; "
        f"rc = cli.run(['--root', {str(tmp_path)!r}, 'list']); "
        "heavy = sorted(m for m in sys.modules if m.startswith(('pyhcs.raw', 'pyhcs.schema', "
        "'pyhcs.system', 'pydantic', 'cffi', 'socket', 'subprocess'))); print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
