"""The typed API's costs, measured in one run (issue 8): python benchmarks/bench_api.py

(a) per-call overhead of the typed API (``ComputeSystem.properties()``, ``start()``) against the
    same HCS calls written by hand on ``pyhcs.raw``, on the emulator and on the native backend
    over the C stand-in DLL of the tests (tests/native/fakecore.c, whose calls cost next to
    nothing, so the wrapper's own cost shows);
(b) ``pyhcs.raw`` (cffi, ABI mode) against a ctypes binding of the same functions of the same
    DLL, declared with argtypes/restype: the least a ctypes-based binding (win32more,
    PythonForWindows) pays per call, before its own wrapper code;
(c) lifecycles create → start → process → exit → terminate → close, raw and typed, one after
    another and 100 at once (threads; and `pyhcs.aio` when it is there), and 1,000 operations
    pending at once through `pyhcs.aio` with this process's thread count;
(d) event delivery latency: a process stamps CLOCK_MONOTONIC (system-wide) just before it
    exits; the time until its ``ProcessExited`` reaches an ``on_event`` callback, split into
    the service's part (stamp → the client's hub records the event) and pyhcs's dispatch (hub →
    the user callback on the ``pyhcs-events`` thread);
(e) parse + to_json of a full container document with the schema models.

The native and emulator parts run in child processes of their own (``pyhcs.raw.lib`` serves
one backend per process); the schema part runs here. Each comparison alternates its two sides
over several rounds and keeps the best round of each (the machines are shared and noisy).
Prints a table and writes JSON (``--json``); ``--quick`` is a smoke run with tiny counts whose
numbers mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import importlib
import inspect
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # measure this checkout, not an installed pyhcs
    sys.path.insert(0, str(REPO))

from pyhcs import schema  # noqa: E402
from pyhcs.raw import NativeLibrary, ffi, lib  # noqa: E402

DEFAULT_JSON = REPO / "benchmarks" / "results" / "bench_api.json"
WAIT_MS = 30_000
CONTAINER = json.dumps(
    {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "ShouldTerminateOnLastHandleClosed": True,
        "Container": {},
    }
)
EXIT_EVENT_TIMEOUT = 30.0

#: A full process-isolated Windows container document, as a runtime builds one (hcsshim's
#: hcsoci shape): five image layers and the scratch volume, mapped directories and a pipe,
#: memory and CPU limits, networking in a namespace with DNS settings, registry changes and a
#: Hyper-V socket service table.
FULL_CONTAINER: dict[str, Any] = {
    "Owner": "containerd-shim-runhcs-v1",
    "SchemaVersion": {"Major": 2, "Minor": 1},
    "Container": {
        "GuestOs": {"HostName": "web-7d9c5b6f4-x2x8k"},
        "Storage": {
            "Layers": [
                {
                    "Id": f"{index:08x}-6c1f-4e5b-9a8d-{index:012x}",
                    "Path": f"C:\\ProgramData\\containerd\\root\\snapshots\\{index}",
                }
                for index in range(1, 6)
            ],
            "Path": "\\\\?\\Volume{2b4d6f8a-1c3e-4a5b-9c7d-0e1f2a3b4c5d}\\",
        },
        "MappedDirectories": [
            {
                "HostPath": "C:\\var\\lib\\kubelet\\pods\\3f6e\\volumes\\config",
                "ContainerPath": "C:\\config",
                "ReadOnly": True,
            },
            {"HostPath": "C:\\var\\log\\pods\\web", "ContainerPath": "C:\\logs"},
            {"HostPath": "C:\\data\\cache", "ContainerPath": "C:\\cache", "ReadOnly": False},
        ],
        "MappedPipes": [
            {
                "ContainerPipeName": "docker_engine",
                "HostPath": "\\\\.\\pipe\\docker_engine",
                "HostPathType": "AbsolutePath",
            }
        ],
        "Memory": {"SizeInMB": 2048},
        "Processor": {"Count": 2, "Maximum": 5000},
        "Networking": {
            "AllowUnqualifiedDnsQuery": True,
            "DnsSearchList": "default.svc.cluster.local,svc.cluster.local,cluster.local",
            "Namespace": "5e0c2a4f-8b3d-4c6e-9f1a-2b3c4d5e6f70",
        },
        "RegistryChanges": {
            "AddValues": [
                {
                    "Key": {
                        "Hive": "System",
                        "Name": "ControlSet001\\Control\\Session Manager\\Environment",
                    },
                    "Name": "CONTAINER_ID",
                    "Type": "String",
                    "StringValue": "web-7d9c5b6f4-x2x8k",
                }
            ]
        },
        "HvSocket": {
            "Config": {
                "DefaultBindSecurityDescriptor": "D:P(A;;FA;;;SY)(A;;FA;;;BA)",
                "ServiceTable": {
                    "0000006d-facb-11e6-bd58-64006a7986d3": {
                        "BindSecurityDescriptor": "D:P(A;;FA;;;SY)",
                        "AllowWildcardBinds": True,
                    }
                },
            }
        },
    },
    "ShouldTerminateOnLastHandleClosed": True,
}


class Sizes:
    """How much each part measures (``--quick``: just enough to run every code path)."""

    def __init__(self, quick: bool) -> None:
        self.rounds = 2 if quick else 7
        # Short rounds, many of them: the best round is one the machine's other jobs left alone.
        self.native_rounds = 2 if quick else 25
        self.native_calls = 200 if quick else 4_000
        self.ctypes_calls = 500 if quick else 20_000
        self.emulator_calls = 20 if quick else 400
        self.lifecycles = 3 if quick else 40
        self.concurrent = 5 if quick else 100
        self.pending = 20 if quick else 1_000
        self.events = 5 if quick else 200
        self.schema_calls = 20 if quick else 2_000


# -- timing helpers ----------------------------------------------------------------------------


def per_call(function: Callable[[], object], n: int) -> float:
    """Seconds per call of ``n`` calls in a row."""
    start = time.perf_counter()
    for _ in range(n):
        function()
    return (time.perf_counter() - start) / n


def compare(
    mine: Callable[[], object], reference: Callable[[], object], n: int, rounds: int
) -> tuple[float, float]:
    """(best round of ``mine``, best round of ``reference``), the two alternating."""
    for _ in range(max(1, n // 10)):  # warm both up
        mine()
        reference()
    best_mine = best_reference = float("inf")
    for _ in range(rounds):
        best_reference = min(best_reference, per_call(reference, n))
        best_mine = min(best_mine, per_call(mine, n))
    return best_mine, best_reference


def row(
    section: str,
    name: str,
    value: float | None,
    unit: str,
    *,
    reference: float | None = None,
    reference_name: str = "",
    target: str = "",
    met: bool | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One line of the table and of the JSON."""
    ratio = None if value is None or not reference else value / reference
    return {
        "section": section,
        "name": name,
        "value": value,
        "unit": unit,
        "reference": reference,
        "reference_name": reference_name,
        "ratio": ratio,
        "target": target,
        "met": met,
        "note": note,
    }


