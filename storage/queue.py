"""The durable job queue: ``JobQueue`` (the interface the bot is written against) and ``SqliteJobQueue``.

A job's life: ``enqueue`` (idempotent per platform message) → ``claim`` (a lease with a token) →
``heartbeat``/``progress`` while running → ``set_result`` → the bot sends the result →
``complete`` (done and delivered in one transaction). A worker that dies leaves its lease to
expire; the job then goes back to the queue (keeping a finished ``result_path``, so the next
worker only re-delivers) until ``max_attempts`` claims were used up, when it fails with a message
for the user. Every write a worker makes checks its claim token, so a worker whose lease was taken
over cannot overwrite the new owner's work.

See storage/README.md for the design and how each operation maps onto PostgreSQL.
"""

from __future__ import annotations

import heapq
import logging
import os
import sqlite3
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from storage.db import Database, Synchronous
from storage.errors import JobNotFoundError, JobStateError, LeaseLostError, QueueFullError
from storage.jobs import (
    CancelOutcome,
    CancelStatus,
    Claim,
    EnqueueResult,
    Job,
    JobState,
    LeaseState,
    RecoveryReport,
)
from storage.migrations import MIGRATIONS, Migration
from storage.settings import ChatSettingsStore, SqliteChatSettings
from storage.values import (
    PlatformId,
    Clock,
    encode_json_object,
    fraction,
    id_text,
    optional_id_text,
    path_text,
    platform_name,
    to_datetime,
)

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_MAX_QUEUED_PER_USER = 5
DEFAULT_PROGRESS_INTERVAL = 2.0
DEFAULT_BUSY_TIMEOUT = 10.0
# FULL: a committed enqueue survives a power cut, not only a crash (WAL + NORMAL survives crashes only).
DEFAULT_SYNCHRONOUS: Synchronous = "FULL"

# printf() template used in SQL; %d is the number of attempts that were interrupted.
GAVE_UP_MESSAGE = (
    "Sorry, I could not finish this video: processing was interrupted %d times, so I gave up on it. "
    "A shorter or smaller clip may work."
)


@dataclass(frozen=True)
class QueueConfig:
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_queued_per_user: int | None = DEFAULT_MAX_QUEUED_PER_USER  # None: no cap
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL  # seconds between progress writes

    def __post_init__(self) -> None:
        if self.lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {self.lease_seconds}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.max_queued_per_user is not None and self.max_queued_per_user < 1:
            raise ValueError(f"max_queued_per_user must be at least 1 or None, got {self.max_queued_per_user}")
        if self.progress_interval < 0:
            raise ValueError(f"progress_interval must not be negative, got {self.progress_interval}")

    @property
    def heartbeat_interval(self) -> float:
        """How often a worker should heartbeat: a third of the lease leaves room for two misses."""
        return self.lease_seconds / 3


