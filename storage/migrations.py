"""Schema versions of the SQLite database (PostgreSQL's are in storage/postgres.py), tracked in ``PRAGMA user_version`` and applied on open.

Each migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the version bump, and
re-reads the version inside that transaction, so several processes opening the same file at once
apply each migration exactly once. Add a migration by appending to ``MIGRATIONS``; never edit one
that has shipped. Job options and chat settings are JSON blobs that storage does not interpret, so
new bot options ("slowmo", "quality", ...) never need a migration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from storage.errors import SchemaTooNewError


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


_JOBS = """
CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    platform          TEXT    NOT NULL CHECK (platform IN ('telegram', 'discord', 'console')),
    chat_id           TEXT    NOT NULL,
    user_id           TEXT    NOT NULL,
    message_id        TEXT    NOT NULL,
    input_path        TEXT,
    options           TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(options)),
    state             TEXT    NOT NULL DEFAULT 'queued'
                              CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL CHECK (max_attempts >= 1),
    error             TEXT,
    created_at        REAL    NOT NULL,
    updated_at        REAL    NOT NULL,
    started_at        REAL,
    finished_at       REAL,
    progress          REAL    NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    result_path       TEXT,
    delivered         INTEGER NOT NULL DEFAULT 0,
    status_message_id TEXT,
    reply_message_id  TEXT,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    lease_token       TEXT,
    lease_owner       TEXT,
    lease_expires_at  REAL,
    files_purged_at   REAL,
    UNIQUE (platform, chat_id, message_id)
)
"""

# Who was served when, for round-robin fairness: a claim stamps the user with the next serial.
_USER_TURNS = """
CREATE TABLE user_turns (
    platform    TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    last_served INTEGER NOT NULL,
    PRIMARY KEY (platform, user_id)
) WITHOUT ROWID
"""

_CHAT_SETTINGS = """
CREATE TABLE chat_settings (
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    settings   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
    updated_at REAL NOT NULL,
    PRIMARY KEY (platform, chat_id)
) WITHOUT ROWID
"""

# The indexes of the jobs table, the same on both engines (storage/postgres.py uses them too).
JOB_INDEXES: tuple[str, ...] = (
    # The claim query: each user's oldest queued job (partial index stays small).
    "CREATE INDEX jobs_queued_by_user ON jobs (platform, user_id, id) WHERE state = 'queued'",
    "CREATE INDEX jobs_running_by_lease ON jobs (lease_expires_at) WHERE state = 'running'",
    "CREATE INDEX jobs_by_chat_user ON jobs (platform, chat_id, user_id, id)",
    "CREATE INDEX jobs_finished_with_files ON jobs (finished_at) "
    "WHERE input_path IS NOT NULL OR result_path IS NOT NULL",
)
# Added in version 2: the change feed and the delivery lease.
CHANGE_INDEXES: tuple[str, ...] = (
    "CREATE INDEX jobs_by_change ON jobs (change_seq)",
    "CREATE INDEX jobs_undelivered ON jobs (finished_at) WHERE NOT delivered",
)

# Added in version 3: worker processes that heartbeat (for operators) and the per-chat status-edit throttle.
_WORKERS = """
CREATE TABLE workers (
    worker_id    TEXT    NOT NULL PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   REAL    NOT NULL,
    last_beat_at REAL    NOT NULL,
    stopped_at   REAL
) WITHOUT ROWID
"""

_EDIT_SLOTS = """
CREATE TABLE edit_slots (
    platform TEXT NOT NULL,
    chat_id  TEXT NOT NULL,
    next_at  REAL NOT NULL,
    PRIMARY KEY (platform, chat_id)
) WITHOUT ROWID
"""

# Added in version 4 (PostgreSQL: 3): what the worker knows about the outcome and the front-end
# needs (a result's kind, caption, size; a failure's kind), as a JSON object. Cancellations from
# before the front-ends delivered them count as told, so an upgrade sends no old "Cancelled." edits.
OUTCOME_STATEMENTS: tuple[str, ...] = (
    "ALTER TABLE jobs ADD COLUMN outcome TEXT",
    "UPDATE jobs SET delivered = TRUE WHERE state = 'cancelled'",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "jobs, user turns for fair claiming, per-chat settings",
        (
            _JOBS,
            *JOB_INDEXES,
            _USER_TURNS,
            _CHAT_SETTINGS,
        ),
    ),
    Migration(
        2,
        "change feed for front-ends, delivery lease, enqueue token (lost-commit check)",
        (
            # Every job write that a front-end shows stamps change_seq (storage/rules.py).
            "ALTER TABLE jobs ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0",
            "UPDATE jobs SET change_seq = id",
            "ALTER TABLE jobs ADD COLUMN enqueue_token TEXT",
            "ALTER TABLE jobs ADD COLUMN delivery_token TEXT",
            "ALTER TABLE jobs ADD COLUMN delivery_owner TEXT",
            "ALTER TABLE jobs ADD COLUMN delivery_expires_at REAL",
            *CHANGE_INDEXES,
        ),
    ),
    Migration(
        3,
        "workers that heartbeat, per-chat status-edit slots",
        (_WORKERS, _EDIT_SLOTS),
    ),
    Migration(
        4,
        "job outcome (how to send a result, or a failure's kind) for front-ends apart from workers",
        OUTCOME_STATEMENTS,
    ),
)


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return migrations[-1].version if migrations else 0


def check_sequence(migrations: Sequence[Migration]) -> None:
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3, ... in order; got {versions}")


async def schema_version(conn: aiosqlite.Connection) -> int:
    (row,) = await conn.execute_fetchall("PRAGMA user_version")
    return int(row[0])


async def apply_migrations(
    conn: aiosqlite.Connection, path: str, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the database up to the newest version; returns that version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) and not inside a transaction.
    """
    check_sequence(migrations)
    known = latest_version(migrations)
    for migration in migrations:
        await conn.execute_fetchall("BEGIN IMMEDIATE")
        try:
            current = await schema_version(conn)
            if current > known:
                raise SchemaTooNewError(path, current, known)
            if current < migration.version:
                for statement in migration.statements:
                    await conn.execute_fetchall(statement)
                # PRAGMA takes no bound parameters; the version is an int we control.
                await conn.execute_fetchall(f"PRAGMA user_version = {int(migration.version)}")
            await conn.execute_fetchall("COMMIT")
        except BaseException:
            await conn.execute_fetchall("ROLLBACK")
            raise
    version = await schema_version(conn)
    if version > known:
        raise SchemaTooNewError(path, version, known)
    return version