def unavailable(section: str, name: str, why: str) -> dict[str, Any]:
    return row(section, name, None, "", note=f"n/a ({why})")


def versus(
    section: str,
    name: str,
    mine: Callable[[], object],
    reference: Callable[[], object],
    *,
    against: str,
    limit: float,
    n: int,
    rounds: int,
) -> dict[str, Any]:
    """A row comparing two per-call costs, the target being ``mine`` ≤ ``limit`` x reference."""
    mine_s, reference_s = compare(mine, reference, n, rounds)
    return row(
        section,
        name,
        mine_s,
        "s",
        reference=reference_s,
        reference_name=against,
        target=f"≤ {limit:g}x",
        met=mine_s <= limit * reference_s,
    )


def _check(code: int, what: str) -> None:
    if code < 0:
        raise RuntimeError(f"{what} failed: {code & 0xFFFFFFFF:#010x}")


# -- the hand-written raw sequences (what a careful caller of pyhcs.raw writes) ----------------


def raw_properties(handle: Any) -> Any:
    """HcsCreateOperation → HcsGetComputeSystemProperties → HcsWaitForOperationResult → copy
    the string → LocalFree → HcsCloseOperation, then json.loads (to use the answer)."""
    op = lib.HcsCreateOperation(ffi.NULL, ffi.NULL)
    try:
        _check(lib.HcsGetComputeSystemProperties(handle, op, ffi.NULL), "GetProperties")
        out = ffi.new("PWSTR *")
        code = lib.HcsWaitForOperationResult(op, WAIT_MS, out)
        text = None
        if out[0] != ffi.NULL:
            text = ffi.string(out[0])
            lib.LocalFree(out[0])
        _check(code, "HcsWaitForOperationResult")
        return json.loads(text or "{}")
    finally:
        lib.HcsCloseOperation(op)