class JobQueue(ABC):
    """The queue as the bot sees it. ``SqliteJobQueue`` implements it; a PostgreSQL one could too."""

    config: QueueConfig

    @property
    @abstractmethod
    def settings(self) -> ChatSettingsStore:
        """Per-chat settings kept next to the queue."""

    # --- producers (adapters) ---
    @abstractmethod
    async def enqueue(
        self,
        platform: str,
        chat_id: PlatformId,
        user_id: PlatformId,
        message_id: PlatformId,
        input_path: str | os.PathLike[str],
        options: Mapping[str, Any],
    ) -> EnqueueResult:
        """Add a job, or return the job this platform message already made (``created=False``).

        Raises ``QueueFullError`` when the user already has ``max_queued_per_user`` queued jobs.
        """

    @abstractmethod
    async def set_status_message(self, job_id: int, message_id: PlatformId) -> None:
        """Remember the bot's status message for this job, so the worker can edit it later.

        Raises ``JobNotFoundError`` for an unknown job."""

    @abstractmethod
    async def cancel(
        self, platform: str, chat_id: PlatformId, user_id: PlatformId, job_id: int | None = None
    ) -> CancelOutcome:
        """Cancel one of the user's jobs in this chat: ``job_id``, or else their newest active job.

        A queued job is cancelled at once; a running one gets ``cancel_requested`` for the worker.
        """

    @abstractmethod
    async def position(self, job_id: int) -> int | None:
        """1-based place of the job in the order the worker will claim jobs; None if not waiting."""

    @abstractmethod
    async def positions(self) -> dict[int, int]:
        """Every waiting job's 1-based place in the claim order: round-robin across users (the one
        served least recently first), FIFO within a user."""

    @abstractmethod
    async def get(self, job_id: int) -> Job | None:
        """The job as it is now, or None if there is no such job."""

    @abstractmethod
    async def jobs_for_user(
        self, platform: str, chat_id: PlatformId, user_id: PlatformId, *, include_finished: bool = False, limit: int = 10
    ) -> list[Job]:
        """The user's jobs in this chat, oldest first: the active ones, or the latest ``limit`` of all."""

    # --- the worker ---
    @abstractmethod
    async def recover(self, worker_id: str | None = None) -> RecoveryReport:
        """Hand back jobs whose lease expired; call at start-up.

        With ``worker_id``, jobs leased to that id are handed back too, expired or not: a worker
        that restarts under a stable id knows its previous run is dead and need not wait for the
        lease to run out. Never pass the id of a worker that may still be running.
        """

    @abstractmethod
    async def claim(self, worker_id: str) -> Claim | None:
        """Lease the next job in fair order, or None when nothing waits.

        Orphaned jobs (expired leases) are handed back first, in the same transaction. A claimed job
        with ``job.has_result`` only needs delivering: its result was computed by an earlier attempt.
        """

    @abstractmethod
    async def heartbeat(self, claim: Claim) -> LeaseState:
        """Extend the lease; also tells whether the user asked to cancel. Never raises on a lost lease."""

    @abstractmethod
    async def progress(self, claim: Claim, value: float) -> bool:
        """Record progress (0..1); returns whether it was written.

        Writes closer together than ``progress_interval`` are skipped, except the final 1.0.
        Raises ``LeaseLostError`` when a write finds the lease gone.
        """

    @abstractmethod
    async def set_result(self, claim: Claim, result_path: str | os.PathLike[str]) -> Job:
        """The result file is ready but not yet sent. If the worker dies now, the job comes back
        to a worker with ``has_result`` set, to be delivered without computing it again."""

    @abstractmethod
    async def complete(self, claim: Claim, reply_message_id: PlatformId | None) -> Job:
        """The result was delivered: done and ``delivered`` in one transaction, with the sent message id."""

    @abstractmethod
    async def fail(self, claim: Claim, user_message: str) -> Job:
        """The job cannot succeed; ``user_message`` is what the user is told.

        The failure then waits in ``unreported_failures()`` until ``mark_reported``, so the user hears
        of it even if the worker dies before sending the message.
        """

    @abstractmethod
    async def mark_cancelled(self, claim: Claim) -> Job:
        """The worker stopped the job because the user asked (``cancel_requested``)."""

    @abstractmethod
    async def release(self, claim: Claim) -> Job:
        """Give the job back untouched (the worker is shutting down); this attempt does not count."""

    @abstractmethod
    async def unreported_failures(self, limit: int = 20) -> list[Job]:
        """Failed jobs whose message the user has not been sent yet, oldest first."""

    @abstractmethod
    async def mark_reported(self, job_id: int, reply_message_id: PlatformId | None) -> Job:
        """The failure message was sent to the user (``reply_message_id`` is that message)."""

    # --- retention ---
    @abstractmethod
    async def purge_files(self, job_id: int) -> list[str]:
        """Delete a finished job's input and result files; the row stays, with the paths cleared.

        Returns the paths that were deleted. Files go first, then the paths: a crash in between
        leaves paths to missing files, which the next purge skips.
        """

    @abstractmethod
    async def cleanup(self, older_than: timedelta) -> int:
        """Delete the files of jobs that finished more than ``older_than`` ago; returns how many jobs."""

    @abstractmethod
    async def close(self) -> None:
        """Finish the operations in flight and release the database."""

    async def __aenter__(self) -> JobQueue:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


