"""The values the job queue hands out: jobs, claims, lease states and outcomes. No SQL here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from storage.values import decode_json_object, to_datetime


class Row(Protocol):
    """A result row: ``sqlite3.Row`` or ``asyncpg.Record`` (both are read by column name)."""

    def __getitem__(self, key: str) -> Any: ...


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATES

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_STATES


ACTIVE_STATES = frozenset({JobState.QUEUED, JobState.RUNNING})
FINISHED_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True)
class Job:
    """A snapshot of one job row. Ids are text; ``options`` is the caller's dict, uninterpreted."""

    id: int
    platform: str
    chat_id: str
    user_id: str
    message_id: str
    input_path: str | None  # None once the file was purged
    options: dict[str, Any]
    state: JobState
    attempts: int
    max_attempts: int
    error: str | None  # the message for the user when state is failed
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None  # start of the latest attempt
    finished_at: datetime | None
    progress: float  # 0..1
    result_path: str | None  # set once the result file is ready (None again once purged)
    delivered: bool  # done: the result was sent; failed: the error message was sent
    status_message_id: str | None  # the bot's "Queued — position N" message, edited as the job moves
    reply_message_id: str | None  # the message that carried the result (or the error)
    cancel_requested: bool
    files_purged_at: datetime | None = None
    #: What the worker recorded for the front-end: how to send the result (``set_result``), or a
    #: failure's kind (``fail``). A JSON object that storage keeps verbatim; None when nothing was.
    outcome: dict[str, Any] | None = None

    @property
    def has_result(self) -> bool:
        """True when the result is computed; a claim of such a job only needs to deliver it."""
        return self.result_path is not None

    @classmethod
    def from_row(cls, row: Row) -> Job:
        return cls(
            id=row["id"],
            platform=row["platform"],
            chat_id=row["chat_id"],
            user_id=row["user_id"],
            message_id=row["message_id"],
            input_path=row["input_path"],
            options=decode_json_object(row["options"]),
            state=JobState(row["state"]),
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            error=row["error"],
            created_at=to_datetime(row["created_at"]),
            updated_at=to_datetime(row["updated_at"]),
            started_at=to_datetime(row["started_at"]),
            finished_at=to_datetime(row["finished_at"]),
            progress=float(row["progress"]),
            result_path=row["result_path"],
            delivered=bool(row["delivered"]),
            status_message_id=row["status_message_id"],
            reply_message_id=row["reply_message_id"],
            cancel_requested=bool(row["cancel_requested"]),
            files_purged_at=to_datetime(row["files_purged_at"]),
            outcome=None if row["outcome"] is None else decode_json_object(row["outcome"]),
        )


@dataclass(frozen=True)
class EnqueueResult:
    job: Job
    created: bool  # False: this platform message was enqueued before, ``job`` is that job
    #: The job's place among the waiting jobs, read in the enqueue's own transaction (before any
    #: worker can claim it); None when it is no longer waiting (a re-delivered message's finished job).
    position: int | None = None


@dataclass(frozen=True)
class Claim:
    """A worker's lease on one running job. Every write the worker makes presents ``token``."""

    job: Job  # as it was when claimed (state running, attempts already counted)
    token: str = field(repr=False)
    worker_id: str
    lease_expires_at: datetime

    @property
    def job_id(self) -> int:
        return self.job.id


@dataclass(frozen=True)
class Delivery:
    """A front-end's lease on sending one finished job's outcome (``claim_delivery``)."""

    job: Job
    token: str = field(repr=False)
    owner: str
    lease_expires_at: datetime

    @property
    def job_id(self) -> int:
        return self.job.id


@dataclass(frozen=True)
class Changes:
    """What ``changes_since`` found: the changed jobs as they are now, and the next cursor."""

    jobs: tuple[Job, ...]
    cursor: int


@dataclass(frozen=True)
class LeaseState:
    """What a heartbeat learns: whether the lease still holds, and whether the user asked to stop."""

    lease_ok: bool
    cancel_requested: bool
    lease_expires_at: datetime | None  # the new expiry; None when the lease was lost


