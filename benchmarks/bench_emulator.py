"""Emulator speed, measured in one run (issue 3, "Speed"): python benchmarks/bench_emulator.py

Reports the cost of a C-level call answered locally and of one that round-trips to the service,
full container lifecycles per second (sequential and 50 at once) and stdout pipe throughput.
Ratios within one run are what to compare; absolute numbers depend on the machine.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pyhcs.emulator.client import autostart
from pyhcs.emulator.client.backend import open_table
from pyhcs.raw.ffi import ffi

CONTAINER = json.dumps(
    {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "ShouldTerminateOnLastHandleClosed": True,
        "Container": {},
    }
)
WAIT_MS = 30_000


def _wait(t: Any, op: Any) -> None:
    code = t.HcsWaitForOperationResult(op, WAIT_MS, ffi.NULL)
    if code != 0:
        raise RuntimeError(f"operation failed: {code & 0xFFFFFFFF:#x}")


def lifecycle(t: Any, name: str, command: str = "true") -> bytes:
    """create → start → process (stdout) → exit → terminate → close."""
    op = t.HcsCreateOperation(ffi.NULL, ffi.NULL)
    system = ffi.new("HCS_SYSTEM *")
    process = ffi.new("HCS_PROCESS *")
    info = ffi.new("HCS_PROCESS_INFORMATION *")
    try:
        t.HcsCreateComputeSystem(name, CONTAINER, op, ffi.NULL, system)
        _wait(t, op)
        t.HcsStartComputeSystem(system[0], op, ffi.NULL)
        _wait(t, op)
        params = json.dumps({"CommandLine": command, "CreateStdOutPipe": True})
        t.HcsCreateProcess(system[0], params, op, ffi.NULL, process)
        code = t.HcsWaitForOperationResultAndProcessInfo(op, WAIT_MS, info, ffi.NULL)
        if code != 0:
            raise RuntimeError(f"CreateProcess failed: {code & 0xFFFFFFFF:#x}")
        fd = int(ffi.cast("uintptr_t", info.StdOutput))
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        t.CloseHandle(info.StdOutput)
        if t.HcsWaitForProcessExit(process[0], WAIT_MS, ffi.NULL) != 0:
            raise RuntimeError("process did not exit")
        t.HcsCloseProcess(process[0])
        t.HcsTerminateComputeSystem(system[0], op, ffi.NULL)
        _wait(t, op)
        return b"".join(chunks)
    finally:
        t.HcsCloseComputeSystem(system[0])
        t.HcsCloseOperation(op)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pyhcs-bench-") as tmp:
        directory = Path(tmp) / "emu"
        pid = autostart.start(directory)
        t = open_table(directory)
        try:
            op = t.HcsCreateOperation(ffi.NULL, ffi.NULL)
            n = 100_000
            start = time.perf_counter()
            for _ in range(n):
                t.HcsGetOperationType(op)
            local = (time.perf_counter() - start) / n

            system = ffi.new("HCS_SYSTEM *")
            t.HcsCreateComputeSystem("bench-props", CONTAINER, op, ffi.NULL, system)
            _wait(t, op)
            t.HcsStartComputeSystem(system[0], op, ffi.NULL)
            _wait(t, op)
            n = 2_000
            start = time.perf_counter()
            for _ in range(n):
                t.HcsGetComputeSystemProperties(system[0], op, ffi.NULL)
                doc = ffi.new("PWSTR *")
                t.HcsWaitForOperationResult(op, WAIT_MS, doc)
                t.LocalFree(doc[0])
            remote = (time.perf_counter() - start) / n
            t.HcsTerminateComputeSystem(system[0], op, ffi.NULL)
            _wait(t, op)
            t.HcsCloseComputeSystem(system[0])
            t.HcsCloseOperation(op)

            n = 50
            start = time.perf_counter()
            for i in range(n):
                lifecycle(t, f"seq-{i}")
            sequential = n / (time.perf_counter() - start)

            threads = [threading.Thread(target=lifecycle, args=(t, f"par-{i}")) for i in range(50)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            parallel = 50 / (time.perf_counter() - start)

            size = 64 << 20
            start = time.perf_counter()
            out = lifecycle(t, "throughput", f"head -c {size} /dev/zero")
            throughput = len(out) / (time.perf_counter() - start) / (1 << 20)

            print(f"local call (HcsGetOperationType):        {local * 1e6:9.2f} us")
            print(f"round trip (GetProperties, running):     {remote * 1e6:9.2f} us")
            print(f"lifecycles/s sequential:                 {sequential:9.1f}")
            print(f"lifecycles/s, 50 at once:                {parallel:9.1f}")
            print(f"stdout pipe throughput:                  {throughput:9.1f} MiB/s")
            # Ratios are what to compare between runs (absolute times vary with the machine).
            print(f"round trip / local call:                 {remote / local:9.1f}x")
            print(f"50 at once / sequential lifecycles:      {parallel / sequential:9.2f}x")
            print(f"one lifecycle / one round trip:          {1 / (sequential * remote):9.1f}x")
            print(f"client counters after run:               {t.client.counters()}")
        finally:
            t.close()
            os.kill(pid, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