# --- SQL -------------------------------------------------------------------------------------------

_ACTIVE = "('queued', 'running')"
_FINISHED = "('done', 'failed', 'cancelled')"

# The fair pick: each user's oldest queued job ("head"); among users, the one served least recently
# (never served counts as 0, serials start at 1), then the oldest head. Mirrored by _fair_order().
_NEXT_JOB = """
WITH heads AS (
    SELECT platform, user_id, MIN(id) AS id FROM jobs WHERE state = 'queued' GROUP BY platform, user_id
)
SELECT heads.id FROM heads
LEFT JOIN user_turns AS turn ON turn.platform = heads.platform AND turn.user_id = heads.user_id
ORDER BY COALESCE(turn.last_served, 0), heads.id
LIMIT 1
"""

_CLAIM = f"""
UPDATE jobs SET
    state = 'running', attempts = attempts + 1,
    lease_token = :token, lease_owner = :worker, lease_expires_at = :expires,
    started_at = :now, updated_at = :now,
    progress = CASE WHEN result_path IS NULL THEN 0 ELSE 1 END
WHERE id = ({_NEXT_JOB}) AND state = 'queued'
RETURNING *
"""

_MARK_SERVED = """
INSERT INTO user_turns (platform, user_id, last_served)
VALUES (:platform, :user_id, (SELECT COALESCE(MAX(last_served), 0) + 1 FROM user_turns))
ON CONFLICT (platform, user_id) DO UPDATE SET last_served = excluded.last_served
"""

# Running jobs whose worker is gone: back to the queue, or failed when out of attempts, or
# cancelled when the user had asked to stop. A given-up job waits in unreported_failures().
_RECLAIM_ORPHANS = """
UPDATE jobs SET
    state = CASE WHEN cancel_requested THEN 'cancelled'
                 WHEN attempts >= max_attempts THEN 'failed'
                 ELSE 'queued' END,
    error = CASE WHEN NOT cancel_requested AND attempts >= max_attempts
                 THEN printf(:gave_up, attempts) ELSE error END,
    finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN :now ELSE NULL END,
    lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE state = 'running' AND (lease_expires_at <= :now OR lease_owner = :dead_owner)
RETURNING id, state
"""

# What the fair order is computed over: queued jobs plus the orphans the next claim will requeue.
_WAITING = """
SELECT job.id, job.platform, job.user_id, COALESCE(turn.last_served, 0) AS last_served
FROM jobs AS job
LEFT JOIN user_turns AS turn ON turn.platform = job.platform AND turn.user_id = job.user_id
WHERE job.state = 'queued'
   OR (job.state = 'running' AND job.lease_expires_at <= :now
       AND NOT job.cancel_requested AND job.attempts < job.max_attempts)
ORDER BY job.id
"""

_QUEUED_FOR_USER = "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND platform = :platform AND user_id = :user_id"

# Inserts nothing when the message was enqueued before (the UNIQUE key) or the user is at the cap.
_INSERT_UNDER_CAP = f"""
INSERT INTO jobs (platform, chat_id, user_id, message_id, input_path, options, max_attempts, created_at, updated_at)
SELECT :platform, :chat_id, :user_id, :message_id, :input_path, :options, :max_attempts, :now, :now
WHERE :cap IS NULL OR ({_QUEUED_FOR_USER}) < :cap
ON CONFLICT (platform, chat_id, message_id) DO NOTHING
RETURNING *
"""

# Ends a claim; the caller adds the new state's columns. Checked against the token.
_FINISH_LEASE = "lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = :now"


