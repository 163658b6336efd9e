"""Operations that a caller's cancellation cannot cut in half.

Each storage operation runs as its own task behind ``asyncio.shield``: a worker cancelled in the
middle of a heartbeat must not leave a transaction open (SQLite: the write lock held against every
other process; PostgreSQL: a commit whose answer nobody reads). The operation finishes (commit or
rollback) and the cancelled caller sees ``CancelledError``. ``close`` waits for what is in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from storage.errors import QueueClosedError

log = logging.getLogger(__name__)

T = TypeVar("T")


class InFlight:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()
        self.closed = False

    async def run(self, operation: Awaitable[T]) -> T:
        if self.closed:
            if asyncio.iscoroutine(operation):
                operation.close()
            raise QueueClosedError()
        task = asyncio.ensure_future(operation)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    async def close(self) -> bool:
        """Refuse new operations and wait for those in flight; False if it was closed already."""
        if self.closed:
            return False
        self.closed = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        return True

    def _forget(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        # If the caller was cancelled nobody awaits the task: log its failure instead of losing it.
        if not task.cancelled() and task.exception() is not None:
            log.debug("storage operation finished with %r", task.exception())
