"""Run by test_disconnect.py as ``python -m tests.api.private_service DIR MODE``: a process with
an emulator service of its own (losing the connection would break the test session's), which
loses that service while threads wait on it, and prints what each of them saw as JSON.

MODE ``drop`` cuts the connection from the client side (fault injection); ``kill`` kills the
service with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyhcs import ComputeSystem, errors
from pyhcs.testing import Emulator
from tests.api.support import CONTAINER

BOUND = 30.0  # every wait here is bounded; the parent bounds this whole process too


def outcome(call: Callable[[], object]) -> Any:
    """What a call did: ``returned``, or the typed error it raised as [class name, operation,
    system id, pid]."""
    try:
        call()
    except errors.HcsError as exc:
        return [type(exc).__name__, exc.operation, exc.system_id, exc.pid]
    return "returned"


def main(directory: str, mode: str) -> dict[str, Any]:
    emulator = Emulator(Path(directory))
    seen: dict[str, Any] = {}
    system = ComputeSystem.create("disconnect", CONTAINER)
    system.start()
    process = system.create_process({"CommandLine": "sleep 60", "CreateStdOutPipe": True})
    events: list[str] = []

    def watch(name: str, call: Callable[[], object]) -> threading.Thread:
        thread = threading.Thread(target=lambda: seen.__setitem__(name, outcome(call)))
        thread.start()
        return thread

    with emulator.faults.hold("HcsGetComputeSystemProperties") as held:
        threads = [
            watch("system.wait", lambda: system.wait(BOUND)),
            watch("process.wait", lambda: process.wait(BOUND)),
            watch("system.events", lambda: events.extend(e.name for e in system.events(BOUND))),
            watch("pending call", system.properties),
        ]
        if not held.entered.wait(BOUND):
            raise SystemExit("the held call never started")
        if mode == "drop":
            with emulator.faults.drop_connection("HcsGetProcessProperties"):
                seen["cutting call"] = outcome(process.properties)
        else:
            os.kill(emulator.pid, signal.SIGKILL)
        for thread in threads:
            thread.join(BOUND)
        seen["hung"] = [t.name for t in threads if t.is_alive()]
        held.hold.set()  # the held request now meets the cut connection: nothing to see
    seen["events"] = events
    seen["later: start"] = outcome(system.start)
    seen["later: process.terminate"] = outcome(process.terminate)
    seen["later: create"] = outcome(lambda: ComputeSystem.create("after", CONTAINER).close())
    seen["later: open"] = outcome(lambda: ComputeSystem.open("disconnect").close())
    seen["exit_status"] = repr(system.exit_status)
    process.close()
    system.close()
    seen["pid"] = process.pid
    try:
        emulator.assert_no_leaks()
        seen["leaks"] = None
    except AssertionError as exc:
        seen["leaks"] = str(exc)
    if mode == "drop":
        emulator.stop()  # the service itself is fine; it terminated what the client left
    return seen


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
