"""Shared fixtures: a controllable clock, and queues on a real SQLite file or a real PostgreSQL server.

The ``backend`` fixture runs every test that uses ``queue``/``open_queue``/``queue_url`` twice, once
per engine (one contract suite). PostgreSQL is a server these fixtures start once per session
(tests/storage/servers.py), or the one ``SMOOTHBOT_TEST_POSTGRES_URL`` names; each test gets a
fresh database on it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import storage
from storage import JobQueue
from tests.storage.servers import POSTGRES_URL_VARIABLE, PostgresServer, SeaweedServer


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """The session's own PostgreSQL (None when SMOOTHBOT_TEST_POSTGRES_URL names one)."""
    if os.environ.get(POSTGRES_URL_VARIABLE):
        yield None
        return
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    directory = Path(tempfile.mkdtemp(prefix="smoothbot-pg-"))
    server = PostgresServer(directory).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_admin_url(postgres_server: PostgresServer | None) -> str:
    return os.environ.get(POSTGRES_URL_VARIABLE) or postgres_server.url("postgres")


def database_url(admin_url: str, database: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture
async def postgres_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    name = f"test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield database_url(postgres_admin_url, name)
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


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


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedServer]:
    directory = Path(tempfile.mkdtemp(prefix="smoothbot-weed-"))
    server = SeaweedServer(directory).start(buckets=("smoothbot",))
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
