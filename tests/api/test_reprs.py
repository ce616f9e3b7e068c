"""What a person sees of errors and schema documents, in a terminal (``repr``/``str``) and in
a notebook (``_repr_html_``), for failures that come from the real emulator service."""

from __future__ import annotations

import html
import pickle

import pytest

from pyhcs import ComputeSystem, errors, schema
from pyhcs import hresult as hr
from pyhcs.testing import Emulator

from .support import CONTAINER


def test_an_hcs_failure_names_everything_and_hints_the_fix(hcs: Emulator) -> None:
    with ComputeSystem.create("repr-errors", CONTAINER) as system:
        system.start()
        with pytest.raises(errors.NotSupportedError) as caught:
            system.pause()  # a process-isolated container cannot be paused
    error = caught.value
    assert (error.operation, error.system_id) == ("HcsPauseComputeSystem", "repr-errors")
    assert error.hresult == hr.ERROR_NOT_SUPPORTED
    assert error.result.message  # HCS's own ErrorMessage...
    assert error.message == error.result.message  # ...is what is shown
    assert error.hint is not None
    assert "Hyper-V isolation" in error.hint
    text = str(error)
    assert text.startswith(f"HcsPauseComputeSystem repr-errors: {error.message}")
    assert "ERROR_NOT_SUPPORTED" in text
    assert text.endswith(f"hint: {error.hint}")
    assert repr(error) == (
        f"NotSupportedError(ERROR_NOT_SUPPORTED, operation='HcsPauseComputeSystem', "
        f"system_id='repr-errors', message={error.message!r})"
    )
    page = error._repr_html_()
    assert page.startswith("<table><caption>NotSupportedError</caption>")
    for cell in ("HcsPauseComputeSystem", "repr-errors", html.escape(error.message)):
        assert f"<td>{cell}</td>" in page
    assert f"<tr><th>hint</th><td>{html.escape(error.hint)}</td></tr>" in page
    again = pickle.loads(pickle.dumps(error))  # crosses process boundaries intact
    assert (type(again), repr(again)) == (type(error), repr(error))


def test_a_process_error_names_the_pid(hcs: Emulator) -> None:
    with ComputeSystem.create("repr-process", CONTAINER) as system:
        system.start()
        with system.create_process({"CommandLine": "true"}) as process:
            process.wait(10)
            with pytest.raises(errors.ProcessAlreadyStoppedError) as caught:
                process.resize_console(80, 24)
    error = caught.value
    assert error.pid == process.pid
    assert f"pid={process.pid}" in repr(error)
    assert f"<tr><th>pid</th><td>{process.pid}</td></tr>" in error._repr_html_()
    assert f"repr-process pid {process.pid}:" in str(error)


def test_error_html_is_escaped() -> None:
    error = errors.InvalidJsonError(
        "field <Bogus> & more",
        hresult=hr.HCS_E_INVALID_JSON,
        system_id="a<b>",
        document='{"ErrorEvents": [{"Message": "<script>"}]}',
    )
    page = error._repr_html_()
    assert "<script>" not in page
    assert "<Bogus>" not in page
    assert "<td>a&lt;b&gt;</td>" in page
    assert "<tr><th>event</th><td>&lt;script&gt;</td></tr>" in page
    assert repr(error) == (
        "InvalidJsonError(HCS_E_INVALID_JSON, system_id='a<b>', message='field <Bogus> & more')"
    )


def test_properties_show_what_is_set(hcs: Emulator) -> None:
    with ComputeSystem.create("repr-properties", CONTAINER) as system:
        properties = system.properties()
    shown = repr(properties)
    assert shown.startswith("Properties(id='repr-properties', ")
    assert "=None" not in shown  # the unset optional fields are left out
    assert "owner='api-tests'" in shown
    page = properties._repr_html_()
    assert page.startswith("<details open><summary><code>Properties</code></summary><pre>")
    assert "&quot;Id&quot;: &quot;repr-properties&quot;" in page  # the JSON HCS speaks
    assert "null" not in page


def test_model_repr_keeps_unknown_fields_and_nests() -> None:
    status = schema.SystemExitStatus.parse(
        {"Status": 0, "ExitType": "ForcedExit", "Attribution": [], "NewField": "<x>"}
    )
    assert repr(status) == (
        "SystemExitStatus(status=0, exit_type=<NotificationType.FORCED_EXIT: 'ForcedExit'>, "
        "attribution=[], NewField='<x>')"
    )
    assert "&quot;NewField&quot;: &quot;&lt;x&gt;&quot;" in status._repr_html_()
