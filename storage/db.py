"""One SQLite connection, opened right (WAL, busy_timeout, migrations), and the transaction discipline.

Every operation runs under an ``asyncio.Lock``, so coroutines sharing this connection never issue
statements inside each other's transactions, and every writing transaction starts with
``BEGIN IMMEDIATE``: it takes SQLite's write lock up front, so another process holding it makes us
wait (up to ``busy_timeout``) instead of failing half-way with "database is locked".

Each operation runs as its own task that the caller's cancellation cannot interrupt
(``storage.inflight``): a worker cancelled mid-heartbeat must not leave a transaction open on the
connection, which would hold the write lock against every other process.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

import aiosqlite

from storage.inflight import InFlight
from storage.migrations import MIGRATIONS, Migration, apply_migrations
from storage.values import Clock

T = TypeVar("T")
Body = Callable[[aiosqlite.Connection], Awaitable[T]]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

MEMORY_PATH = ":memory:"


class Database:
    """A migrated SQLite database behind one aiosqlite connection. Use ``Database.open``."""

    def __init__(self, conn: aiosqlite.Connection, path: str, clock: Clock) -> None:
        self._conn = conn
        self.path = path
        self.clock = clock
        self._lock = asyncio.Lock()
        self._inflight = InFlight()

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Clock,
        busy_timeout: float,
        synchronous: Synchronous,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> Database:
        location = os.fspath(path)
        if location != MEMORY_PATH:
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module never opens transactions on its own; we do.
        conn = await aiosqlite.connect(location, isolation_level=None, timeout=busy_timeout)
        try:
            conn.row_factory = sqlite3.Row
            await conn.execute_fetchall(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            ((mode,),) = await conn.execute_fetchall("PRAGMA journal_mode = WAL")
            if mode.lower() not in ("wal", "memory"):
                raise sqlite3.OperationalError(f"could not switch {location} to WAL mode (got {mode!r})")
            await conn.execute_fetchall(f"PRAGMA synchronous = {_checked_synchronous(synchronous)}")
            await apply_migrations(conn, location, migrations)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, location, clock)

    def now(self) -> float:
        return self.clock()

    async def write(self, body: Body[T]) -> T:
        """Run ``body`` inside ``BEGIN IMMEDIATE … COMMIT`` (rolled back if it raises)."""
        return await self._inflight.run(self._transaction(body))

    async def read(self, body: Body[T]) -> T:
        """Run ``body`` (one or more reads) without opening a write transaction."""
        return await self._inflight.run(self._locked(body))

    async def close(self) -> None:
        if not await self._inflight.close():
            return
        async with self._lock:
            await self._conn.close()

    @property
    def closed(self) -> bool:
        return self._inflight.closed

    async def _locked(self, body: Body[T]) -> T:
        async with self._lock:
            return await body(self._conn)

    async def _transaction(self, body: Body[T]) -> T:
        async with self._lock:
            conn = self._conn
            await conn.execute_fetchall("BEGIN IMMEDIATE")
            try:
                result = await body(conn)
                await conn.execute_fetchall("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await conn.execute_fetchall("ROLLBACK")
                raise
            return result


def _checked_synchronous(value: str) -> str:
    allowed = ("OFF", "NORMAL", "FULL", "EXTRA")
    if value.upper() not in allowed:
        raise ValueError(f"synchronous must be one of {allowed}, got {value!r}")
    return value.upper()
