"""The HCS emulator as a test utility, for anyone who tests code that drives HCS.

People who build on HCS have had no way to test off Windows. ``pyhcs.testing`` starts an
isolated emulator service in a directory of its own, binds this process's `pyhcs.raw.lib` (and
with it every pyhcs object) to it, injects faults into chosen HCS functions, and proves a test
leaked no handle, string or callback. The pytest plugin (`pyhcs.testing.plugin`, registered as
the ``pyhcs`` pytest11 entry point) wraps it in fixtures::

    def test_start_failure(hcs, hcs_faults):
        with hcs_faults.fail("HcsStartComputeSystem", hresult.HCS_E_INVALID_STATE):
            ...
"""

from __future__ import annotations

import gc
import os
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyhcs import callbacks, handle
from pyhcs.emulator import cli, statedir
from pyhcs.emulator.client import autostart
from pyhcs.emulator.client.faults import Fault, Hold
from pyhcs.errors import EmulatorError, InvalidStateError
from pyhcs.raw import lib

__all__ = ["Emulator", "FaultInjector", "Layers", "LeakError"]


class LeakError(AssertionError):
    """A test left handles, strings or callbacks behind."""


class FaultInjector:
    """Make chosen HCS functions of this process fail, stall or drop the service connection,
    for the length of a ``with`` block."""

    def __init__(self, table: Any) -> None:
        self._faults = table.client.faults

    @contextmanager
    def _active(self, function: str, fault: Fault) -> Iterator[Fault]:
        self._faults.inject(function, fault)
        try:
            yield fault
        finally:
            self._faults.clear(function)

    def fail(
        self, function: str, hresult: int, *, document: str | None = None, count: int | None = None
    ) -> Any:
        """``function`` fails with ``hresult`` (through its operation, as HCS reports runtime
        failures); ``count`` limits it to the next n calls."""
        return self._active(function, Fault(hresult=hresult, document=document, count=count))

    def delay(self, function: str, seconds: float, *, count: int | None = None) -> Any:
        """``function`` takes ``seconds`` longer."""
        return self._active(function, Fault(delay=seconds, count=count))

    def hold(self, function: str, *, count: int | None = None) -> Any:
        """``function`` stays pending until the block's ``fault.hold`` (a ``threading.Event``)
        is set; ``fault.entered`` is set once a call is held (so a test knows it is pending).
        Held operations cost no thread each."""
        return self._active(function, Fault(hold=Hold(), count=count))

    def drop_connection(self, function: str) -> Any:
        """``function`` cuts the connection to the service: everything after it sees
        ``HCS_E_SERVICE_DISCONNECT`` and a ServiceDisconnect event."""
        return self._active(function, Fault(drop_connection=True))


#: Longest path a Unix socket can have (``sun_path`` less its NUL: 108 on Linux, 104 elsewhere).
SOCKET_PATH_MAX = 107 if sys.platform.startswith("linux") else 103


def socket_fits(directory: Path) -> bool:
    """Whether the service socket of an emulator in ``directory`` can be bound."""
    return len(os.fsencode(directory / statedir.SOCKET_NAME)) <= SOCKET_PATH_MAX


class Emulator:
    """An emulator service in ``directory`` that this process's pyhcs talks to."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        if not socket_fits(self.directory):
            raise EmulatorError(
                f"{self.directory}: too long a path for the service's Unix socket "
                f"(at most {SOCKET_PATH_MAX} bytes with {statedir.SOCKET_NAME!r})",
                hint="give the emulator a shorter directory",
            )
        current = os.environ.get(statedir.DIR_ENV)
        if lib.resolved and current != str(self.directory):
            raise EmulatorError(
                f"pyhcs in this process already talks to {current or 'the default service'}; "
                "start the test emulator before the first HCS call",
                hint="use the hcs_emulator fixture (session scoped) for every test of the run",
            )
        os.environ["PYHCS_BACKEND"] = "emulator"
        os.environ[statedir.DIR_ENV] = str(self.directory)
        self.pid = autostart.start(self.directory)
        self.table = lib.table()
        self.faults = FaultInjector(self.table)

    def counters(self) -> dict[str, int]:
        """What this process holds: open handles by kind, live strings, registered callbacks."""
        counts: dict[str, int] = self.table.client.counters()
        counts["pyhcs_callbacks"] = callbacks.pending()
        return counts

    def assert_no_leaks(self, timeout: float = 10.0) -> None:
        """Raise LeakError if anything is still open once pending callbacks have run and
        unreferenced pyhcs objects were collected (an object closed by its finalizer was
        leaked too: it warned)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # reported below instead
            gc.collect()
        finalized = handle.take_leaks()
        settled = self.table.client.settle(timeout) or self.table.client.connection.disconnected
        leaks = {k: v for k, v in self.counters().items() if v and k != "bad_frees"}
        problems = []
        if finalized:
            problems.append("never closed: " + "; ".join(finalized))
        if leaks:
            problems.append(f"still open: {leaks}")
        if not settled:
            problems.append("callbacks did not settle")
        if self.table.errors:
            problems.append(f"exceptions reached C: {self.table.errors}")
        if problems:
            raise LeakError(". ".join(problems))

    def status(self) -> dict[str, Any]:
        """What the service holds (``pyhcs emulator status --json``)."""
        return cli.query_status(self.directory)

    def stop(self) -> None:
        """Stop the service (every system it holds is terminated)."""
        cli.stop(self.pid)


class Layers:
    """Fresh layers for one test, made in ``root`` and destroyed afterwards (`cleanup`): a base
    layer with the files you name, layers on top of it, writable layers for containers."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._made: list[Any] = []

    def _folder(self, name: str) -> Path:
        count = sum(1 for _ in self.root.glob(f"{name}*")) if self.root.exists() else 0
        return self.root / (name if count == 0 else f"{name}-{count}")

    def layer(
        self,
        files: Mapping[str, str | bytes] | None = None,
        parents: Sequence[Any] = (),
        *,
        name: str = "layer",
    ) -> Any:
        """A read-only layer holding ``files`` (relative path -> content), imported on top of
        ``parents`` (top-most first) the way an image layer is."""
        from pyhcs.layer import Layer  # noqa: PLC0415 (keeps the plugin light)

        download = self._folder(f"{name}-download")
        for relative, content in (files or {}).items():
            target = download / "Files" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            target.write_bytes(data)
        (download / "Files").mkdir(parents=True, exist_ok=True)
        layer = Layer(self._folder(name)).import_from(download, list(parents))
        self._made.append(layer)
        return layer

    def base(self, files: Mapping[str, str | bytes] | None = None, *, name: str = "base") -> Any:
        """A base OS layer (HcsSetupBaseOSLayer done) holding ``files``."""
        layer = self.layer(files or {"hello.txt": "hello from the base layer\n"}, name=name)
        layer.setup_base_os({"Type": "Container"})
        return layer

    def writable(self, parents: Sequence[Any], *, name: str = "scratch") -> Any:
        """An initialized writable layer over ``parents`` (attach it to run a container)."""
        from pyhcs.layer import Layer  # noqa: PLC0415

        layer = Layer(self._folder(name)).initialize_writable(list(parents))
        self._made.append(layer)
        return layer

    def cleanup(self) -> None:
        """Destroy every layer made here (a writable layer left attached is detached first)."""
        for layer in reversed(self._made):
            if not Path(layer.path).exists():
                continue
            try:
                layer.destroy()
            except InvalidStateError:  # still attached (ERROR_BUSY)
                layer.detach_filter()
                layer.destroy()
        self._made.clear()
