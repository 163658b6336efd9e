"""A worker process says it is there: it registers in the queue's ``workers`` table (id, host, pid,
start) and heartbeats every ``queue.config.heartbeat_interval`` seconds, busy or idle, so
``python -m bot status`` and the metrics list idle workers too and show a silent one as gone.
At a clean shutdown it marks itself stopped.

Presence is for operators only: job leases, not these rows, decide who owns a job, so a failed
presence write is logged and retried, and never stops the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from storage import JobQueue

log = logging.getLogger(__name__)


class Presence:
    """One worker's registration and heartbeat task. ``await Presence.start(...)``, then ``await stop()``."""

    def __init__(self, queue: JobQueue, worker_id: str, interval_s: float) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.interval_s = interval_s
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._registered = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, queue: JobQueue, worker_id: str, interval_s: float | None = None) -> Presence:
        presence = cls(queue, worker_id, queue.config.heartbeat_interval if interval_s is None else interval_s)
        await presence.beat()
        presence._task = asyncio.create_task(presence._beat_forever(), name=f"presence-{worker_id}")
        return presence

    async def beat(self) -> None:
        """Register (again, when the row is missing) or heartbeat; a failure is logged, not raised."""
        try:
            if not self._registered or not await self.queue.worker_heartbeat(self.worker_id):
                await self.queue.register_worker(self.worker_id, host=self.host, pid=self.pid)
                if not self._registered:
                    log.info("worker %s registered (host %s, pid %d)", self.worker_id, self.host, self.pid)
                self._registered = True
        except Exception as error:
            log.warning("worker %s: heartbeat not recorded (%s: %s); will retry", self.worker_id,
                        type(error).__name__, error)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.beat()

    async def stop(self) -> None:
        """Stop heartbeating and mark the worker stopped (best effort: a dead queue just leaves it gone)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.queue.unregister_worker(self.worker_id)
        except Exception as error:
            log.warning("worker %s: could not record its stop (%s: %s)", self.worker_id, type(error).__name__, error)