def raw_start(handle: Any) -> None:
    """HcsStartComputeSystem through an operation, the result document freed if any."""
    op = lib.HcsCreateOperation(ffi.NULL, ffi.NULL)
    try:
        _check(lib.HcsStartComputeSystem(handle, op, ffi.NULL), "HcsStartComputeSystem")
        out = ffi.new("PWSTR *")
        code = lib.HcsWaitForOperationResult(op, WAIT_MS, out)
        if out[0] != ffi.NULL:
            lib.LocalFree(out[0])
        _check(code, "HcsWaitForOperationResult")
    finally:
        lib.HcsCloseOperation(op)


def raw_open(system_id: str) -> Any:
    out = ffi.new("HCS_SYSTEM *")
    _check(lib.HcsOpenComputeSystem(system_id, 0x10000000, out), "HcsOpenComputeSystem")
    return out[0]


def _raw_wait(op: Any, what: str) -> None:
    _check(lib.HcsWaitForOperationResult(op, WAIT_MS, ffi.NULL), what)


def raw_lifecycle(name: str) -> None:
    """create → start → process → exit → terminate → close, by hand on pyhcs.raw."""
    op = lib.HcsCreateOperation(ffi.NULL, ffi.NULL)
    system = ffi.new("HCS_SYSTEM *")
    process = ffi.new("HCS_PROCESS *")
    try:
        _check(lib.HcsCreateComputeSystem(name, CONTAINER, op, ffi.NULL, system), "create")
        _raw_wait(op, "create")
        _check(lib.HcsStartComputeSystem(system[0], op, ffi.NULL), "start")
        _raw_wait(op, "start")
        params = json.dumps({"CommandLine": "true"})
        _check(lib.HcsCreateProcess(system[0], params, op, ffi.NULL, process), "process")
        _raw_wait(op, "process")
        _check(lib.HcsWaitForProcessExit(process[0], WAIT_MS, ffi.NULL), "exit")
        lib.HcsCloseProcess(process[0])
        _check(lib.HcsTerminateComputeSystem(system[0], op, ffi.NULL), "terminate")
        _raw_wait(op, "terminate")
    finally:
        if system[0] != ffi.NULL:
            lib.HcsCloseComputeSystem(system[0])
        lib.HcsCloseOperation(op)


def typed_lifecycle(name: str) -> None:
    """The same lifecycle on the typed sync API."""
    from pyhcs import ComputeSystem  # noqa: PLC0415 (after the backend is bound)

    with ComputeSystem.create(name, CONTAINER) as system:
        system.start()
        with system.create_process({"CommandLine": "true"}) as process:
            process.wait(EXIT_EVENT_TIMEOUT)
        system.terminate()


# -- (a) and (b) over the C stand-in DLL -------------------------------------------------------


