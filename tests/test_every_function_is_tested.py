"""Every function of the table is exercised by some test: a function added to the cdefs (and so
to the emulator's table) without a test fails here.

A simple source scan of every Python file under tests/ (this one excepted). A function counts
as called where its name is

* an attribute of some object, ``table.HcsCreateOperation(...)`` or ``add = t.HcsX``, or
* a string literal naming the function to a helper that calls it: the first argument of
  ``system_op``/``process_op`` (tests/emulator/capi.py) or the second of ``getattr``.

Names assembled at run time (f-strings) are not seen; helpers that pick a function by kind list
the functions by name (see ``Hcn.functions`` in tests/emulator/test_hcn.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

from pyhcs.raw import cdefs

TESTS = Path(__file__).resolve().parent
#: Helpers whose first argument is the name of the table function they call.
NAMING_HELPERS = frozenset({"system_op", "process_op"})


def called_names(source: str) -> set[str]:
    """Names used as attributes, or passed by name to a calling helper, in ``source``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            found.add(node.attr)
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        position = 1 if name == "getattr" else 0 if name in NAMING_HELPERS else None
        if position is None or len(node.args) <= position:
            continue
        argument = node.args[position]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            found.add(argument.value)
    return found


def test_the_scan_sees_calls_references_and_helper_names() -> None:
    source = (
        "t.HcsA(1)\n"
        "f = t.HcsB\n"
        "c.system_op('HcsC', s)\n"
        "getattr(t, 'HcsD')(x)\n"
        "faults.inject('HcsE', Fault())\n"
        "x = 'HcsF'\n"
        "getattr(t, f'Hcs{kind}')\n"
        "'''HcsG in a docstring'''\n"
    )
    assert {"HcsA", "HcsB", "HcsC", "HcsD"} <= called_names(source)
    assert not {"HcsE", "HcsF", "HcsG"} & called_names(source)


def test_every_table_function_is_called_by_some_test() -> None:
    # The emulator's Table makes one function pointer per declaration of the cdefs (table.py).
    declared = set(cdefs.signatures())
    assert len(declared) > 100
    used: set[str] = set()
    for path in sorted(TESTS.rglob("*.py")):
        if path.resolve() != Path(__file__).resolve():
            used |= called_names(path.read_text(encoding="utf-8"))
    untested = sorted(declared - used)
    assert untested == [], f"functions no test calls: {untested}"