class SqliteJobQueue(JobQueue):
    """``JobQueue`` on one SQLite file. Open with ``SqliteJobQueue.open(path, ...)``.

    One connection per object; an asyncio lock keeps coroutines' transactions apart and
    ``busy_timeout`` makes other processes on the same file wait for each other.
    """

    def __init__(self, db: Database, config: QueueConfig) -> None:
        self._db = db
        self.config = config
        self._settings = SqliteChatSettings(db)
        self._last_progress_write: dict[str, float] = {}  # claim token -> clock time

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
    ) -> _OpeningQueue:
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
            return cls(db, config)

        return _OpeningQueue(opening)

    @property
    def settings(self) -> SqliteChatSettings:
        return self._settings

    @property
    def path(self) -> str:
        return self._db.path

    async def close(self) -> None:
        await self._db.close()

    # --- producers --------------------------------------------------------------------------------

    async def enqueue(
        self,
        platform: str,
        chat_id: PlatformId,
        user_id: PlatformId,
        message_id: PlatformId,
        input_path: str | os.PathLike[str],
        options: Mapping[str, Any],
    ) -> EnqueueResult:
        row = {
            "platform": platform_name(platform),
            "chat_id": id_text(chat_id, "chat_id"),
            "message_id": id_text(message_id, "message_id"),
            "user_id": id_text(user_id, "user_id"),
            "input_path": path_text(input_path, "input_path"),
            "options": encode_json_object(options, "job options"),
            "max_attempts": self.config.max_attempts,
        }
        cap = self.config.max_queued_per_user

        async def body(conn: aiosqlite.Connection) -> EnqueueResult:
            # The common case in one statement: a new message from a user under the cap.
            inserted = await _fetch_one(conn, _INSERT_UNDER_CAP, {**row, "cap": cap, "now": self._db.now()})
            if inserted is not None:
                return EnqueueResult(Job.from_row(inserted), created=True)
            existing = await _fetch_one(
                conn,
                "SELECT * FROM jobs WHERE platform = :platform AND chat_id = :chat_id AND message_id = :message_id",
                row,
            )
            if existing is not None:  # a re-delivered message: answered even when the user is at the cap
                return EnqueueResult(Job.from_row(existing), created=False)
            (count,) = await _fetch_one(conn, _QUEUED_FOR_USER, row)
            raise QueueFullError(count, cap)

        return await self._db.write(body)

    async def set_status_message(self, job_id: int, message_id: PlatformId) -> None:
        params = {"id": job_id, "message": id_text(message_id, "message_id"), "now": self._db.now()}
        updated = await self._db.write(
            lambda conn: _fetch_one(
                conn,
                "UPDATE jobs SET status_message_id = :message, updated_at = :now WHERE id = :id RETURNING id",
                params,
            )
        )
        if updated is None:
            raise JobNotFoundError(job_id)

    async def cancel(
        self, platform: str, chat_id: PlatformId, user_id: PlatformId, job_id: int | None = None
    ) -> CancelOutcome:
        owner = {
            "platform": platform_name(platform),
            "chat_id": id_text(chat_id, "chat_id"),
            "user_id": id_text(user_id, "user_id"),
        }

        async def body(conn: aiosqlite.Connection) -> CancelOutcome:
            mine = "platform = :platform AND chat_id = :chat_id AND user_id = :user_id"
            if job_id is not None:
                row = await _fetch_one(conn, f"SELECT * FROM jobs WHERE id = :id AND {mine}", {**owner, "id": job_id})
                if row is None:
                    return CancelOutcome(CancelStatus.NOT_FOUND, None)
            else:
                # The newest job not already being stopped: "undo what I just sent".
                row = await _fetch_one(
                    conn,
                    f"SELECT * FROM jobs WHERE {mine} AND state IN {_ACTIVE} "
                    "ORDER BY cancel_requested, id DESC LIMIT 1",
                    owner,
                )
                if row is None:
                    return CancelOutcome(CancelStatus.NOTHING, None)
            job = Job.from_row(row)
            now = self._db.now()
            if job.state is JobState.QUEUED:
                updated = await _fetch_one(
                    conn,
                    "UPDATE jobs SET state = 'cancelled', finished_at = :now, updated_at = :now "
                    "WHERE id = :id RETURNING *",
                    {"id": job.id, "now": now},
                )
                return CancelOutcome(CancelStatus.CANCELLED, Job.from_row(updated))
            if job.state is JobState.RUNNING:
                if job.cancel_requested:
                    return CancelOutcome(CancelStatus.ALREADY_STOPPING, job)
                updated = await _fetch_one(
                    conn,
                    "UPDATE jobs SET cancel_requested = 1, updated_at = :now WHERE id = :id RETURNING *",
                    {"id": job.id, "now": now},
                )
                return CancelOutcome(CancelStatus.STOPPING, Job.from_row(updated))
            return CancelOutcome(CancelStatus.FINISHED, job)

        return await self._db.write(body)

    async def position(self, job_id: int) -> int | None:
        return (await self.positions()).get(job_id)

    async def positions(self) -> dict[int, int]:
        rows = await self._db.read(lambda conn: conn.execute_fetchall(_WAITING, {"now": self._db.now()}))
        return {job_id: place for place, job_id in enumerate(_fair_order(rows), start=1)}

    async def get(self, job_id: int) -> Job | None:
        row = await self._db.read(lambda conn: _fetch_one(conn, "SELECT * FROM jobs WHERE id = ?", (job_id,)))
        return None if row is None else Job.from_row(row)

    async def jobs_for_user(
        self, platform: str, chat_id: PlatformId, user_id: PlatformId, *, include_finished: bool = False, limit: int = 10
    ) -> list[Job]:
        params = {
            "platform": platform_name(platform),
            "chat_id": id_text(chat_id, "chat_id"),
            "user_id": id_text(user_id, "user_id"),
            "limit": limit,
        }
        states = "" if include_finished else f"AND state IN {_ACTIVE}"
        sql = f"""SELECT * FROM (
                      SELECT * FROM jobs
                      WHERE platform = :platform AND chat_id = :chat_id AND user_id = :user_id {states}
                      ORDER BY id DESC LIMIT :limit)
                  ORDER BY id"""
        rows = await self._db.read(lambda conn: conn.execute_fetchall(sql, params))
        return [Job.from_row(row) for row in rows]

    # --- the worker -------------------------------------------------------------------------------

    async def recover(self, worker_id: str | None = None) -> RecoveryReport:
        return await self._db.write(lambda conn: self._reclaim_orphans(conn, worker_id))

    async def claim(self, worker_id: str) -> Claim | None:
        if not worker_id:
            raise ValueError("worker_id must be a non-empty string")

        async def body(conn: aiosqlite.Connection) -> Claim | None:
            await self._reclaim_orphans(conn, None)
            now = self._db.now()
            params = {
                "token": uuid.uuid4().hex,
                "worker": worker_id,
                "now": now,
                "expires": now + self.config.lease_seconds,
            }
            row = await _fetch_one(conn, _CLAIM, params)
            if row is None:
                return None
            job = Job.from_row(row)
            await conn.execute_fetchall(_MARK_SERVED, {"platform": job.platform, "user_id": job.user_id})
            return Claim(job=job, token=params["token"], worker_id=worker_id, lease_expires_at=to_datetime(params["expires"]))

        claim = await self._db.write(body)
        if claim is not None:
            log.info("job %s claimed by %s (attempt %s)", claim.job_id, worker_id, claim.job.attempts)
        return claim

    async def heartbeat(self, claim: Claim) -> LeaseState:
        now = self._db.now()
        params = {"id": claim.job_id, "token": claim.token, "now": now, "expires": now + self.config.lease_seconds}
        row = await self._db.write(
            lambda conn: _fetch_one(
                conn,
                "UPDATE jobs SET lease_expires_at = :expires, updated_at = :now "
                "WHERE id = :id AND lease_token = :token AND state = 'running' RETURNING cancel_requested",
                params,
            )
        )
        if row is None:
            self._last_progress_write.pop(claim.token, None)
            return LeaseState(lease_ok=False, cancel_requested=False, lease_expires_at=None)
        return LeaseState(
            lease_ok=True, cancel_requested=bool(row["cancel_requested"]), lease_expires_at=to_datetime(params["expires"])
        )

    async def progress(self, claim: Claim, value: float) -> bool:
        value = fraction(value)
        now = self._db.now()
        last = self._last_progress_write.get(claim.token)
        if value < 1.0 and last is not None and now - last < self.config.progress_interval:
            return False
        self._last_progress_write[claim.token] = now
        await self._update_claimed(claim, "progress = :progress, updated_at = :now", {"progress": value, "now": now})
        return True

    async def set_result(self, claim: Claim, result_path: str | os.PathLike[str]) -> Job:
        params = {"result": path_text(result_path, "result_path"), "now": self._db.now()}
        return await self._update_claimed(claim, "result_path = :result, progress = 1, updated_at = :now", params)

    async def complete(self, claim: Claim, reply_message_id: PlatformId | None) -> Job:
        params = {"reply": optional_id_text(reply_message_id, "reply_message_id"), "now": self._db.now()}
        return await self._finish(
            claim,
            "state = 'done', delivered = 1, reply_message_id = :reply, progress = 1, error = NULL, finished_at = :now",
            params,
        )

    async def fail(self, claim: Claim, user_message: str) -> Job:
        if not user_message.strip():
            raise ValueError("a failed job needs a message for the user")
        return await self._finish(
            claim, "state = 'failed', error = :error, finished_at = :now", {"error": user_message, "now": self._db.now()}
        )

    async def mark_cancelled(self, claim: Claim) -> Job:
        return await self._finish(claim, "state = 'cancelled', finished_at = :now", {"now": self._db.now()})

    async def release(self, claim: Claim) -> Job:
        return await self._finish(
            claim, "state = 'queued', attempts = attempts - 1, started_at = NULL", {"now": self._db.now()}
        )

    async def unreported_failures(self, limit: int = 20) -> list[Job]:
        rows = await self._db.read(
            lambda conn: conn.execute_fetchall(
                "SELECT * FROM jobs WHERE state = 'failed' AND NOT delivered ORDER BY finished_at, id LIMIT ?", (limit,)
            )
        )
        return [Job.from_row(row) for row in rows]

    async def mark_reported(self, job_id: int, reply_message_id: PlatformId | None) -> Job:
        params = {"id": job_id, "reply": optional_id_text(reply_message_id, "reply_message_id"), "now": self._db.now()}

        async def body(conn: aiosqlite.Connection) -> Job:
            row = await _fetch_one(
                conn,
                "UPDATE jobs SET delivered = 1, reply_message_id = :reply, updated_at = :now "
                "WHERE id = :id AND state = 'failed' RETURNING *",
                params,
            )
            if row is None:
                await self._raise_missing_or_state(conn, job_id, "only a failed job's message can be marked reported")
            return Job.from_row(row)

        return await self._db.write(body)

    # --- retention --------------------------------------------------------------------------------

    async def purge_files(self, job_id: int) -> list[str]:

        async def finished_job(conn: aiosqlite.Connection) -> Job:
            row = await _fetch_one(conn, "SELECT * FROM jobs WHERE id = ?", (job_id,))
            if row is None:
                raise JobNotFoundError(job_id)
            return Job.from_row(row)

        job = await self._db.read(finished_job)
        if not job.state.is_finished:
            raise JobStateError(f"job {job_id} is {job.state}; only a finished job's files can be deleted")
        deleted = [path for path in (job.input_path, job.result_path) if path is not None and _delete_file(path)]
        # Finished states are final, so the row cannot have moved on since it was read.
        await self._db.write(
            lambda conn: conn.execute_fetchall(
                "UPDATE jobs SET input_path = NULL, result_path = NULL, files_purged_at = :now, updated_at = :now "
                "WHERE id = :id",
                {"id": job_id, "now": self._db.now()},
            )
        )
        return deleted

    async def cleanup(self, older_than: timedelta) -> int:
        cutoff = self._db.now() - older_than.total_seconds()
        rows = await self._db.read(
            lambda conn: conn.execute_fetchall(
                f"SELECT id FROM jobs WHERE state IN {_FINISHED} AND finished_at <= ? "
                "AND (input_path IS NOT NULL OR result_path IS NOT NULL) ORDER BY id",
                (cutoff,),
            )
        )
        for row in rows:
            await self.purge_files(row["id"])
        if rows:
            log.info("deleted the files of %d jobs finished before %s", len(rows), to_datetime(cutoff))
        return len(rows)

    # --- internals --------------------------------------------------------------------------------

    async def _reclaim_orphans(self, conn: aiosqlite.Connection, dead_owner: str | None) -> RecoveryReport:
        rows = await conn.execute_fetchall(
            _RECLAIM_ORPHANS, {"now": self._db.now(), "dead_owner": dead_owner, "gave_up": GAVE_UP_MESSAGE}
        )
        by_state: dict[str, list[int]] = {"queued": [], "failed": [], "cancelled": []}
        for row in rows:
            by_state[row["state"]].append(row["id"])
        report = RecoveryReport(
            requeued=tuple(by_state["queued"]), failed=tuple(by_state["failed"]), cancelled=tuple(by_state["cancelled"])
        )
        if report.total:
            log.warning(
                "workers gone: requeued jobs %s, gave up on %s, cancelled %s",
                report.requeued,
                report.failed,
                report.cancelled,
            )
        return report

    async def _update_claimed(self, claim: Claim, assignments: str, params: dict[str, Any]) -> Job:
        """UPDATE the claimed job if the claim still holds; else LeaseLostError."""
        sql = (
            f"UPDATE jobs SET {assignments} "
            "WHERE id = :job_id AND lease_token = :token AND state = 'running' RETURNING *"
        )
        row = await self._db.write(
            lambda conn: _fetch_one(conn, sql, {**params, "job_id": claim.job_id, "token": claim.token})
        )
        if row is None:
            self._last_progress_write.pop(claim.token, None)
            raise LeaseLostError(claim.job_id)
        return Job.from_row(row)

    async def _finish(self, claim: Claim, assignments: str, params: dict[str, Any]) -> Job:
        """End the claim (token-checked) and set the job's next state in the same UPDATE."""
        job = await self._update_claimed(claim, f"{assignments}, {_FINISH_LEASE}", params)
        self._last_progress_write.pop(claim.token, None)
        return job

    @staticmethod
    async def _raise_missing_or_state(conn: aiosqlite.Connection, job_id: int, why: str) -> None:
        row = await _fetch_one(conn, "SELECT state FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise JobNotFoundError(job_id)
        raise JobStateError(f"job {job_id} is {row['state']}: {why}")


def _fair_order(rows: Sequence[sqlite3.Row]) -> list[int]:
    """Simulate successive claims over the waiting jobs (rows in id order); returns ids in claim order.

    Same rule as ``_NEXT_JOB``: the user served least recently goes first (ties: the older head
    job), and each claim makes its user the most recently served.
    """
    pending: dict[tuple[str, str], deque[int]] = {}
    last_served: dict[tuple[str, str], int] = {}
    for row in rows:
        user = (row["platform"], row["user_id"])
        pending.setdefault(user, deque()).append(row["id"])
        last_served[user] = row["last_served"]
    heap = [(last_served[user], jobs[0], user) for user, jobs in pending.items()]
    heapq.heapify(heap)
    serial = max(last_served.values(), default=0)
    order: list[int] = []
    while heap:
        _, job_id, user = heapq.heappop(heap)
        order.append(job_id)
        jobs = pending[user]
        jobs.popleft()
        if jobs:
            serial += 1
            heapq.heappush(heap, (serial, jobs[0], user))
    return order


def _delete_file(path: str) -> bool:
    try:
        Path(path).unlink()
    except FileNotFoundError:
        return False
    return True


async def _fetch_one(conn: aiosqlite.Connection, sql: str, params: Any = ()) -> sqlite3.Row | None:
    rows = await conn.execute_fetchall(sql, params)
    return rows[0] if rows else None


class _OpeningQueue:
    """What ``SqliteJobQueue.open`` returns: ``await`` it for the queue, or ``async with`` it."""

    def __init__(self, opening: Callable[[], Awaitable[SqliteJobQueue]]) -> None:
        self._opening = opening
        self._queue: SqliteJobQueue | None = None

    def __await__(self) -> Generator[Any, None, SqliteJobQueue]:
        return self._opening().__await__()

    async def __aenter__(self) -> SqliteJobQueue:
        self._queue = await self._opening()
        return self._queue

    async def __aexit__(self, *exc_info: object) -> None:
        if self._queue is not None:
            await self._queue.close()