def compile_fake(directory: Path) -> Path:
    """tests/native/fakecore.c built as the tests build it (tests/conftest.py)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise FileNotFoundError("no C compiler (cc/gcc) on PATH")
    output = directory / "fakecore.so"
    source = REPO / "tests" / "native" / "fakecore.c"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-o", str(output), str(source)], check=True
    )
    return output


class CtypesBinding:
    """The same functions of the same DLL declared with ctypes (argtypes and restype set, as
    win32more and PythonForWindows declare theirs)."""

    def __init__(self, path: Path) -> None:
        dll = ctypes.CDLL(str(path))
        voidp, long_, dword = ctypes.c_void_p, ctypes.c_long, ctypes.c_ulong
        declarations: dict[str, tuple[list[Any], Any]] = {
            "HcsCreateOperation": ([voidp, voidp], voidp),
            "HcsCloseOperation": ([voidp], None),
            "HcsGetOperationType": ([voidp], ctypes.c_int32),
            "HcsStartComputeSystem": ([voidp, voidp, ctypes.c_void_p], long_),
            "HcsWaitForOperationResult": ([voidp, dword, ctypes.POINTER(voidp)], long_),
            "LocalFree": ([voidp], voidp),
        }
        for name, (argtypes, restype) in declarations.items():
            function = getattr(dll, name)
            function.argtypes = argtypes
            function.restype = restype
            setattr(self, name, function)

    def start(self, handle: int) -> None:
        """The raw start sequence, in ctypes."""
        op = self.HcsCreateOperation(None, None)
        try:
            _check(self.HcsStartComputeSystem(handle, op, None), "HcsStartComputeSystem")
            out = ctypes.c_void_p()
            code = self.HcsWaitForOperationResult(op, WAIT_MS, ctypes.byref(out))
            if out.value:
                self.LocalFree(out)
            _check(code, "HcsWaitForOperationResult")
        finally:
            self.HcsCloseOperation(op)

    def __getattr__(self, name: str) -> Any:  # the declared functions, for mypy
        raise AttributeError(name)


def part_native(sizes: Sizes) -> list[dict[str, Any]]:
    """(a) on the native backend over the stand-in DLL, and (b)."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pyhcs-bench-native-") as tmp:
        try:
            dll = compile_fake(Path(tmp))
        except (FileNotFoundError, subprocess.CalledProcessError) as exc:
            why = f"C stand-in DLL not built: {exc}"
            return [unavailable("a", "native backend", why), unavailable("b", "ctypes", why)]
        lib.use(
            NativeLibrary(paths={"computecore.dll": str(dll), "kernel32.dll": str(dll)}), "native"
        )
        from pyhcs import ComputeSystem  # noqa: PLC0415 (after the backend is bound)

        rounds = sizes.native_rounds
        with ComputeSystem.open("bench") as system:
            handle = raw_open("bench")
            try:
                typed: list[tuple[str, Callable[[], object], Callable[[], object], str]] = [
                    (
                        "properties() [model]",
                        system.properties,
                        lambda: raw_properties(handle),
                        "raw sequence + json.loads",
                    ),
                    (
                        "start() [no document]",
                        system.start,
                        lambda: raw_start(handle),
                        "raw sequence",
                    ),
                ]
                for name, mine, reference, against in typed:
                    rows.append(
                        versus(
                            "a",
                            f"native: {name}",
                            mine,
                            reference,
                            against=against,
                            limit=1.5,
                            n=sizes.native_calls,
                            rounds=rounds,
                        )
                    )
                binding = CtypesBinding(dll)
                address = int(ffi.cast("uintptr_t", handle))
                op = lib.HcsCreateOperation(ffi.NULL, ffi.NULL)
                ctypes_op = binding.HcsCreateOperation(None, None)
                n = sizes.ctypes_calls
                same: list[tuple[str, Callable[[], object], Callable[[], object], int]] = [
                    (
                        "HcsGetOperationType",
                        lambda: lib.HcsGetOperationType(op),
                        lambda: binding.HcsGetOperationType(ctypes_op),
                        n,
                    ),
                    (
                        "HcsCreateOperation+HcsCloseOperation",
                        lambda: lib.HcsCloseOperation(lib.HcsCreateOperation(ffi.NULL, ffi.NULL)),
                        lambda: binding.HcsCloseOperation(binding.HcsCreateOperation(None, None)),
                        n,
                    ),
                    (
                        "start sequence (4 calls + out-pointer)",
                        lambda: raw_start(handle),
                        lambda: binding.start(address),
                        n // 4,
                    ),
                ]
                try:
                    for name, mine, theirs, calls in same:
                        rows.append(
                            versus(
                                "b",
                                f"raw: {name}",
                                mine,
                                theirs,
                                against="ctypes",
                                limit=1,
                                n=calls,
                                rounds=rounds,
                            )
                        )
                finally:
                    lib.HcsCloseOperation(op)
                    binding.HcsCloseOperation(ctypes_op)
            finally:
                lib.HcsCloseComputeSystem(handle)
    return rows


# -- (a), (c), (d) on the emulator -------------------------------------------------------------


@contextmanager
def emulator_service() -> Iterator[Any]:
    """An isolated emulator service in a temporary directory, `pyhcs.raw.lib` bound to it."""
    from pyhcs.testing import Emulator  # noqa: PLC0415 (binds the backend)

    with tempfile.TemporaryDirectory(prefix="pyhcs-bench-api-") as tmp:
        emulator = Emulator(Path(tmp) / "emulator")
        try:
            yield emulator
        finally:
            emulator.stop()


