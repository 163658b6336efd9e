"""Shared fixtures: a controllable clock, and queues on a real SQLite file or a real PostgreSQL server.

The ``backend`` fixture runs every test that uses ``queue``/``open_queue``/``queue_url`` twice, once
per engine (one contract suite). PostgreSQL (``postgres_url``: a fresh database per test) and
SeaweedFS (``seaweed``) come from tests/conftest.py.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import storage
from storage import JobQueue


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


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def queue_url(backend: str, db_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{db_path}"
    return request.getfixturevalue("postgres_url")


OpenQueue = Callable[..., Any]

SQLITE_ONLY = ("busy_timeout", "synchronous")


@pytest.fixture
async def open_queue(queue_url: str, backend: str, clock: FakeClock) -> AsyncIterator[OpenQueue]:
    """``await open_queue(**options)`` opens another queue object (connection or pool) on the same database."""
    opened: list[JobQueue] = []

    async def open_one(**options: Any) -> JobQueue:
        options.setdefault("clock", clock)
        options.setdefault("lease_seconds", 30)
        if backend != "sqlite":
            for name in SQLITE_ONLY:
                options.pop(name, None)
        queue = await storage.open_queue(queue_url, **options)
        opened.append(queue)
        return queue

    yield open_one
    for queue in opened:
        await queue.close()


@pytest.fixture
async def queue(open_queue: OpenQueue) -> JobQueue:
    return await open_queue()


AddJob = Callable[..., Any]


@pytest.fixture
def add_job() -> AddJob:
    """``await add_job(queue, user, message, **options)``: a job in the user's private chat
    (chat id = user id, as on Telegram); returns the Job."""

    async def add(queue: JobQueue, user: int | str, message: int | str, **options: Any):
        result = await queue.enqueue("telegram", user, user, message, f"/data/in/{user}-{message}.mp4", options)
        return result.job

    return add
