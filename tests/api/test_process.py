"""The typed Process against the real emulator service (through the pyhcs pytest plugin's ``hcs``
fixture, which also proves each test leaked nothing).

Exit codes follow docs/emulator.md for Windows-flavoured systems (every container here):
terminate gives 1 (the TerminateProcess convention), a death by signal 128 + signo (CtrlC is
SIGINT: 130).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import pytest

from pyhcs import ComputeSystem, Event, EventType, Process, errors, schema
from pyhcs import hresult as hr
from pyhcs.testing import Emulator, FaultInjector

from .support import CONTAINER

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Exit codes on a Windows-flavoured system (docs/emulator.md, "Terminate" and "Signals").
TERMINATED = 1
SIGINT_EXIT = 128 + 2


@contextmanager
def running(name: str) -> Iterator[ComputeSystem]:
    """A started container, closed (and so terminated: last handle) afterwards."""
    with ComputeSystem.create(name, CONTAINER) as system:
        system.start()
        yield system


def params(command: str, **extra: Any) -> dict[str, Any]:
    return {"CommandLine": command, **extra}


def read_all(stream: Any) -> bytes:
    chunks = []
    while block := stream.read(1 << 16):
        chunks.append(block)
    return b"".join(chunks)


def test_std_streams_close_stdin_and_exit_code(hcs: Emulator) -> None:
    with running("proc-streams") as system:
        pipes = {"CreateStdInPipe": True, "CreateStdOutPipe": True, "CreateStdErrPipe": True}
        with system.create_process(params("cat", **pipes)) as cat:
            assert cat.stdin is not None
            assert cat.stdout is not None
            assert cat.stderr is not None
            cat.stdin.write(b"hello\n")
            cat.close_stdin()  # EOF reaches cat through HCS, not only by closing our end
            assert cat.stdin is None
            assert read_all(cat.stdout) == b"hello\n"
            assert read_all(cat.stderr) == b""
            assert cat.wait(10) == 0
            assert (cat.exit_code, cat.poll()) == (0, 0)
            cat.close_stdin()  # after the exit: nothing left to end, not an error
        command = params('sh -c "echo out; echo err >&2; exit 3"', CreateStdOutPipe=True)
        command["CreateStdErrPipe"] = True
        with system.create_process(command) as sh:
            assert sh.stdin is None  # only requested streams exist
            assert sh.stdout is not None
            assert sh.stderr is not None
            assert (read_all(sh.stdout), read_all(sh.stderr)) == (b"out\n", b"err\n")
            assert sh.wait(10) == 3
            status = sh.properties()
            assert (status.process_id, status.exited, status.exit_code) == (sh.pid, True, 3)


def test_wait_poll_and_exit_code_of_a_running_process(hcs: Emulator) -> None:
    with running("proc-poll") as system, system.create_process(params("sleep 30")) as sleep:
        assert (sleep.poll(), sleep.exit_code) == (None, None)
        status = sleep.properties()
        assert (status.process_id, status.exited) == (sleep.pid, False)
        with pytest.raises(errors.OperationTimeoutError) as late:
            sleep.wait(0.01)
        assert late.value.operation == "HcsWaitForProcessExit"
        assert (late.value.system_id, late.value.pid) == ("proc-poll", sleep.pid)
        assert sleep.poll() is None  # a wait that timed out changed nothing
        sleep.terminate()
        assert sleep.wait(10) == TERMINATED
        sleep.terminate()  # already exited: benign
        assert sleep.properties().exit_code == TERMINATED


@pytest.mark.parametrize("late", [False, True], ids=["as-fast-as-it-goes", "callback-late"])
def test_processes_that_exit_before_their_callback_is_registered(
    hcs: Emulator, hcs_faults: FaultInjector, late: bool
) -> None:
    """HCS does not replay ProcessExited to a callback registered after the exit; the Process
    learns such an exit from HCS's own status, so a fast exit never hangs a wait. With the
    callback registration delayed, most exits come before it."""
    with running(f"proc-fast-{late}") as system:
        delay = hcs_faults.delay("HcsSetProcessCallback", 0.05) if late else nullcontext()
        with delay:
            for n in range(40 if not late else 10):
                code = n % 4
                with system.create_process(params(f'sh -c "exit {code}"')) as quick:
                    assert quick.wait(10) == code, n


def test_ctrl_c_and_terminate(hcs: Emulator) -> None:
    with running("proc-signals") as system:
        with system.create_process(params("sleep 30")) as sleep:
            sleep.signal("CtrlC")
            assert sleep.wait(10) == SIGINT_EXIT
        with system.create_process(params("sleep 30")) as sleep:
            with pytest.raises(errors.InvalidJsonError) as bad:
                sleep.signal("CtrlZ")  # not a console signal
            assert (bad.value.pid, bad.value.system_id) == (sleep.pid, "proc-signals")
            assert bad.value.operation == "HcsSignalProcess"
            assert sleep.poll() is None  # bad input changed nothing
            with pytest.raises(errors.InvalidJsonError):
                sleep.signal(9)  # integer signals are for Linux-flavoured systems only
            sleep.kill()
            assert sleep.wait(10) == TERMINATED


def test_resize_console(hcs: Emulator) -> None:
    command = params(
        'sh -c "read line; stty size"',
        EmulateConsole=True,
        ConsoleSize=[24, 80],
        CreateStdInPipe=True,
        CreateStdOutPipe=True,
    )
    with running("proc-console") as system, system.create_process(command) as shell:
        assert shell.stdin is not None
        assert shell.stdout is not None
        shell.resize_console(132, 50)
        shell.stdin.write(b"go\n")
        output = read_all(shell.stdout)
        assert shell.wait(10) == 0
        assert b"50 132" in output  # stty prints rows, columns
        with pytest.raises(errors.ProcessAlreadyStoppedError):
            shell.resize_console(80, 24)


def test_open_process_by_pid_from_a_second_handle(hcs: Emulator) -> None:
    with running("proc-open") as system, system.create_process(params("sleep 30")) as sleep:
        with system.open_process(sleep.pid) as same:
            assert (same.stdin, same.stdout, same.stderr) == (None, None, None)
            assert same.properties().process_id == sleep.pid
        with ComputeSystem.open("proc-open") as again, again.open_process(sleep.pid) as other:
            other.terminate()
            assert other.wait(10) == TERMINATED
        assert sleep.wait(10) == TERMINATED
        with pytest.raises(errors.NotFoundError) as missing:
            system.open_process(0x7FFFFFF0)
        assert missing.value.pid == 0x7FFFFFF0
        assert missing.value.system_id == "proc-open"
        assert missing.value.operation == "HcsOpenProcess"


def test_a_process_signalled_from_another_os_process(hcs: Emulator) -> None:
    """Systems and processes live in the service: a second OS process opens the system and
    the process by pid and interrupts it; this process sees the exit."""
    with running("proc-shared") as system, system.create_process(params("sleep 30")) as sleep:
        child = (
            "import sys\n"
            "from pyhcs import ComputeSystem\n"
            "with ComputeSystem.open('proc-shared') as s, s.open_process(int(sys.argv[1])) as p:\n"
            "    p.signal('CtrlC')\n"
            "    print(p.wait(10))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", child, str(sleep.pid)],
            cwd=REPO,
            env={**os.environ, "PYHCS_EMULATOR_AUTOSTART": "0"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(SIGINT_EXIT)
        assert sleep.wait(10) == SIGINT_EXIT


def test_closing_a_process_handle_does_not_kill_the_process(hcs: Emulator) -> None:
    with running("proc-close") as system:
        sleep = system.create_process(params("sleep 30", CreateStdOutPipe=True))
        pid = sleep.pid
        sleep.close()
        sleep.close()  # twice is a no-op
        assert (sleep.closed, sleep.stdout) == (True, None)
        for call in (sleep.wait, sleep.properties, sleep.terminate):
            with pytest.raises(errors.InvalidHandleError) as refused:
                call()
            assert (refused.value.system_id, refused.value.pid) == ("proc-close", pid)
        with system.open_process(pid) as again:
            assert again.properties().exited is False  # still running
            again.terminate()
            assert again.wait(10) == TERMINATED


def test_events_iterator_and_callback(hcs: Emulator) -> None:
    seen: list[Event] = []
    delivered = threading.Event()

    def record(event: Event) -> None:
        seen.append(event)
        delivered.set()

    with running("proc-events") as system, system.create_process(params("sleep 30")) as sleep:
        unsubscribe = sleep.on_event(record)
        sleep.terminate()
        events = list(sleep.events(timeout=10))
        assert [e.type for e in events] == [EventType.PROCESS_EXITED]
        status = events[0].payload
        assert isinstance(status, schema.ProcessStatus)
        assert (status.process_id, status.exit_code) == (sleep.pid, TERMINATED)
        assert events[0].terminal
        assert delivered.wait(10)
        assert seen == events
        unsubscribe()
        unsubscribe()  # twice is harmless


def test_repr_follows_the_lifetime(hcs: Emulator) -> None:
    with running("proc-repr") as system:
        process = system.create_process(params("sleep 30"))
        assert repr(process) == f"<Process pid={process.pid} system='proc-repr' running>"
        process.terminate()
        process.wait(10)
        assert repr(process) == f"<Process pid={process.pid} system='proc-repr' exited 1>"
        process.close()
        assert repr(process) == f"<Process pid={process.pid} system='proc-repr' closed>"
        assert (
            process._repr_html_()
            == f"<code>&lt;Process pid={process.pid} system=&#x27;proc-repr&#x27; closed&gt;</code>"
        )


def test_errors_name_the_call_the_system_and_hcs_message(hcs: Emulator) -> None:
    with running("proc-errors") as system:
        with pytest.raises(errors.NotFoundError) as missing:
            system.create_process(params("no-such-program-pyhcs"))
        error = missing.value
        assert error.hresult == hr.ERROR_FILE_NOT_FOUND
        assert (error.operation, error.system_id) == ("HcsCreateProcess", "proc-errors")
        assert error.result.message is not None  # HCS's ResultError ErrorMessage...
        assert error.message == error.result.message  # ...is the message shown
        assert "no-such-program-pyhcs" in str(error)
        with pytest.raises(errors.InvalidJsonError) as bad:
            system.create_process({"CommandLine": "true", "Bogus": 1})
        assert "Bogus" in str(bad.value)
        system.terminate()
        with pytest.raises(errors.InvalidStateError) as stopped:
            system.create_process(params("true"))
        assert stopped.value.system_id == "proc-errors"


def test_process_is_exported_and_typed(hcs: Emulator) -> None:
    with running("proc-type") as system, system.create_process(params("true")) as quick:
        assert isinstance(quick, Process)
        assert quick.system is system
        assert quick.wait(10) == 0


def test_run_streams_large_input_and_output_concurrently(hcs: Emulator) -> None:
    """``cat`` echoes 8 MiB: far more than a pipe holds, so writing all before reading (or
    reading before writing) would deadlock."""
    data = os.urandom(8 << 20)
    with running("proc-run-big") as system:
        result = system.run(["cat"], input=data, timeout=60)
    assert (result.returncode, len(result.stdout), result.stdout == data) == (0, len(data), True)


def test_run_timeout_holds_even_when_the_input_is_never_read(hcs: Emulator) -> None:
    with running("proc-run-timeout") as system:
        with pytest.raises(subprocess.TimeoutExpired) as expired:
            system.run(["sleep", "30"], input=b"x" * (8 << 20), timeout=0.5)
        assert expired.value.timeout == 0.5
        with pytest.raises(subprocess.CalledProcessError) as failed:
            system.run(
                ["sh", "-c", "echo $GREETING >&2; exit 4"], env={"GREETING": "hi"}, check=True
            )
        assert (failed.value.returncode, failed.value.stderr) == (4, b"hi\n")
    assert not [t.name for t in threading.enumerate() if t.name.startswith("pyhcs-run-")]


def test_injected_failures_are_typed_and_name_the_process(
    hcs: Emulator, hcs_faults: FaultInjector
) -> None:
    denied = '{"Error": -2147024891, "ErrorMessage": "injected: no access"}'
    with running("proc-faults") as system:
        with (
            hcs_faults.fail("HcsCreateProcess", hr.E_ACCESSDENIED, document=denied, count=1),
            pytest.raises(errors.AccessDeniedError) as refused,
        ):
            system.create_process(params("true"))
        assert (refused.value.system_id, refused.value.message) == (
            "proc-faults",
            "injected: no access",
        )
        assert refused.value.hint is not None
        assert "elevated" in refused.value.hint
        with system.create_process(params("sleep 30")) as sleep:
            with (
                hcs_faults.fail("HcsOpenProcess", hr.ERROR_NOT_FOUND, count=1),
                pytest.raises(errors.NotFoundError) as missing,
            ):
                system.open_process(sleep.pid)  # a direct failure, not through an operation
            assert missing.value.pid == sleep.pid
            with hcs_faults.hold("HcsTerminateProcess") as fault:
                with pytest.raises(errors.OperationTimeoutError) as late:
                    sleep.terminate(timeout=0.05)
                assert (late.value.pid, late.value.operation) == (sleep.pid, "HcsTerminateProcess")
                assert "cancelled" in str(late.value)
                fault.hold.set()
            sleep.terminate()  # the held request may have gone out once released: either way
            assert sleep.wait(10) == TERMINATED