class Names:
    """Fresh system ids (a closed system's id may still be in use until HCS forgets it)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, prefix: str) -> str:
        with self._lock:
            self._count += 1
            return f"{prefix}-{self._count}"


def concurrently(
    function: Callable[[str], None], count: int, names: Names, prefix: str
) -> tuple[float, int]:
    """Run ``count`` calls of ``function`` on as many threads at once: (calls per second, the
    most threads this process had meanwhile)."""
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix=prefix) as pool:
        start = time.perf_counter()
        futures = [pool.submit(function, names(prefix)) for _ in range(count)]
        peak = threading.active_count()
        for future in futures:
            future.result(timeout=300)  # a failed lifecycle raises here
        elapsed = time.perf_counter() - start
    return count / elapsed, peak


def lifecycle_rates(sizes: Sizes, names: Names) -> list[dict[str, Any]]:
    """(c) on threads: raw and typed lifecycles, one after another and many at once."""
    rows = []
    n = sizes.lifecycles
    typed, raw = compare(
        lambda: typed_lifecycle(names("typed")),
        lambda: raw_lifecycle(names("raw")),
        n,
        max(2, sizes.rounds // 2),
    )
    rows.append(
        row(
            "c",
            "lifecycles/s, sequential, typed",
            1 / typed,
            "/s",
            reference=1 / raw,
            reference_name="raw sequence",
            note="ratio: typed rate / raw rate",
        )
    )
    count = sizes.concurrent
    rate, peak = concurrently(raw_lifecycle, count, names, "raw-par")
    rows.append(
        row(
            "c",
            f"lifecycles/s, {count} at once on threads, raw",
            rate,
            "/s",
            note=f"peak threads {peak}",
        )
    )
    rate, peak = concurrently(typed_lifecycle, count, names, "typed-par")
    rows.append(
        row(
            "c",
            f"lifecycles/s, {count} at once on threads, typed",
            rate,
            "/s",
            note=f"peak threads {peak}",
        )
    )
    return rows


AIO_ROWS = ("aio lifecycles", "aio pending operations")


def aio_parts(sizes: Sizes, names: Names) -> list[dict[str, Any]]:
    """(c) through `pyhcs.aio`: "n/a" rows while that module does not exist."""
    try:
        aio = importlib.import_module("pyhcs.aio")
    except ModuleNotFoundError as exc:
        if exc.name != "pyhcs.aio":
            raise  # pyhcs.aio is there but something it needs is not: that is a failure
        return [unavailable("c", name, "pyhcs.aio missing") for name in AIO_ROWS]
    return asyncio.run(_aio_bench(aio, sizes, names))


async def _closed(thing: Any) -> None:
    """``close()`` whether the aio object makes it a coroutine or not."""
    result = thing.close()
    if inspect.isawaitable(result):
        await result


async def _aio_lifecycle(aio: Any, name: str) -> None:
    system = await aio.ComputeSystem.create(name, CONTAINER)
    try:
        await system.start()
        process = await system.create_process({"CommandLine": "true"})
        try:
            await process.wait(EXIT_EVENT_TIMEOUT)
        finally:
            await _closed(process)
        await system.terminate()
    finally:
        await _closed(system)


async def _peak_threads(stop: asyncio.Event, peak: list[int]) -> None:
    """Sample this process's thread count each millisecond until ``stop``."""
    while not stop.is_set():
        peak[0] = max(peak[0], threading.active_count())
        await asyncio.sleep(0.001)


async def _gather_counting_threads(coroutines: list[Any]) -> tuple[float, int]:
    """Await all at once: (seconds, the most threads this process had meanwhile)."""
    stop = asyncio.Event()
    peak = [threading.active_count()]
    sampler = asyncio.create_task(_peak_threads(stop, peak))
    start = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*coroutines), 300)
    finally:
        elapsed = time.perf_counter() - start
        stop.set()
        await sampler
    return elapsed, peak[0]


