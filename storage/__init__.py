"""smoothbot's durable state: the job queue and per-chat settings. The only package with SQL.

    async with SqliteJobQueue.open("data/smoothbot.sqlite3") as queue:
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
)
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
from storage.queue import JobQueue, QueueConfig, SqliteJobQueue
from storage.settings import ChatSettingsStore, SqliteChatSettings
from storage.values import PLATFORMS, Platform

__all__ = [
    "PLATFORMS",
    "CancelOutcome",
    "CancelStatus",
    "ChatSettingsStore",
    "Claim",
    "EnqueueResult",
    "Job",
    "JobNotFoundError",
    "JobQueue",
    "JobState",
    "JobStateError",
    "LeaseLostError",
    "LeaseState",
    "Platform",
    "QueueClosedError",
    "QueueConfig",
    "QueueFullError",
    "RecoveryReport",
    "SchemaTooNewError",
    "SqliteChatSettings",
    "SqliteJobQueue",
    "StorageError",
]