class CancelStatus(StrEnum):
    CANCELLED = "cancelled"  # the job was queued and is now cancelled
    STOPPING = "stopping"  # the job is running; the worker was asked to stop it
    ALREADY_STOPPING = "already_stopping"  # the stop had been asked for before
    FINISHED = "finished"  # the job had already finished (done, failed or cancelled)
    NOTHING = "nothing"  # the user has no active job in this chat
    NOT_FOUND = "not_found"  # no job with that id belongs to this user in this chat


_CANCEL_MESSAGES = {
    CancelStatus.CANCELLED: "Cancelled. That video was still waiting in the queue.",
    CancelStatus.STOPPING: "Stopping. The video being processed will be cancelled in a moment.",
    CancelStatus.ALREADY_STOPPING: "That video is already being stopped.",
    CancelStatus.FINISHED: "That video is already finished, so there is nothing to cancel.",
    CancelStatus.NOTHING: "You have no video in the queue, so there is nothing to cancel.",
    CancelStatus.NOT_FOUND: "There is no video of yours with that number in this chat.",
}


@dataclass(frozen=True)
class CancelOutcome:
    status: CancelStatus
    job: Job | None  # the job as it is after the cancel; None for NOTHING and NOT_FOUND

    @property
    def message(self) -> str:
        """A one-line answer for the user; the bot may phrase its own from ``status``."""
        return _CANCEL_MESSAGES[self.status]

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RecoveryReport:
    """Jobs whose lease had expired (or whose worker restarted), by what happened to them."""

    requeued: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()  # out of attempts; their error says so and they await reporting
    cancelled: tuple[int, ...] = ()  # the user had asked to stop them before the worker died

    @property
    def total(self) -> int:
        return len(self.requeued) + len(self.failed) + len(self.cancelled)


@dataclass(frozen=True)
class RunningJob:
    """A running job as an operator sees it: who runs it, how far it is, when its worker last beat."""

    job_id: int
    platform: str
    worker_id: str
    progress: float  # 0..1
    attempts: int
    started_at: datetime | None
    #: The worker's latest claim or heartbeat: the lease's end less ``lease_seconds``.
    last_heartbeat_at: datetime | None
    lease_expires_at: datetime | None
    cancel_requested: bool


class WorkerStatus(StrEnum):
    """What an operator sees of a worker process (``JobQueue.workers()``)."""

    BUSY = "busy"  # heartbeating and holding a job
    IDLE = "idle"  # heartbeating, waiting for work
    GONE = "gone"  # no heartbeat for longer than the lease: killed, hung, or cut off from the queue
    STOPPED = "stopped"  # said goodbye at a clean shutdown


@dataclass(frozen=True)
class WorkerInfo:
    """One worker process as its heartbeats left it in the queue's ``workers`` table."""

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    last_beat_at: datetime
    stopped_at: datetime | None
    #: Running jobs leased to this worker id now (read from the jobs, so never out of step with them).
    jobs: tuple[int, ...]
    status: WorkerStatus


@dataclass(frozen=True)
class QueueStats:
    """What ``JobQueue.stats()`` read in one go: for metrics and ``python -m bot status``."""

    #: Jobs per state; every state is present (0 when none).
    counts: dict[JobState, int]
    #: When the job waiting longest was enqueued; None when nothing waits.
    oldest_queued_at: datetime | None
    #: Running jobs, by worker then job id.
    running: tuple[RunningJob, ...]
    #: The clock's time of the read (the reference for ages).
    read_at: datetime
    #: Worker processes that registered (busy, idle, gone or stopped), by id.
    workers: tuple[WorkerInfo, ...] = ()

    @property
    def depth(self) -> int:
        """Jobs waiting to be claimed."""
        return self.counts[JobState.QUEUED]

    @property
    def oldest_queued_age_s(self) -> float | None:
        if self.oldest_queued_at is None:
            return None
        return max(0.0, (self.read_at - self.oldest_queued_at).total_seconds())
