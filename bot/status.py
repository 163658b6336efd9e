"""``python -m bot status``: the queue and the workers running jobs, read from the queue URL.

It reads only (``JobQueue.stats()``), from ``SMOOTHBOT_QUEUE_URL`` or the default SQLite file, so
it works from any machine that can reach the queue, beside a running bot (opening applies pending
schema migrations, as every process's open does; no job is written). Exit 0 with a table;
exit 2 with one line when the settings are bad or the queue cannot be opened.

Workers appear through the jobs they hold (the queue keeps no list of idle workers): each running
job's lease names its worker, and its last claim or heartbeat is the lease's end less
``SMOOTHBOT_LEASE_SECONDS``. A lease that has run out means that worker stopped heartbeating; the
next claim by any worker puts the job back in the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys
from pathlib import Path

import asyncpg
from pydantic import ValidationError

import storage
from storage import QueueStats, RunningJob, StorageError
from storage.postgres import redacted
from storage.urls import SQLITE_PREFIX, sqlite_path

from .config import Settings, setting_error

#: Seconds a status read waits for an unreachable PostgreSQL before it says so.
CONNECT_TIMEOUT_S = 3.0

OPEN_ERRORS = (StorageError, OSError, ValueError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError)


class QueueUnavailable(Exception):
    """The queue could not be opened or read; ``str()`` is the line to print."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot status",
        description="Show the job queue (jobs per state, the oldest waiting job) and the workers running "
                    "jobs, read from SMOOTHBOT_QUEUE_URL (default: the SQLite file in the data directory).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the storage layer's retries")
    return parser


def format_age(seconds: float) -> str:
    """``45s``, ``3m 05s``, ``2h 10m``, ``3d 4h``."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def lease_text(job: RunningJob, stats: QueueStats) -> str:
    if job.lease_expires_at is None:
        return "-"
    left = (job.lease_expires_at - stats.read_at).total_seconds()
    if left >= 0:
        return f"ends in {format_age(left)}"
    return f"EXPIRED {format_age(-left)} ago (worker gone? the next claim requeues the job)"


def render(stats: QueueStats, where: str) -> str:
    counts = "   ".join(f"{state.value} {count}" for state, count in stats.counts.items())
    oldest = stats.oldest_queued_age_s
    lines = [
        f"Queue: {where}",
        f"  {counts}",
        f"  oldest waiting: {'none waiting' if oldest is None else format_age(oldest)}",
        "",
    ]
    if not stats.running:
        lines.append("Workers running a job: none (idle workers are not recorded in the queue)")
        return "\n".join(lines)
    lines.append(f"Workers running a job ({len({job.worker_id for job in stats.running})}):")
    header = ("WORKER", "JOB", "PLATFORM", "STATE", "PROGRESS", "ATTEMPT", "LAST HEARTBEAT", "LEASE")
    rows = [header]
    for job in stats.running:
        beat = "-" if job.last_heartbeat_at is None else \
            f"{format_age((stats.read_at - job.last_heartbeat_at).total_seconds())} ago"
        rows.append((job.worker_id, str(job.job_id), job.platform, "stopping" if job.cancel_requested else "running",
                     f"{job.progress:.0%}", str(job.attempts), beat, lease_text(job, stats)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  " + "  ".join([*cells, row[-1]]))
    return "\n".join(lines)


async def read_stats(settings: Settings) -> QueueStats:
    url = settings.queue_location
    options: dict[str, object] = {"lease_seconds": settings.lease_seconds}
    if url.startswith(SQLITE_PREFIX):
        path = Path(sqlite_path(url))
        if not path.is_file():  # opening would create an empty queue: say there is none
            raise QueueUnavailable(f"no queue at {path} (set SMOOTHBOT_QUEUE_URL, or SMOOTHBOT_DATA_DIR where the bot runs)")
    else:
        options.update(reconnect_timeout=CONNECT_TIMEOUT_S, listen=False, pool_size=1)
    try:
        async with storage.open_queue(url, **options) as queue:
            return await queue.stats()
    except OPEN_ERRORS as error:
        raise QueueUnavailable(f"cannot open the queue at {redacted(url)}: {error}") from error


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # One answer, not the reconnect warnings of each retry (those are for a long-running service).
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: {setting_error(error)}", file=sys.stderr)
        return 2
    try:
        stats = asyncio.run(read_stats(settings))
    except QueueUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render(stats, redacted(settings.queue_location)))
    return 0
