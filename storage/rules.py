"""The queue's rules, written once: ``SqlJobQueue`` over a ``Dialect`` (SQLite or PostgreSQL).

Every rule of storage/README.md lives here as SQL that both engines run: idempotent enqueue under
the per-user cap, the fair claim, token-checked worker writes, orphan recovery with the attempts
limit, cancel, positions, the change feed, the delivery lease and retention. A dialect supplies
only what differs between the engines (``Dialect``): how a transaction is run (and retried), how a
user's writes are serialised, a few SQL fragments (the turn serial, the change stamp, row locks,
type names) and wake-ups. Parameters are written ``:name`` for both; the PostgreSQL dialect
rewrites them to ``$n``.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from storage.errors import JobNotFoundError, JobStateError, LeaseLostError, QueueFullError
from storage.exclusive import DEFAULT_CHECK_S, DEFAULT_RETRY_S, ExclusiveHold, LocalHold
from storage.files import FileStore, is_key
from storage.jobs import (
    CancelOutcome,
    CancelStatus,
    Changes,
    Claim,
    Delivery,
    EnqueueResult,
    Job,
    JobState,
    LeaseState,
    QueueStats,
    RecoveryReport,
    RunningJob,
    WorkerInfo,
    WorkerStatus,
)
from storage.queue import GAVE_UP_MESSAGE, JobQueue, QueueConfig
from storage.settings import ChatSettingsStore
from storage.values import (
    Clock,
    PlatformId,
    decode_json_object,
    encode_json_object,
    fraction,
    id_text,
    optional_id_text,
    path_text,
    platform_name,
    to_datetime,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class Row(Protocol):
    def __getitem__(self, key: str | int) -> Any: ...


class Connection(Protocol):
    """What a transaction body gets: statements with ``:name`` parameters."""

    async def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]: ...


Body = Callable[[Connection], Awaitable[T]]


class Signal:
    """A wake-up: ``wait`` returns True when ``fire`` was called meanwhile, False on timeout."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float | None) -> bool:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True


class Dialect(ABC):
    """What one database engine does differently. Everything else is in ``SqlJobQueue``."""

    name: str
    real: str  # type name for CAST of a float parameter
    json: str  # type name for CAST of a JSON-text parameter
    next_turn: str  # SQL expression: the next user-turn serial
    change_stamp: str  # SQL expression: the change-feed stamp of a row written now
    skip_locked: str  # suffix of the fair pick: lock the picked row, skip rows others hold
    lock_row: str  # suffix of a SELECT whose row is then updated in the same transaction

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.work = Signal()  # jobs became claimable
        self.changes = Signal()  # some job changed (the change feed moved)

    def now(self) -> float:
        return self.clock()

    @abstractmethod
    async def write(self, body: Body[T]) -> T:
        """Run ``body`` in one writing transaction (committed exactly once, or not at all)."""

    @abstractmethod
    async def read(self, body: Body[T]) -> T:
        """Run ``body``'s reads."""

    @abstractmethod
    async def serialise(self, conn: Connection, key: str) -> None:
        """Hold off other transactions writing for ``key`` until this one ends."""

    @abstractmethod
    async def change_horizon(self, conn: Connection) -> int:
        """Every change stamped below this number is committed and visible."""

    def exclusive(self, name: str, *, retry_s: float, check_s: float) -> ExclusiveHold:
        """A hold one process at a time may have; one machine's engine needs no lock."""
        return LocalHold(name)

    @abstractmethod
    async def close(self) -> None: ...


# --- SQL (``{name}`` is a dialect fragment, ``:name`` a parameter) --------------------------------------

_ACTIVE = "('queued', 'running')"
_FINISHED = "('done', 'failed', 'cancelled')"

# The fair pick: each user's oldest queued job ("head"); among users, the one served least recently
# (never served counts as 0, serials start at 1), then the oldest head. Mirrored by fair_order().
# The aggregate stays in the WITH query: PostgreSQL allows no FOR UPDATE beside GROUP BY.
_NEXT_JOB = """
WITH heads AS (
    SELECT platform, user_id, MIN(id) AS id FROM jobs WHERE state = 'queued' GROUP BY platform, user_id
)
SELECT job.id FROM jobs AS job
JOIN heads ON heads.id = job.id
LEFT JOIN user_turns AS turn ON turn.platform = heads.platform AND turn.user_id = heads.user_id
WHERE job.state = 'queued'
ORDER BY COALESCE(turn.last_served, 0), job.id
LIMIT 1
{skip_locked}
"""

_CLAIM = f"""
UPDATE jobs SET
    state = 'running', attempts = attempts + 1,
    lease_token = :token, lease_owner = :worker, lease_expires_at = :expires,
    started_at = :now, updated_at = :now, change_seq = {{change_stamp}},
    progress = CASE WHEN result_path IS NULL THEN 0 ELSE 1 END
WHERE id = ({_NEXT_JOB}) AND state = 'queued'
RETURNING *
"""

