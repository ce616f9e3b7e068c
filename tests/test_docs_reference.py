"""The API reference is complete: the built site has an entry for every public name of the
typed API (a new public method without a reference entry fails here, not in a reader's hands)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO
from tests.test_quality import _run

#: The modules whose every public name the reference must show.
MODULES = (
    "pyhcs.system",
    "pyhcs.process",
    "pyhcs.layer",
    "pyhcs.network",
    "pyhcs.events",
    "pyhcs.timeouts",
    "pyhcs.testing",
    "pyhcs.testing.plugin",
)
#: Public in Python's sense but not API: the module logger.
NOT_API = {"log"}


def _defined(module: ModuleType) -> list[str]:
    """Names the module's own top-level statements define (imports are not its API)."""
    tree = ast.parse(inspect.getsource(module))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.append(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
        elif isinstance(node, ast.Assign):
            names.extend(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def public_names(module_name: str) -> set[str]:
    """Dotted names of a module's own public classes, functions and constants, and of each
    class's own public members."""
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    names: set[str] = set()
    for name in _defined(module):
        if name.startswith("_") or name in NOT_API or (exported and name not in exported):
            continue
        names.add(f"{module_name}.{name}")
        value = getattr(module, name)
        if inspect.isclass(value):
            names.update(
                f"{module_name}.{name}.{member}"
                for member in vars(value)
                if not member.startswith("_")
            )
    return names


@pytest.fixture(scope="module")
def reference_ids(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    site = tmp_path_factory.mktemp("site")
    result = _run("mkdocs", "build", "--strict", "--site-dir", str(site))
    assert result.returncode == 0, result.stdout + result.stderr
    html = (site / "reference" / "index.html").read_text(encoding="utf-8")
    assert (site / "notebooks" / "exploring-hcs.ipynb").is_file()  # the tutorial links it
    return set(re.findall(r'id="(pyhcs\.[\w.]+)"', html))


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_is_in_the_reference(module: str, reference_ids: set[str]) -> None:
    names = public_names(module)
    assert names, module
    missing = sorted(names - reference_ids)
    assert not missing, f"add to docs/reference.md: {missing}"


def test_the_reference_names_the_public_entry_points() -> None:
    """``pyhcs.X`` names resolve to what the reference documents."""
    import pyhcs

    text = Path(REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    for name in pyhcs.__all__:
        if name.startswith("_"):
            continue
        target = getattr(pyhcs, name)
        assert f"::: {target.__module__}" in text, name
