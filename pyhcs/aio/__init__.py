"""pyhcs for asyncio: `ComputeSystem` and `Process` with ``async`` methods.

The same objects as `pyhcs.ComputeSystem` and `pyhcs.Process`, awaited::

    from pyhcs import aio

    async with await aio.ComputeSystem.create("demo", config) as system:
        await system.start()
        result = await system.run(["echo", "hello"], timeout=30)
        async for event in system.events():
            ...

An HCS call completes through its completion callback, which only hands the result to the
event loop (`pyhcs.aio.operations`): no thread waits per pending call, however many there are.
Every call is bounded by the timeouts of `pyhcs.timeouts`; a call that times out, or whose
awaiting task is cancelled, is cancelled in HCS (``HcsCancelOperation``), never abandoned.
"""

from __future__ import annotations

from pyhcs.aio.events import EventStream
from pyhcs.aio.operations import drain, pending
from pyhcs.aio.process import Process
from pyhcs.aio.system import ComputeSystem

__all__ = ["ComputeSystem", "EventStream", "Process", "drain", "pending"]
