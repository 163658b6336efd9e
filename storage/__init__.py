"""smoothbot's durable state: the job queue, per-chat settings and job files. The only package with SQL.

    async with open_queue("sqlite:///data/smoothbot.sqlite3") as queue:   # or postgresql://…
        result = await queue.enqueue("telegram", chat_id, user_id, message_id, path, {"fps": 60})
        claim = await queue.claim("worker-1")

See storage/README.md for the design.
"""

from storage.errors import (
    JobNotFoundError,
    JobStateError,
    LeaseLostError,
    QueueClosedError,
    QueueFullError,
    SchemaTooNewError,
    StorageError,
    StorageUnavailableError,
)
from storage.exclusive import ExclusiveHold
from storage.files import FileMissingError, FileStore, LocalFileStore, S3FileStore, is_key
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
from storage.queue import JobQueue, OpeningQueue, QueueConfig
from storage.rules import SqlJobQueue
from storage.settings import ChatSettingsStore
from storage.sqlite import SqliteChatSettings, SqliteJobQueue
from storage.urls import open_files, open_queue
from storage.values import PLATFORMS, Platform

__all__ = [
    "PLATFORMS",
    "CancelOutcome",
    "CancelStatus",
    "Changes",
    "ChatSettingsStore",
    "Claim",
    "Delivery",
    "EnqueueResult",
    "ExclusiveHold",
    "FileMissingError",
    "FileStore",
    "Job",
    "JobNotFoundError",
    "JobQueue",
    "JobState",
    "JobStateError",
    "LeaseLostError",
    "LeaseState",
    "LocalFileStore",
    "OpeningQueue",
    "Platform",
    "QueueClosedError",
    "QueueConfig",
    "QueueFullError",
    "QueueStats",
    "RecoveryReport",
    "RunningJob",
    "S3FileStore",
    "SchemaTooNewError",
    "SqlJobQueue",
    "SqliteChatSettings",
    "SqliteJobQueue",
    "StorageError",
    "StorageUnavailableError",
    "WorkerInfo",
    "WorkerStatus",
    "is_key",
    "open_files",
    "open_queue",
]
