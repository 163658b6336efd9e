"""The durable job queue's interface: ``JobQueue`` (what the bot is written against) and ``QueueConfig``.

A job's life: ``enqueue`` (idempotent per platform message) → ``claim`` (a lease with a token) →
``heartbeat``/``progress`` while running → ``set_result`` → the bot sends the result →
``complete`` (done and delivered in one transaction). A worker that dies leaves its lease to
expire; the job then goes back to the queue (keeping a finished ``result_path``, so the next
worker only re-delivers) until ``max_attempts`` claims were used up, when it fails with a message
for the user. Every write a worker makes checks its claim token, so a worker whose lease was taken
over cannot overwrite the new owner's work.

The rules are implemented once in ``storage/rules.py`` (``SqlJobQueue``) over two dialects:
``storage/sqlite.py`` (``SqliteJobQueue``, the embedded default) and ``storage/postgres.py``
(``PostgresJobQueue``, for several machines). See storage/README.md.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from storage.jobs import (
    CancelOutcome,
    Changes,
    Claim,
    Delivery,
    EnqueueResult,
    Job,
    LeaseState,
    QueueStats,
    RecoveryReport,
    WorkerInfo,
)
from storage.exclusive import ExclusiveHold
from storage.settings import ChatSettingsStore
from storage.values import PlatformId

DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_MAX_QUEUED_PER_USER = 5
DEFAULT_PROGRESS_INTERVAL = 2.0

# %d is the number of attempts that were interrupted (replaced in SQL).
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
    """The queue as the bot sees it. ``SqliteJobQueue`` and ``PostgresJobQueue`` implement it."""

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

    @abstractmethod
    async def stats(self) -> QueueStats:
        """Jobs per state, the oldest waiting job's enqueue time and the running jobs with their
        workers' last heartbeats, read in one go (read-only: for metrics and ``python -m bot status``)."""

    # --- workers, for operators ---
    @abstractmethod
    async def register_worker(self, worker_id: str, *, host: str, pid: int) -> None:
        """A worker process starts: record its id, host and pid, started and beating now."""

    @abstractmethod
    async def worker_heartbeat(self, worker_id: str) -> bool:
        """The worker is alive (every ``config.heartbeat_interval``); False when it has no row: register again."""

    @abstractmethod
    async def unregister_worker(self, worker_id: str) -> None:
        """A clean shutdown: the worker shows as stopped, not gone (rows silent for a day are forgotten)."""

    @abstractmethod
    async def workers(self) -> list[WorkerInfo]:
        """Registered workers: busy, idle, gone (no heartbeat for ``lease_seconds``) or stopped, with their jobs."""

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
    async def set_result(
        self, claim: Claim, result_path: str | os.PathLike[str], outcome: Mapping[str, Any] | None = None
    ) -> Job:
        """The result file is ready but not yet sent. If the worker dies now, the job comes back
        to a worker with ``has_result`` set, to be delivered without computing it again.

        ``outcome``: what a front-end needs to send it (a JSON object, kept verbatim in ``job.outcome``)."""

    @abstractmethod
    async def complete(self, claim: Claim, reply_message_id: PlatformId | None) -> Job:
        """The result was delivered: done and ``delivered`` in one transaction, with the sent message id."""

    @abstractmethod
    async def fail(self, claim: Claim, user_message: str, kind: str | None = None) -> Job:
        """The job cannot succeed; ``user_message`` is what the user is told, ``kind`` a short code
        for why (``job.outcome["failure"]``: "bad_input", "time_limit", …) for logs and front-ends.

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

    @abstractmethod
    async def wait_for_work(self, timeout: float) -> bool:
        """Wait until a job may be claimable or ``timeout`` passes; True when woken (a hint)."""

    @abstractmethod
    async def hand_over(self, claim: Claim) -> Job:
        """The result is stored: the job is done, for a front-end to deliver (``claim_delivery``)."""

    # --- front-ends ---
    @abstractmethod
    async def latest_change(self) -> int:
        """A change-feed cursor meaning "from now on"."""

    @abstractmethod
    async def changes_since(self, cursor: int) -> Changes:
        """The jobs changed at or after ``cursor`` (as they are now) and the next cursor."""

    @abstractmethod
    async def wait_for_changes(self, timeout: float) -> bool:
        """Wait until some job may have changed or ``timeout`` passes; True when woken (a hint)."""

    @abstractmethod
    def exclusive(self, name: str, *, retry_s: float = 2.0, check_s: float = 2.0) -> ExclusiveHold:
        """Something one process at a time may do (Telegram polling): ``await hold.acquire()``, then
        ``hold.wait_lost()``. PostgreSQL: an advisory lock; SQLite: held at once (one machine)."""

    @abstractmethod
    async def take_edit_slot(self, platform: str, chat_id: PlatformId, min_interval: float) -> bool:
        """True when this chat's status message may be edited now: at most once per ``min_interval``
        seconds per chat, across every front-end on this queue."""

    @abstractmethod
    async def undelivered(self, limit: int = 20, platforms: Sequence[str] | None = None) -> list[Job]:
        """Finished jobs whose outcome no front-end has sent yet, oldest first (of ``platforms`` only)."""

    @abstractmethod
    async def claim_delivery(self, job_id: int, owner: str) -> Delivery | None:
        """The lease on sending a finished job's outcome, or None if it is taken or not due."""

    @abstractmethod
    async def mark_delivered(self, delivery: Delivery, reply_message_id: PlatformId | None) -> Job:
        """The outcome was sent; checked against the delivery lease (``LeaseLostError``)."""

    @abstractmethod
    async def extend_delivery(self, delivery: Delivery) -> bool:
        """Keep the delivery lease another ``lease_seconds``; False when it is lost or the job delivered."""

    @abstractmethod
    async def fail_delivery(self, delivery: Delivery, user_message: str, kind: str | None = None) -> Job:
        """A made result cannot be sent: the job becomes failed, still under this delivery lease."""

    @abstractmethod
    async def release_delivery(self, delivery: Delivery) -> None:
        """Give the delivery lease back unsent."""

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


Q = TypeVar("Q", bound=JobQueue)


class OpeningQueue(Generic[Q]):
    """What ``….open(...)`` returns: ``await`` it for the queue, or ``async with`` it."""

    def __init__(self, opening: Callable[[], Awaitable[Q]]) -> None:
        self._opening = opening
        self._queue: Q | None = None

    def __await__(self) -> Generator[Any, None, Q]:
        return self._opening().__await__()

    async def __aenter__(self) -> Q:
        self._queue = await self._opening()
        return self._queue

    async def __aexit__(self, *exc_info: object) -> None:
        if self._queue is not None:
            await self._queue.close()