_MARK_SERVED = """
INSERT INTO user_turns (platform, user_id, last_served)
VALUES (:platform, :user_id, {next_turn})
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
                 THEN replace(:gave_up, '%d', CAST(attempts AS TEXT)) ELSE error END,
    finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN :now ELSE NULL END,
    lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = :now,
    change_seq = {change_stamp}
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
# enqueue_token tells a retry after a lost COMMIT that the row is its own.
_INSERT_UNDER_CAP = f"""
INSERT INTO jobs (platform, chat_id, user_id, message_id, input_path, options, max_attempts,
                  created_at, updated_at, change_seq, enqueue_token)
SELECT :platform, :chat_id, :user_id, :message_id, :input_path, CAST(:options AS {{json}}),
       CAST(:max_attempts AS INTEGER), CAST(:now AS {{real}}), CAST(:now AS {{real}}), {{change_stamp}}, :enqueue_token
WHERE CAST(:cap AS INTEGER) IS NULL OR ({_QUEUED_FOR_USER}) < CAST(:cap AS INTEGER)
ON CONFLICT (platform, chat_id, message_id) DO NOTHING
RETURNING *
"""

# The running jobs for operators (stats): who runs each, how far, the lease.
_RUNNING = """
SELECT id, platform, lease_owner, progress, attempts, started_at, lease_expires_at, cancel_requested
FROM jobs WHERE state = 'running' ORDER BY lease_owner, id
"""

_WORKERS = "SELECT worker_id, host, pid, started_at, last_beat_at, stopped_at FROM workers ORDER BY worker_id"

#: A worker row that has not beaten for this long is forgotten when any worker registers.
WORKER_FORGET_AFTER_S = 24 * 3600.0

# Takes the chat's next status-edit slot if it is free: one statement, so of several front-ends
# asking at once exactly one gets it (SQLite: the only writer; PostgreSQL: the row lock of the upsert).
_TAKE_EDIT_SLOT = f"""
INSERT INTO edit_slots (platform, chat_id, next_at) VALUES (:platform, :chat_id, CAST(:next AS {{real}}))
ON CONFLICT (platform, chat_id) DO UPDATE SET next_at = excluded.next_at
WHERE edit_slots.next_at <= :now
RETURNING next_at
"""

# Ends a claim; the caller adds the new state's columns. Checked against the token.
_FINISH_LEASE = "lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL"

# A made result that no front-end has sent yet: to the user, still in progress (it can be cancelled).
_UNSENT_RESULT = "(state = 'done' AND NOT delivered AND result_path IS NOT NULL)"

# A finished job whose outcome no front-end has sent yet, and whose delivery lease (if any) ran out.
_UNDELIVERED = f"""
state IN {_FINISHED} AND NOT delivered AND (state <> 'done' OR result_path IS NOT NULL)
AND (delivery_expires_at IS NULL OR delivery_expires_at <= :now)
"""


@dataclass(frozen=True)
class _Sql:
    """The statements with the dialect's fragments filled in (once per queue)."""

    next_job: str
    claim: str
    mark_served: str
    reclaim_orphans: str
    insert_under_cap: str
    take_edit_slot: str
    stamp: str
    lock_row: str

    @classmethod
    def for_dialect(cls, dialect: Dialect) -> _Sql:
        fragments = {
            "skip_locked": dialect.skip_locked,
            "change_stamp": dialect.change_stamp,
            "next_turn": dialect.next_turn,
            "real": dialect.real,
            "json": dialect.json,
        }
        return cls(
            next_job=_NEXT_JOB.format(**fragments),
            claim=_CLAIM.format(**fragments),
            mark_served=_MARK_SERVED.format(**fragments),
            reclaim_orphans=_RECLAIM_ORPHANS.format(**fragments),
            insert_under_cap=_INSERT_UNDER_CAP.format(**fragments),
            take_edit_slot=_TAKE_EDIT_SLOT.format(**fragments),
            stamp=dialect.change_stamp,
            lock_row=dialect.lock_row,
        )


async def fetch_one(conn: Connection, sql: str, params: Mapping[str, Any] | None = None) -> Row | None:
    rows = await conn.fetch(sql, params)
    return rows[0] if rows else None


