"""bot/presence.py: a worker registers, heartbeats while idle, registers again when its row is lost,
and is marked stopped at a clean stop; Worker.run does all of it."""

from __future__ import annotations

import asyncio
import os
import socket

import bot.worker
from bot.config import Settings
from bot.presence import Presence
from storage import SqliteJobQueue, WorkerStatus


async def wait_for(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


async def test_presence_registers_beats_re_registers_and_stops(tmp_path):
    async with SqliteJobQueue.open(tmp_path / "q.sqlite3") as queue:
        presence = await Presence.start(queue, "gpu-a", interval_s=0.05)
        (worker,) = await queue.workers()
        assert (worker.worker_id, worker.host, worker.pid, worker.status) == (
            "gpu-a", socket.gethostname(), os.getpid(), WorkerStatus.IDLE)
        first_beat = worker.last_beat_at

        async def beat_moved() -> bool:
            return (await queue.workers())[0].last_beat_at > first_beat

        await wait_for(beat_moved)
        await queue.dialect.write(lambda conn: conn.fetch("DELETE FROM workers"))  # e.g. a copied database

        async def back() -> bool:
            return len(await queue.workers()) == 1

        await wait_for(back)
        await presence.stop()
        (worker,) = await queue.workers()
        assert worker.status is WorkerStatus.STOPPED


async def test_the_worker_loop_is_present_while_it_runs(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    async with SqliteJobQueue.open(settings.database) as queue:
        worker = bot.worker.Worker(queue, settings, worker_id="gpu-loop", idle_poll_s=0.05)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))

        async def registered() -> bool:
            return [w.worker_id for w in await queue.workers()] == ["gpu-loop"]

        await wait_for(registered)
        assert (await queue.workers())[0].status is WorkerStatus.IDLE
        stop.set()
        await asyncio.wait_for(running, 10)
        assert (await queue.workers())[0].status is WorkerStatus.STOPPED