async def _aio_bench(aio: Any, sizes: Sizes, names: Names) -> list[dict[str, Any]]:
    rows = []
    n = sizes.lifecycles
    start = time.perf_counter()
    for _ in range(n):
        await _aio_lifecycle(aio, names("aio"))
    rows.append(row("c", "lifecycles/s, sequential, aio", n / (time.perf_counter() - start), "/s"))
    count = sizes.concurrent
    elapsed, peak = await _gather_counting_threads(
        [_aio_lifecycle(aio, names("aio-par")) for _ in range(count)]
    )
    rows.append(
        row(
            "c",
            f"lifecycles/s, {count} at once, aio",
            count / elapsed,
            "/s",
            note=f"peak threads {peak}",
        )
    )

    system = await aio.ComputeSystem.create(names("aio-pending"), CONTAINER)
    try:
        await system.start()
        peaks = {}
        for size in (10, sizes.pending):
            before = threading.active_count()
            elapsed, peaks[size] = await _gather_counting_threads(
                [system.properties() for _ in range(size)]
            )
            rows.append(
                row(
                    "c",
                    f"aio: {size} properties() pending at once",
                    elapsed / size,
                    "s",
                    note=f"per operation; threads {before} before, peak {peaks[size]}",
                )
            )
        rows.append(
            row(
                "c",
                f"aio: peak threads, {sizes.pending} pending vs 10",
                peaks[sizes.pending],
                "threads",
                reference=peaks[10],
                reference_name="10 pending",
                target="no growth",
                met=peaks[sizes.pending] <= peaks[10],
            )
        )
        await system.terminate()
    finally:
        await _closed(system)
    return rows


#: The process of (d): once it reads a byte on stdin it stamps CLOCK_MONOTONIC (time.monotonic,
#: system-wide) on stdout and exits at once.
STAMP = "import os,time;os.read(0,1);os.write(1,repr(time.monotonic()).encode());os._exit(0)"


def _percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) == 1:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


#: The two moments of (d): a process that ran for a while after the calls that started it
#: (the usual case), and one that exits right after them, when the emulator client's reader
#: still leaves the socket to callers (its READER_GRACE, 5 ms) and the event waits that out.
SETTLE = {"idle": 0.02, "right after the calls": 0.0}


def event_latency(system: Any, count: int) -> list[dict[str, Any]]:
    """(d) ProcessExited: from the process's last instant to the user's on_event callback."""
    rows = []
    for moment, settle in SETTLE.items():
        total, service, dispatch = _exit_latencies(system, count, settle)
        p50, p99 = _percentiles(total)
        label = f"ProcessExited ({moment}): exit → on_event callback"
        rows.append(row("d", f"{label}, p50", p50, "s", note=f"{len(total)} exits"))
        rows.append(row("d", f"{label}, p99", p99, "s", target="< 5 ms", met=p99 < 5e-3))
        for part, values in (
            ("exit → client hub (service + socket)", service),
            ("client hub → callback (pyhcs dispatch)", dispatch),
        ):
            p50, p99 = _percentiles(values)
            rows.append(row("d", f"  {part}, p50", p50, "s", note=f"p99 {_format(p99, 's')}"))
    return rows


def _exit_latencies(
    system: Any, count: int, settle: float
) -> tuple[list[float], list[float], list[float]]:
    """(exit → callback, exit → hub, hub → callback) in seconds, one of each per process."""
    from pyhcs.events import Event, EventType  # noqa: PLC0415 (after the backend is bound)

    total, service, dispatch = [], [], []
    command = subprocess.list2cmdline([sys.executable, "-S", "-c", STAMP])
    params = {"CommandLine": command, "CreateStdInPipe": True, "CreateStdOutPipe": True}
    for _ in range(count):
        seen: dict[str, float] = {}
        done = threading.Event()

        def on_event(
            event: Event, seen: dict[str, float] = seen, done: threading.Event = done
        ) -> None:
            if event.type == EventType.PROCESS_EXITED:
                seen["callback"] = time.monotonic()
                seen["received"] = event.received
                done.set()

        with system.create_process(params) as process:
            process.on_event(on_event)
            assert process.stdin is not None
            assert process.stdout is not None
            time.sleep(settle)  # the experiment: how long the process runs before it exits
            process.stdin.write(b"x")  # now it may exit: on_event is in place
            stamp = float(process.stdout.read())
            if not done.wait(EXIT_EVENT_TIMEOUT):
                raise TimeoutError("no ProcessExited within 30 s of the process's exit")
        total.append(seen["callback"] - stamp)
        service.append(seen["received"] - stamp)
        dispatch.append(seen["callback"] - seen["received"])
    return total, service, dispatch


