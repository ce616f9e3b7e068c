"""What the typed-API tests share: a container document and threads released together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

#: The smallest container document; its last handle closing terminates it.
CONTAINER: dict[str, Any] = {
    "SchemaVersion": {"Major": 2, "Minor": 1},
    "Owner": "api-tests",
    "ShouldTerminateOnLastHandleClosed": True,
    "Container": {},
}


def together(count: int, work: Callable[[int], object], *, timeout: float = 60.0) -> None:
    """Run ``work(0)`` .. ``work(count - 1)`` on as many threads released at once by a barrier;
    fails if one is still running after ``timeout`` seconds, and re-raises the first failure."""
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout)
            work(n)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,), name=f"together-{n}") for n in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = [thread.name for thread in threads if thread.is_alive()]
    assert not hung, f"still running after {timeout} s: {hung}"
    if failures:
        raise failures[0]
