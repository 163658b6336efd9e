"""A worker and a courier on one queue, as ``python -m bot --role all`` runs them, for tests that
drive one job at a time."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.__main__ import run_loops
from bot.config import Settings
from bot.courier import Courier
from bot.replies import ChatReplier
from bot.worker import Worker
from storage import JobQueue

#: How often the courier looks at the queue while the worker runs a job.
FOLLOW_S = 0.02


class Pipeline:
    """``worker`` runs jobs; ``courier`` sends what they became to ``replier`` (platform "console")."""

    def __init__(self, queue: JobQueue, replier: ChatReplier, settings: Settings, *, platform: str = "console",
                 worker_id: str | None = None, **worker_options: Any) -> None:
        self.worker = Worker(queue, settings, worker_id=worker_id, **worker_options)
        self.courier = Courier(queue, {platform: replier}, settings, files=worker_options.get("files"),
                               owner=f"front-end-of-{worker_id}" if worker_id else None)

    @property
    def metrics(self):
        return self.worker.metrics

    @metrics.setter
    def metrics(self, observer) -> None:
        self.worker.metrics = observer
        self.courier.metrics = observer

    @property
    def engine_runner(self):
        return self.worker.engine_runner

    @engine_runner.setter
    def engine_runner(self, runner) -> None:
        self.worker.engine_runner = runner

    async def process_next(self) -> bool:
        """The worker runs the next job while the courier follows the queue; then the courier sends
        what is due. True when there was a job to run or an outcome to send."""
        sent = await self.courier.step()
        running = asyncio.ensure_future(self.worker.process_next())
        while not running.done():
            await asyncio.wait([running], timeout=FOLLOW_S)
            sent += await self.courier.step()
        busy = running.result()
        sent += await self.courier.deliver_pending()
        return busy or sent > 0

    async def run(self, stop: asyncio.Event) -> None:
        await run_loops(self.worker, self.courier, stop)