def part_emulator(sizes: Sizes) -> list[dict[str, Any]]:
    """(a) on the emulator, (c) and (d)."""
    rows: list[dict[str, Any]] = []
    names = Names()
    with emulator_service() as emulator:
        from pyhcs import ComputeSystem  # noqa: PLC0415 (after the backend is bound)

        with ComputeSystem.create(names("props"), CONTAINER) as system:
            system.start()
            handle = raw_open(system.id)
            try:
                rows.append(
                    versus(
                        "a",
                        "emulator: properties() [model]",
                        system.properties,
                        lambda: raw_properties(handle),
                        against="raw sequence + json.loads",
                        limit=1.5,
                        n=sizes.emulator_calls,
                        rounds=sizes.rounds,
                    )
                )
            finally:
                lib.HcsCloseComputeSystem(handle)
            rows.extend(event_latency(system, sizes.events))
            system.terminate()
        rows.extend(lifecycle_rates(sizes, names))
        rows.extend(aio_parts(sizes, names))
        emulator.assert_no_leaks()
    return rows


# -- (e) schema --------------------------------------------------------------------------------


def part_schema(sizes: Sizes) -> list[dict[str, Any]]:
    """parse + to_json of a full container document, against json.loads + json.dumps."""
    text = json.dumps(FULL_CONTAINER)
    model = schema.ComputeSystem.parse(text, strict=True)  # the document is valid HCS input
    if json.loads(model.to_json()) != FULL_CONTAINER:
        raise RuntimeError("the full container document does not survive parse + to_json")
    mine, reference = compare(
        lambda: schema.ComputeSystem.parse(text).to_json(),
        lambda: json.dumps(json.loads(text)),
        sizes.schema_calls,
        sizes.rounds,
    )
    strict, _ = compare(
        lambda: schema.ComputeSystem.parse(text, strict=True).to_json(),
        lambda: None,
        sizes.schema_calls // 4,
        sizes.rounds,
    )
    return [
        row(
            "e",
            f"ComputeSystem.parse + to_json ({len(text)} chars)",
            mine,
            "s",
            reference=reference,
            reference_name="json.loads + json.dumps",
            target="≤ 50 µs",
            met=mine <= 50e-6,
        ),
        row("e", "  the same with strict=True (what the emulator checks)", strict, "s"),
    ]


# -- the run -----------------------------------------------------------------------------------

PARTS: dict[str, Callable[[Sizes], list[dict[str, Any]]]] = {
    "native": part_native,
    "emulator": part_emulator,
    "schema": part_schema,
}


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.2f} µs"
        return f"{value * 1e3:.2f} ms"
    if unit == "/s":
        return f"{value:.1f}/s"
    return f"{value:g} {unit}".strip()


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a fixed-width text table."""
    header = ("", "measurement", "pyhcs", "reference", "ratio", "target", "")
    lines = [header]
    for r in rows:
        reference = _format(r["reference"], r["unit"]) if r["reference"] is not None else ""
        if r["reference_name"]:
            reference = f"{reference} ({r['reference_name']})"
        met = "" if r["met"] is None else ("ok" if r["met"] else "MISSED")
        value = _format(r["value"], r["unit"]) if r["value"] is not None else r["note"]
        name = r["name"] if r["value"] is None or not r["note"] else f"{r['name']} [{r['note']}]"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        lines.append((r["section"], name, value, reference, ratio, r["target"], met))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def run_part(part: str, quick: bool) -> list[dict[str, Any]]:
    """One part in a child process of its own (one backend per process)."""
    with tempfile.TemporaryDirectory(prefix="pyhcs-bench-part-") as tmp:
        output = Path(tmp) / "rows.json"
        command = [sys.executable, __file__, "--part", part, "--part-output", str(output)]
        subprocess.run(command + (["--quick"] if quick else []), check=True, timeout=3600)
        rows: list[dict[str, Any]] = json.loads(output.read_text())
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write JSON")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--part-output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = Sizes(args.quick)
    if args.part:
        rows = PARTS[args.part](sizes)
        args.part_output.write_text(json.dumps(rows))
        return 0
    rows = run_part("native", args.quick) + run_part("emulator", args.quick) + part_schema(sizes)
    order = {section: index for index, section in enumerate("abcde")}
    rows.sort(key=lambda r: order[r["section"]])  # stable: each part's order is kept
    print(table(rows))
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "quick": args.quick,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
