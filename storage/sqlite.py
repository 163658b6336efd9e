"""The SQLite dialect of the queue: ``SqliteJobQueue``, the embedded default (one file, no server).

The rules are in ``storage/rules.py``; this file says only how SQLite runs them: one aiosqlite
connection (``storage/db.py``: WAL, ``busy_timeout``, ``BEGIN IMMEDIATE``), so every writing
transaction is the only writer and needs no row locks, the user-turn serial is ``MAX + 1`` and the
change stamp is the next number (commit order is stamp order). Wake-ups reach this process only;
other processes on the file see new work at their next poll.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite

from storage.db import Database, Synchronous
from storage.files import FileStore
from storage.migrations import MIGRATIONS, Migration
from storage.queue import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_QUEUED_PER_USER,
    DEFAULT_PROGRESS_INTERVAL,
    OpeningQueue,
    QueueConfig,
)
from storage.rules import Body, Connection, Dialect, Row, SqlChatSettings, SqlJobQueue, T
from storage.values import Clock

DEFAULT_BUSY_TIMEOUT = 10.0
# FULL: a committed enqueue survives a power cut, not only a crash (WAL + NORMAL survives crashes only).
DEFAULT_SYNCHRONOUS: Synchronous = "FULL"

_NEXT_STAMP = "(SELECT COALESCE(MAX(change_seq), 0) + 1 FROM jobs)"


class _SqliteConnection:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, params or {}))


class SqliteDialect(Dialect):
    name = "sqlite"
    real = "REAL"
    json = "TEXT"
    next_turn = "(SELECT COALESCE(MAX(last_served), 0) + 1 FROM user_turns)"
    change_stamp = _NEXT_STAMP
    skip_locked = ""  # BEGIN IMMEDIATE: no other writer exists while we pick
    lock_row = ""

    def __init__(self, db: Database) -> None:
        super().__init__(db.clock)
        self.db = db

    async def write(self, body: Body[T]) -> T:
        return await self.db.write(lambda conn: body(_SqliteConnection(conn)))

    async def read(self, body: Body[T]) -> T:
        return await self.db.read(lambda conn: body(_SqliteConnection(conn)))

    async def serialise(self, conn: Connection, key: str) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already made this the only writing transaction."""

    async def change_horizon(self, conn: Connection) -> int:
        (row,) = await conn.fetch(f"SELECT {_NEXT_STAMP}")
        return int(row[0])

    async def close(self) -> None:
        await self.db.close()


class SqliteJobQueue(SqlJobQueue):
    """``JobQueue`` on one SQLite file. Open with ``SqliteJobQueue.open(path, ...)``.

    One connection per object; an asyncio lock keeps coroutines' transactions apart and
    ``busy_timeout`` makes other processes on the same file wait for each other.
    """

    def __init__(self, db: Database, config: QueueConfig, files: FileStore | None = None) -> None:
        super().__init__(SqliteDialect(db), config, files)
        self._db = db

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_queued_per_user: int | None = DEFAULT_MAX_QUEUED_PER_USER,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: Synchronous = DEFAULT_SYNCHRONOUS,
        clock: Clock = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
        files: FileStore | None = None,
    ) -> OpeningQueue[SqliteJobQueue]:
        """Open (creating and migrating as needed). ``await`` it, or use it as ``async with``."""
        config = QueueConfig(
            lease_seconds=lease_seconds,
            max_attempts=max_attempts,
            max_queued_per_user=max_queued_per_user,
            progress_interval=progress_interval,
        )

        async def opening() -> SqliteJobQueue:
            db = await Database.open(
                path, clock=clock, busy_timeout=busy_timeout, synchronous=synchronous, migrations=migrations
            )
            return cls(db, config, files)

        return OpeningQueue(opening)

    @property
    def path(self) -> str:
        return self._db.path


SqliteChatSettings = SqlChatSettings  # the name bot code and older tests know
