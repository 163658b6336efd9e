"""Shared fixtures: a controllable clock and a factory for queues on a real SQLite file in tmp_path."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from storage import SqliteJobQueue


class FakeClock:
    """POSIX seconds that move only when a test says so, so lease expiry needs no sleeping."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "smoothbot.sqlite3"


OpenQueue = Callable[..., Any]


@pytest.fixture
async def open_queue(db_path: Path, clock: FakeClock) -> AsyncIterator[OpenQueue]:
    """``await open_queue(**options)`` opens another queue object (connection) on the same file."""
    opened: list[SqliteJobQueue] = []

    async def open_one(**options: Any) -> SqliteJobQueue:
        options.setdefault("clock", clock)
        options.setdefault("lease_seconds", 30)
        queue = await SqliteJobQueue.open(db_path, **options)
        opened.append(queue)
        return queue

    yield open_one
    for queue in opened:
        await queue.close()


@pytest.fixture
async def queue(open_queue: OpenQueue) -> SqliteJobQueue:
    return await open_queue()


AddJob = Callable[..., Any]


@pytest.fixture
def add_job() -> AddJob:
    """``await add_job(queue, user, message, **options)``: a job in the user's private chat
    (chat id = user id, as on Telegram); returns the Job."""

    async def add(queue: SqliteJobQueue, user: int | str, message: int | str, **options: Any):
        result = await queue.enqueue("telegram", user, user, message, f"/data/in/{user}-{message}.mp4", options)
        return result.job

    return add
