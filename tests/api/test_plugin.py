"""A third-party project uses pyhcs's pytest plugin exactly as it is installed (the ``pyhcs``
``pytest11`` entry point, no conftest): its tests get an isolated emulator, fault injection
and a leak check that fails a leaking test with LeakError."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyhcs.errors import EmulatorError
from pyhcs.testing import Emulator

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent.parent

THEIR_TESTS = """
import pytest

from pyhcs import ComputeSystem, errors
from pyhcs import hresult as hr

DOC = {
    "SchemaVersion": {"Major": 2, "Minor": 1},
    "Owner": "third-party",
    "ShouldTerminateOnLastHandleClosed": True,
    "Container": {},
}


def test_a_container_runs(hcs):
    with ComputeSystem.create("theirs", DOC) as system:
        system.start()
        assert system.run(["echo", "hi"]).stdout == b"hi\\n"


def test_their_error_handling(hcs, hcs_faults):
    with ComputeSystem.create("theirs-faulty", DOC) as system:
        with hcs_faults.fail("HcsStartComputeSystem", hr.E_ACCESSDENIED, count=1):
            with pytest.raises(errors.AccessDeniedError):
                system.start()
        system.start()  # the fault was for one call only


def test_that_forgets_to_close(hcs):
    ComputeSystem.create("theirs-leaked", DOC)


def test_after_the_leak_all_is_clean_again(hcs):
    assert hcs.counters()["systems"] == 0
"""


def test_a_third_party_project_uses_the_plugin(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # this checkout's pyhcs, not another install
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(test_theirs=THEIR_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_that_forgets_to_close*",
            "*LeakError: never closed: compute system 'theirs-leaked'*",
        ]
    )


def test_an_emulator_directory_too_long_for_its_socket_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(EmulatorError, match="too long a path for the service's Unix socket"):
        Emulator(deep)
    assert not deep.exists()  # refused before anything was made