class SqlJobQueue(JobQueue):
    """``JobQueue`` over a dialect. Open one with ``SqliteJobQueue.open`` or ``PostgresJobQueue.open``
    (or ``storage.open_queue(url)``).

    ``files``: where job files live. With a ``FileStore``, ``input_path``/``result_path`` are its
    keys and retention deletes through it; without one they are local paths, deleted as files.
    """

    def __init__(self, dialect: Dialect, config: QueueConfig, files: FileStore | None = None) -> None:
        self._dialect = dialect
        self._sql = _Sql.for_dialect(dialect)
        self.config = config
        self.files = files
        self._settings = SqlChatSettings(dialect)
        self._last_progress_write: dict[str, float] = {}  # claim token -> clock time

    @property
    def settings(self) -> SqlChatSettings:
        return self._settings

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    async def close(self) -> None:
        await self._dialect.close()

    def _now(self) -> float:
        return self._dialect.now()

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
            "enqueue_token": uuid.uuid4().hex,
        }
        cap = self.config.max_queued_per_user
        key = {name: row[name] for name in ("platform", "chat_id", "message_id")}

        async def body(conn: Connection) -> EnqueueResult:
            # The cap counts the user's queued jobs: front-ends enqueueing for one user take turns.
            await self._dialect.serialise(conn, f"user:{row['platform']}:{row['user_id']}")
            # The common case in one statement: a new message from a user under the cap.
            inserted = await fetch_one(conn, self._sql.insert_under_cap, {**row, "cap": cap, "now": self._now()})
            if inserted is not None:
                job = Job.from_row(inserted)
                return EnqueueResult(job, created=True, position=await self._position_in(conn, job.id))
            existing = await fetch_one(
                conn,
                "SELECT * FROM jobs WHERE platform = :platform AND chat_id = :chat_id AND message_id = :message_id",
                key,
            )
            if existing is not None:
                # A re-delivered message (answered even at the cap), or our own insert whose COMMIT
                # answer was lost and that the dialect ran again: the token tells them apart.
                job = Job.from_row(existing)
                return EnqueueResult(job, created=existing["enqueue_token"] == row["enqueue_token"],
                                     position=await self._position_in(conn, job.id))
            (count,) = await fetch_one(conn, _QUEUED_FOR_USER, row)
            raise QueueFullError(count, cap)

        result = await self._dialect.write(body)
        if result.created:
            self._dialect.work.fire()
            self._dialect.changes.fire()
        return result

    async def set_status_message(self, job_id: int, message_id: PlatformId) -> None:
        params = {"id": job_id, "message": id_text(message_id, "message_id"), "now": self._now()}
        updated = await self._dialect.write(
            lambda conn: fetch_one(
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
        lock = self._sql.lock_row

        async def body(conn: Connection) -> CancelOutcome:
            mine = "platform = :platform AND chat_id = :chat_id AND user_id = :user_id"
            if job_id is not None:
                row = await fetch_one(conn, f"SELECT * FROM jobs WHERE id = :id AND {mine} {lock}", {**owner, "id": job_id})
                if row is None:
                    return CancelOutcome(CancelStatus.NOT_FOUND, None)
            else:
                # The newest job not already being stopped: "undo what I just sent".
                row = await fetch_one(
                    conn,
                    f"SELECT * FROM jobs WHERE {mine} AND (state IN {_ACTIVE} OR {_UNSENT_RESULT}) "
                    f"ORDER BY cancel_requested, id DESC LIMIT 1 {lock}",
                    owner,
                )
                if row is None:
                    return CancelOutcome(CancelStatus.NOTHING, None)
            job = Job.from_row(row)
            params = {"id": job.id, "now": self._now()}
            if job.state is JobState.QUEUED:
                updated = await self._change_job(conn, "state = 'cancelled', finished_at = :now", params)
                return CancelOutcome(CancelStatus.CANCELLED, updated)
            if job.state is JobState.RUNNING:
                if job.cancel_requested:
                    return CancelOutcome(CancelStatus.ALREADY_STOPPING, job)
                updated = await self._change_job(conn, "cancel_requested = TRUE", params)
                return CancelOutcome(CancelStatus.STOPPING, updated)
            if job.state is JobState.DONE and not job.delivered and job.result_path is not None:
                # Made but not sent yet: a front-end re-reads the job before each send and stops.
                if job.cancel_requested:
                    return CancelOutcome(CancelStatus.ALREADY_STOPPING, job)
                updated = await self._change_job(conn, "state = 'cancelled', cancel_requested = TRUE", params)
                return CancelOutcome(CancelStatus.STOPPING, updated)
            return CancelOutcome(CancelStatus.FINISHED, job)

        outcome = await self._dialect.write(body)
        if outcome.status in (CancelStatus.CANCELLED, CancelStatus.STOPPING):
            self._dialect.changes.fire()
        return outcome

    async def position(self, job_id: int) -> int | None:
        return (await self.positions()).get(job_id)

    async def _position_in(self, conn: Connection, job_id: int) -> int | None:
        return (await self._positions_in(conn)).get(job_id)

    async def positions(self) -> dict[int, int]:
        return await self._dialect.read(self._positions_in)

    async def _positions_in(self, conn: Connection) -> dict[int, int]:
        rows = await conn.fetch(_WAITING, {"now": self._now()})
        return {job_id: place for place, job_id in enumerate(fair_order(rows), start=1)}

    async def get(self, job_id: int) -> Job | None:
        row = await self._dialect.read(lambda conn: fetch_one(conn, "SELECT * FROM jobs WHERE id = :id", {"id": job_id}))
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
                      ORDER BY id DESC LIMIT :limit) AS recent
                  ORDER BY id"""
        rows = await self._dialect.read(lambda conn: conn.fetch(sql, params))
        return [Job.from_row(row) for row in rows]

    async def stats(self) -> QueueStats:
        async def body(conn: Connection) -> tuple[list[Row], list[Row], list[Row]]:
            counts = await conn.fetch("SELECT state, COUNT(*) AS jobs, MIN(created_at) AS oldest FROM jobs GROUP BY state")
            running = await conn.fetch(_RUNNING, {})
            workers = await conn.fetch(_WORKERS, {})
            return counts, running, workers

        now = self._now()
        count_rows, running_rows, worker_rows = await self._dialect.read(body)
        counts = dict.fromkeys(JobState, 0)
        oldest_queued = None
        for row in count_rows:
            counts[JobState(row["state"])] = int(row["jobs"])
            if row["state"] == JobState.QUEUED:
                oldest_queued = row["oldest"]
        lease = self.config.lease_seconds
        running = tuple(
            RunningJob(
                job_id=row["id"],
                platform=row["platform"],
                worker_id=row["lease_owner"] or "?",
                progress=float(row["progress"]),
                attempts=row["attempts"],
                started_at=to_datetime(row["started_at"]),
                last_heartbeat_at=to_datetime(None if row["lease_expires_at"] is None else row["lease_expires_at"] - lease),
                lease_expires_at=to_datetime(row["lease_expires_at"]),
                cancel_requested=bool(row["cancel_requested"]),
            )
            for row in running_rows
        )
        return QueueStats(counts=counts, oldest_queued_at=to_datetime(oldest_queued), running=running,
                          read_at=to_datetime(now), workers=self._worker_infos(worker_rows, running_rows, now))

    # --- workers: who is there, for operators ----------------------------------------------------

    async def register_worker(self, worker_id: str, *, host: str, pid: int) -> None:
        """A worker process starts (or its row was lost): record it, started and beating now.

        Rows of workers silent for ``WORKER_FORGET_AFTER_S`` are deleted on the way."""
        if not worker_id:
            raise ValueError("worker_id must be a non-empty string")
        now = self._now()
        params = {"id": worker_id, "host": host, "pid": int(pid), "now": now,
                  "forget": now - WORKER_FORGET_AFTER_S}
        dialect = self._dialect

        async def body(conn: Connection) -> None:
            await conn.fetch("DELETE FROM workers WHERE last_beat_at < :forget", params)
            await conn.fetch(
                "INSERT INTO workers (worker_id, host, pid, started_at, last_beat_at, stopped_at) "
                f"VALUES (:id, :host, CAST(:pid AS INTEGER), CAST(:now AS {dialect.real}), "
                f"CAST(:now AS {dialect.real}), NULL) "
                "ON CONFLICT (worker_id) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
                "started_at = excluded.started_at, last_beat_at = excluded.last_beat_at, stopped_at = NULL",
                params,
            )

        await dialect.write(body)

    async def worker_heartbeat(self, worker_id: str) -> bool:
        """The worker is alive; False when it has no row (never registered, or forgotten): register again."""
        row = await self._dialect.write(
            lambda conn: fetch_one(
                conn,
                "UPDATE workers SET last_beat_at = :now, stopped_at = NULL WHERE worker_id = :id RETURNING worker_id",
                {"id": worker_id, "now": self._now()},
            )
        )
        return row is not None

    async def unregister_worker(self, worker_id: str) -> None:
        """A clean shutdown: the worker shows as stopped (not gone) until it is forgotten."""
        await self._dialect.write(
            lambda conn: conn.fetch(
                "UPDATE workers SET stopped_at = :now WHERE worker_id = :id", {"id": worker_id, "now": self._now()}
            )
        )

    async def workers(self) -> list[WorkerInfo]:
        """Every registered worker with its status and the running jobs leased to it."""

        async def body(conn: Connection) -> tuple[list[Row], list[Row]]:
            return await conn.fetch(_WORKERS, {}), await conn.fetch(_RUNNING, {})

        worker_rows, running_rows = await self._dialect.read(body)
        return list(self._worker_infos(worker_rows, running_rows, self._now()))

    def _worker_infos(self, worker_rows: Sequence[Row], running_rows: Sequence[Row], now: float) -> tuple[WorkerInfo, ...]:
        jobs: dict[str, list[int]] = {}
        for row in running_rows:
            if row["lease_owner"] is not None:
                jobs.setdefault(row["lease_owner"], []).append(row["id"])
        gone_after = self.config.lease_seconds
        infos = []
        for row in worker_rows:
            held = tuple(jobs.get(row["worker_id"], ()))
            if row["stopped_at"] is not None:
                status = WorkerStatus.STOPPED
            elif now - row["last_beat_at"] > gone_after:
                status = WorkerStatus.GONE
            else:
                status = WorkerStatus.BUSY if held else WorkerStatus.IDLE
            infos.append(WorkerInfo(
                worker_id=row["worker_id"], host=row["host"], pid=int(row["pid"]),
                started_at=to_datetime(row["started_at"]), last_beat_at=to_datetime(row["last_beat_at"]),
                stopped_at=to_datetime(row["stopped_at"]), jobs=held, status=status,
            ))
        return tuple(infos)

    def exclusive(self, name: str, *, retry_s: float = DEFAULT_RETRY_S, check_s: float = DEFAULT_CHECK_S) -> ExclusiveHold:
        """A hold that one process at a time has among all on this database (storage/exclusive.py):
        on PostgreSQL an advisory lock, standbys retrying every ``retry_s``; on SQLite held at once."""
        return self._dialect.exclusive(name, retry_s=retry_s, check_s=check_s)

    # --- front-ends: the per-chat status-edit throttle -------------------------------------------

    async def take_edit_slot(self, platform: str, chat_id: PlatformId, min_interval: float) -> bool:
        """May a status message in this chat be edited now? True at most once per ``min_interval``
        seconds per chat, across every process on this queue (the state is a row, not memory).

        The caller that gets True edits; one that gets False skips this edit (the next progress
        change tries again)."""
        if min_interval < 0:
            raise ValueError(f"min_interval must not be negative, got {min_interval}")
        now = self._now()
        params = {"platform": platform_name(platform), "chat_id": id_text(chat_id, "chat_id"), "now": now,
                  "next": now + min_interval}
        row = await self._dialect.write(lambda conn: fetch_one(conn, self._sql.take_edit_slot, params))
        return row is not None

    # --- the worker -------------------------------------------------------------------------------

    async def recover(self, worker_id: str | None = None) -> RecoveryReport:
        report = await self._dialect.write(lambda conn: self._reclaim_orphans(conn, worker_id))
        self._fire_for(report)
        return report

    async def claim(self, worker_id: str) -> Claim | None:
        if not worker_id:
            raise ValueError("worker_id must be a non-empty string")
        now = self._now()
        params = {"token": uuid.uuid4().hex, "worker": worker_id, "now": now, "expires": now + self.config.lease_seconds}
        reports: list[RecoveryReport] = []

        async def body(conn: Connection) -> Claim | None:
            reports.append(await self._reclaim_orphans(conn, None))
            row = await fetch_one(conn, self._sql.claim, params)
            if row is None:
                return None
            job = Job.from_row(row)
            await conn.fetch(self._sql.mark_served, {"platform": job.platform, "user_id": job.user_id})
            return Claim(job=job, token=params["token"], worker_id=worker_id, lease_expires_at=to_datetime(params["expires"]))

        claim = await self._dialect.write(body)
        if reports:
            self._fire_for(reports[-1])
        if claim is not None:
            self._dialect.changes.fire()
            log.info("job %s claimed by %s (attempt %s)", claim.job_id, worker_id, claim.job.attempts)
        return claim

    async def wait_for_work(self, timeout: float) -> bool:
        """Wait until jobs may be claimable (an enqueue, a release, a requeue) or ``timeout`` passes.

        PostgreSQL wakes every process by LISTEN/NOTIFY; SQLite wakes this process only, so another
        process's enqueue is seen at the next poll: keep ``timeout`` a few seconds. Returns whether
        a wake-up came (a hint: claim anyway after a timeout).
        """
        return await self._dialect.work.wait(timeout)

    async def heartbeat(self, claim: Claim) -> LeaseState:
        now = self._now()
        params = {"id": claim.job_id, "token": claim.token, "now": now, "expires": now + self.config.lease_seconds}
        row = await self._dialect.write(
            lambda conn: fetch_one(
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
        now = self._now()
        last = self._last_progress_write.get(claim.token)
        if value < 1.0 and last is not None and now - last < self.config.progress_interval:
            return False
        self._last_progress_write[claim.token] = now
        await self._update_claimed(claim, "progress = :progress", {"progress": value, "now": now})
        return True

    async def set_result(
        self, claim: Claim, result_path: str | os.PathLike[str], outcome: Mapping[str, Any] | None = None
    ) -> Job:
        params = {"result": path_text(result_path, "result_path"), "now": self._now(),
                  "outcome": None if outcome is None else encode_json_object(outcome, "outcome")}
        return await self._update_claimed(claim, "result_path = :result, outcome = :outcome, progress = 1", params)

    async def complete(self, claim: Claim, reply_message_id: PlatformId | None) -> Job:
        params = {"reply": optional_id_text(reply_message_id, "reply_message_id"), "now": self._now()}
        return await self._finish(
            claim,
            "state = 'done', delivered = TRUE, reply_message_id = :reply, progress = 1, error = NULL, finished_at = :now",
            params,
        )

    async def hand_over(self, claim: Claim) -> Job:
        """The result is stored (``set_result`` first): done, for a front-end to deliver.

        The worker of the scaled layout holds no chat tokens; a front-end finds the job in
        ``undelivered()`` (or the change feed) and sends it under a delivery lease.
        """

        async def body(conn: Connection) -> Row | None:
            return await fetch_one(
                conn,
                "UPDATE jobs SET state = 'done', progress = 1, error = NULL, finished_at = :now, updated_at = :now, "
                f"{_FINISH_LEASE}, change_seq = {self._sql.stamp} "
                "WHERE id = :job_id AND lease_token = :token AND state = 'running' AND result_path IS NOT NULL "
                "RETURNING *",
                {"job_id": claim.job_id, "token": claim.token, "now": self._now()},
            )

        row = await self._dialect.write(body)
        self._last_progress_write.pop(claim.token, None)
        if row is None:
            current = await self.get(claim.job_id)
            if current is not None and current.state is JobState.RUNNING and current.result_path is None:
                raise JobStateError(f"job {claim.job_id} has no result yet; call set_result before hand_over")
            raise LeaseLostError(claim.job_id)
        self._dialect.changes.fire()
        return Job.from_row(row)

    async def fail(self, claim: Claim, user_message: str, kind: str | None = None) -> Job:
        if not user_message.strip():
            raise ValueError("a failed job needs a message for the user")
        params = {"error": user_message, "now": self._now(),
                  "outcome": None if kind is None else encode_json_object({"failure": kind}, "outcome")}
        return await self._finish(claim, "state = 'failed', error = :error, outcome = :outcome, finished_at = :now",
                                  params)

    async def mark_cancelled(self, claim: Claim) -> Job:
        return await self._finish(claim, "state = 'cancelled', finished_at = :now", {"now": self._now()})

    async def release(self, claim: Claim) -> Job:
        job = await self._finish(claim, "state = 'queued', attempts = attempts - 1, started_at = NULL", {"now": self._now()})
        self._dialect.work.fire()
        return job

    async def unreported_failures(self, limit: int = 20) -> list[Job]:
        rows = await self._dialect.read(
            lambda conn: conn.fetch(
                "SELECT * FROM jobs WHERE state = 'failed' AND NOT delivered ORDER BY finished_at, id LIMIT :limit",
                {"limit": limit},
            )
        )
        return [Job.from_row(row) for row in rows]

    async def mark_reported(self, job_id: int, reply_message_id: PlatformId | None) -> Job:
        params = {"id": job_id, "reply": optional_id_text(reply_message_id, "reply_message_id"), "now": self._now()}

        async def body(conn: Connection) -> Job:
            row = await fetch_one(
                conn,
                "UPDATE jobs SET delivered = TRUE, reply_message_id = :reply, updated_at = :now, "
                f"change_seq = {self._sql.stamp} WHERE id = :id AND state = 'failed' RETURNING *",
                params,
            )
            if row is None:
                await self._raise_missing_or_state(conn, job_id, "only a failed job's message can be marked reported")
            return Job.from_row(row)

        job = await self._dialect.write(body)
        self._dialect.changes.fire()
        return job

    # --- front-ends: the change feed and the delivery lease ---------------------------------------

    async def latest_change(self) -> int:
        """A change-feed cursor for "from now on": ``changes_since`` it returns later changes only."""
        return await self._dialect.read(self._dialect.change_horizon)

    async def changes_since(self, cursor: int) -> Changes:
        """Jobs that changed (state, progress, result, cancel request, …) at or after ``cursor``, in
        change order, each as it is now; and the cursor to pass next time.

        A job that changed several times appears once. Nothing committed is skipped, even with many
        writers: PostgreSQL only hands out changes below the oldest transaction still running (so a
        job may come twice, never not at all).
        """

        async def body(conn: Connection) -> Changes:
            horizon = await self._dialect.change_horizon(conn)
            rows = await conn.fetch(
                "SELECT * FROM jobs WHERE change_seq >= :cursor AND change_seq < :horizon ORDER BY change_seq, id",
                {"cursor": cursor, "horizon": horizon},
            )
            return Changes(tuple(Job.from_row(row) for row in rows), horizon)

        return await self._dialect.read(body)

    async def wait_for_changes(self, timeout: float) -> bool:
        """Wait until some job may have changed, or ``timeout`` passes (then poll ``changes_since``)."""
        return await self._dialect.changes.wait(timeout)

    async def undelivered(self, limit: int = 20, platforms: Sequence[str] | None = None) -> list[Job]:
        """Finished jobs whose outcome no front-end has sent yet (and whose delivery lease, if any,
        ran out): done with a result, failed, or cancelled. Oldest first.

        ``platforms``: only jobs of these (a front-end that runs Telegram alone is not kept from its
        own jobs by a queue of undelivered Discord ones)."""
        params: dict[str, Any] = {"now": self._now(), "limit": limit}
        only = ""
        if platforms is not None:
            names = [platform_name(platform) for platform in platforms]
            if not names:
                return []
            params |= {f"platform_{n}": name for n, name in enumerate(names)}
            only = f"AND platform IN ({', '.join(f':platform_{n}' for n in range(len(names)))})"
        rows = await self._dialect.read(
            lambda conn: conn.fetch(
                f"SELECT * FROM jobs WHERE {_UNDELIVERED} {only} ORDER BY finished_at, id LIMIT :limit", params
            )
        )
        return [Job.from_row(row) for row in rows]

    async def claim_delivery(self, job_id: int, owner: str) -> Delivery | None:
        """Take the lease on sending a finished job's outcome; None if another front-end holds it,
        or it was delivered, or the job is not finished. Exactly one front-end holds it at a time;
        one that dies loses it after ``lease_seconds``."""
        if not owner:
            raise ValueError("owner must be a non-empty string")
        now = self._now()
        params = {"id": job_id, "token": uuid.uuid4().hex, "owner": owner, "now": now,
                  "expires": now + self.config.lease_seconds}
        row = await self._dialect.write(
            lambda conn: fetch_one(
                conn,
                "UPDATE jobs SET delivery_token = :token, delivery_owner = :owner, delivery_expires_at = :expires, "
                f"updated_at = :now WHERE id = :id AND {_UNDELIVERED} RETURNING *",
                params,
            )
        )
        if row is None:
            return None
        return Delivery(job=Job.from_row(row), token=params["token"], owner=owner,
                        lease_expires_at=to_datetime(params["expires"]))

    async def mark_delivered(self, delivery: Delivery, reply_message_id: PlatformId | None) -> Job:
        """The outcome was sent (``reply_message_id``): delivered, checked against the delivery lease.

        Raises ``LeaseLostError`` if the lease ran out and another front-end took it over."""
        params = {"id": delivery.job_id, "token": delivery.token, "now": self._now(),
                  "reply": optional_id_text(reply_message_id, "reply_message_id")}
        row = await self._dialect.write(
            lambda conn: fetch_one(
                conn,
                "UPDATE jobs SET delivered = TRUE, reply_message_id = :reply, updated_at = :now, "
                "delivery_token = NULL, delivery_owner = NULL, delivery_expires_at = NULL, "
                f"change_seq = {self._sql.stamp} WHERE id = :id AND delivery_token = :token AND NOT delivered "
                "RETURNING *",
                params,
            )
        )
        if row is None:
            raise LeaseLostError(delivery.job_id)
        self._dialect.changes.fire()
        return Job.from_row(row)

    async def extend_delivery(self, delivery: Delivery) -> bool:
        """Keep the delivery lease (a long upload, a flood wait); False when it was lost or the job
        was delivered meanwhile."""
        now = self._now()
        row = await self._dialect.write(
            lambda conn: fetch_one(
                conn,
                "UPDATE jobs SET delivery_expires_at = :expires WHERE id = :id AND delivery_token = :token "
                "AND NOT delivered RETURNING id",
                {"id": delivery.job_id, "token": delivery.token, "expires": now + self.config.lease_seconds},
            )
        )
        return row is not None

    async def fail_delivery(self, delivery: Delivery, user_message: str, kind: str | None = None) -> Job:
        """A done job's result cannot be sent (too large, the chat is gone): failed with
        ``user_message``, still under this delivery lease (tell the user, then ``mark_delivered``)."""
        if not user_message.strip():
            raise ValueError("a failed job needs a message for the user")
        params = {"id": delivery.job_id, "token": delivery.token, "now": self._now(), "error": user_message,
                  "outcome": None if kind is None else encode_json_object({"failure": kind}, "outcome")}
        row = await self._dialect.write(
            lambda conn: fetch_one(
                conn,
                "UPDATE jobs SET state = 'failed', error = :error, outcome = :outcome, updated_at = :now, "
                f"change_seq = {self._sql.stamp} WHERE id = :id AND delivery_token = :token AND NOT delivered "
                "AND state = 'done' RETURNING *",
                params,
            )
        )
        if row is None:
            raise LeaseLostError(delivery.job_id)
        self._dialect.changes.fire()
        return Job.from_row(row)

    async def release_delivery(self, delivery: Delivery) -> None:
        """Give the delivery lease back unsent (shutting down, or the platform is down for now)."""
        await self._dialect.write(
            lambda conn: conn.fetch(
                "UPDATE jobs SET delivery_token = NULL, delivery_owner = NULL, delivery_expires_at = NULL "
                "WHERE id = :id AND delivery_token = :token",
                {"id": delivery.job_id, "token": delivery.token},
            )
        )

    # --- retention --------------------------------------------------------------------------------

    async def purge_files(self, job_id: int) -> list[str]:
        job = await self.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        if not job.state.is_finished:
            raise JobStateError(f"job {job_id} is {job.state}; only a finished job's files can be deleted")
        deleted = [ref for ref in (job.input_path, job.result_path) if ref is not None and await self._delete(ref)]
        # Finished states are final, so the row cannot have moved on since it was read.
        await self._dialect.write(
            lambda conn: conn.fetch(
                "UPDATE jobs SET input_path = NULL, result_path = NULL, files_purged_at = :now, updated_at = :now "
                "WHERE id = :id",
                {"id": job_id, "now": self._now()},
            )
        )
        return deleted

    async def cleanup(self, older_than: timedelta) -> int:
        cutoff = self._now() - older_than.total_seconds()
        rows = await self._dialect.read(
            lambda conn: conn.fetch(
                f"SELECT id FROM jobs WHERE state IN {_FINISHED} AND finished_at <= :cutoff "
                "AND (input_path IS NOT NULL OR result_path IS NOT NULL) ORDER BY id",
                {"cutoff": cutoff},
            )
        )
        for row in rows:
            await self.purge_files(row["id"])
        await self._dialect.write(
            lambda conn: conn.fetch("DELETE FROM edit_slots WHERE next_at <= :cutoff", {"cutoff": cutoff})
        )
        if rows:
            log.info("deleted the files of %d jobs finished before %s", len(rows), to_datetime(cutoff))
        return len(rows)

    # --- internals --------------------------------------------------------------------------------

    async def _delete(self, ref: str) -> bool:
        if self.files is not None and is_key(ref):  # else a local path, from before the store was used
            return await self.files.delete(ref)
        try:
            Path(ref).unlink()
        except FileNotFoundError:
            return False
        return True

    def _fire_for(self, report: RecoveryReport) -> None:
        if report.requeued:
            self._dialect.work.fire()
        if report.total:
            self._dialect.changes.fire()

    async def _reclaim_orphans(self, conn: Connection, dead_owner: str | None) -> RecoveryReport:
        rows = await conn.fetch(
            self._sql.reclaim_orphans, {"now": self._now(), "dead_owner": dead_owner, "gave_up": GAVE_UP_MESSAGE}
        )
        by_state: dict[str, list[int]] = {"queued": [], "failed": [], "cancelled": []}
        for row in rows:
            by_state[row["state"]].append(row["id"])
        report = RecoveryReport(
            requeued=tuple(sorted(by_state["queued"])),
            failed=tuple(sorted(by_state["failed"])),
            cancelled=tuple(sorted(by_state["cancelled"])),
        )
        if report.total:
            log.warning(
                "workers gone: requeued jobs %s, gave up on %s, cancelled %s",
                report.requeued,
                report.failed,
                report.cancelled,
            )
        return report

    async def _change_job(self, conn: Connection, assignments: str, params: dict[str, Any]) -> Job:
        """UPDATE the job ``params["id"]`` in the open transaction as a change-feed change."""
        sql = f"UPDATE jobs SET {assignments}, updated_at = :now, change_seq = {self._sql.stamp} WHERE id = :id RETURNING *"
        return Job.from_row(await fetch_one(conn, sql, params))

    async def _update_claimed(self, claim: Claim, assignments: str, params: dict[str, Any]) -> Job:
        """UPDATE the claimed job (a change-feed change) if the claim still holds; else LeaseLostError."""
        sql = (
            f"UPDATE jobs SET {assignments}, updated_at = :now, change_seq = {self._sql.stamp} "
            "WHERE id = :job_id AND lease_token = :token AND state = 'running' RETURNING *"
        )
        row = await self._dialect.write(
            lambda conn: fetch_one(conn, sql, {**params, "job_id": claim.job_id, "token": claim.token})
        )
        if row is None:
            self._last_progress_write.pop(claim.token, None)
            raise LeaseLostError(claim.job_id)
        self._dialect.changes.fire()
        return Job.from_row(row)

    async def _finish(self, claim: Claim, assignments: str, params: dict[str, Any]) -> Job:
        """End the claim (token-checked) and set the job's next state in the same UPDATE."""
        job = await self._update_claimed(claim, f"{assignments}, {_FINISH_LEASE}", params)
        self._last_progress_write.pop(claim.token, None)
        return job

    @staticmethod
    async def _raise_missing_or_state(conn: Connection, job_id: int, why: str) -> None:
        row = await fetch_one(conn, "SELECT state FROM jobs WHERE id = :id", {"id": job_id})
        if row is None:
            raise JobNotFoundError(job_id)
        raise JobStateError(f"job {job_id} is {row['state']}: {why}")


class SqlChatSettings(ChatSettingsStore):
    """Per-chat settings in the queue's database; read-merge-write, serialised per chat."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect

    async def get(self, platform: str, chat_id: PlatformId) -> dict[str, Any]:
        key = {"platform": platform_name(platform), "chat_id": id_text(chat_id, "chat_id")}
        row = await self._dialect.read(
            lambda conn: fetch_one(
                conn, "SELECT settings FROM chat_settings WHERE platform = :platform AND chat_id = :chat_id", key
            )
        )
        return {} if row is None else decode_json_object(row["settings"])

    async def update(self, platform: str, chat_id: PlatformId, changes: Mapping[str, Any]) -> dict[str, Any]:
        key = {"platform": platform_name(platform), "chat_id": id_text(chat_id, "chat_id")}
        encode_json_object(changes, "settings changes")  # refuse bad values before touching the row
        dialect = self._dialect

        async def body(conn: Connection) -> dict[str, Any]:
            await dialect.serialise(conn, f"settings:{key['platform']}:{key['chat_id']}")
            row = await fetch_one(
                conn, "SELECT settings FROM chat_settings WHERE platform = :platform AND chat_id = :chat_id", key
            )
            merged = {} if row is None else decode_json_object(row["settings"])
            for name, value in changes.items():
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = value
            await conn.fetch(
                "INSERT INTO chat_settings (platform, chat_id, settings, updated_at) "
                f"VALUES (:platform, :chat_id, CAST(:settings AS {dialect.json}), CAST(:now AS {dialect.real})) "
                "ON CONFLICT (platform, chat_id) DO UPDATE SET "
                "settings = excluded.settings, updated_at = excluded.updated_at",
                {**key, "settings": encode_json_object(merged, "chat settings"), "now": dialect.now()},
            )
            return merged

        return await dialect.write(body)


def fair_order(rows: Sequence[Row]) -> list[int]:
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
