"""Something only one process may do at a time among those sharing a queue database (Telegram's
``getUpdates`` accepts one consumer per bot token): ``queue.exclusive(name)``.

- SQLite (one machine, one bot process): ``LocalHold`` is held at once and never lost.
- PostgreSQL: ``AdvisoryHold`` takes a session advisory lock on a connection of its own. The
  others wait as hot standbys, trying again every ``retry_s`` seconds. The server releases the
  lock when the holder's connection ends, so a holder that is killed (or whose machine dies) is
  replaced within about ``retry_s`` of the server noticing. The holder checks its connection every
  ``check_s`` seconds and reports the hold lost (``wait_lost``) as soon as it breaks, so it stops
  before a standby can have taken over for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

import asyncpg

log = logging.getLogger(__name__)

#: First key of these advisory locks (the queue's own locks use 0x5B07): never another application's.
HOLD_LOCK_SPACE = 0x5B08
DEFAULT_RETRY_S = 2.0
DEFAULT_CHECK_S = 2.0
CONNECT_TIMEOUT_S = 10.0


class ExclusiveHold(ABC):
    """Held by at most one process at a time. ``await acquire()``, then watch ``wait_lost()``."""

    def __init__(self, name: str) -> None:
        if not name:
            raise ValueError("a hold needs a name")
        self.name = name

    @property
    @abstractmethod
    def held(self) -> bool: ...

    @abstractmethod
    async def acquire(self) -> None:
        """Wait until this process holds it (for ever, while another holds it)."""

    @abstractmethod
    async def wait_lost(self) -> None:
        """Returns when the hold ended: the database connection broke (or ``release`` was called)."""

    @abstractmethod
    async def release(self) -> None:
        """Let another process take it (idempotent)."""


class LocalHold(ExclusiveHold):
    """SQLite: one machine, one bot process; held at once, never lost."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._held = False
        self._never = asyncio.Event()

    @property
    def held(self) -> bool:
        return self._held

    async def acquire(self) -> None:
        self._held = True

    async def wait_lost(self) -> None:
        await self._never.wait()

    async def release(self) -> None:
        self._held = False


class AdvisoryHold(ExclusiveHold):
    """PostgreSQL: ``pg_try_advisory_lock`` on a dedicated connection, tried every ``retry_s``."""

    def __init__(self, dsn: str, name: str, *, retry_s: float = DEFAULT_RETRY_S,
                 check_s: float = DEFAULT_CHECK_S) -> None:
        super().__init__(name)
        if retry_s <= 0 or check_s <= 0:
            raise ValueError("retry_s and check_s must be positive")
        self.dsn = dsn
        self.retry_s = retry_s
        self.check_s = check_s
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._lost.is_set()

    async def acquire(self) -> None:
        if self.held:
            return
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
                while not await asyncio.wait_for(
                        conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", HOLD_LOCK_SPACE, self.name),
                        CONNECT_TIMEOUT_S):
                    await asyncio.sleep(self.retry_s)
            except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.info("hold %r: database not reachable (%s: %s); trying again", self.name,
                         type(error).__name__, error)
                await _close(conn)
                await asyncio.sleep(self.retry_s)
                continue
            except BaseException:
                await _close(conn)
                raise
            self._conn = conn
            self._lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: self._lost.set())
            self._watch = asyncio.create_task(self._check_forever(conn), name=f"hold-{self.name}")
            return

    async def _check_forever(self, conn: asyncpg.Connection) -> None:
        """A connection that breaks (server restart, network) ends the hold: the server let the lock go."""
        try:
            while not self._lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), self.check_s)
                if not self._lost.is_set():
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self.check_s)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("hold %r lost: its database connection broke (%s: %s)", self.name,
                        type(error).__name__, error)
        finally:
            self._lost.set()
            if self._conn is conn:
                self._conn = None
            conn.terminate()

    async def wait_lost(self) -> None:
        await self._lost.wait()

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)  # closing the session releases the lock
        self._lost = asyncio.Event()


async def _close(conn: asyncpg.Connection | None) -> None:
    if conn is not None and not conn.is_closed():
        conn.terminate()
