"""``python -m bot status``: the queue and the workers running jobs, read from the queue URL.

It reads only (``JobQueue.stats()``), from ``SMOOTHBOT_QUEUE_URL`` or the default SQLite file, so
it works from any machine that can reach the queue, beside a running bot (opening applies pending
schema migrations, as every process's open does; no job is written). Exit 0 with a table;
exit 2 with one line when the settings are bad or the queue cannot be opened.

Workers: every worker process registers in the queue's ``workers`` table and heartbeats there
(bot/presence.py), busy or idle, so the table lists each one with its host, pid, uptime, last
heartbeat and the job it runs; one silent for ``SMOOTHBOT_LEASE_SECONDS`` shows as GONE (killed,
hung or cut off from the queue), one that shut down cleanly is counted as stopped. Running jobs
are listed from their leases: each names its worker, and its last claim or heartbeat is the
lease's end less the lease. A lease that has run out means that worker stopped heartbeating; the
next claim by any worker puts the job back in the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

import asyncpg
from pydantic import ValidationError

import storage
from storage import QueueStats, RunningJob, StorageError, WorkerInfo, WorkerStatus
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
        description="Show the job queue (jobs per state, the oldest waiting job), the workers that "
                    "heartbeat (busy, idle or gone) and the running jobs, read from SMOOTHBOT_QUEUE_URL "
                    "(default: the SQLite file in the data directory).")
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


def table(rows: list[tuple[str, ...]]) -> list[str]:
    """Columns padded to their widest cell (the last one left as it is), indented."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return ["  " + "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
            for row in rows]


def ago(stats: QueueStats, moment: datetime | None) -> str:
    return "-" if moment is None else f"{format_age((stats.read_at - moment).total_seconds())} ago"


def worker_job_text(worker: WorkerInfo, stats: QueueStats) -> str:
    progress = {job.job_id: job.progress for job in stats.running}
    if worker.status is WorkerStatus.GONE:
        held = f"; its job {', '.join(map(str, worker.jobs))} goes back to the queue" if worker.jobs else ""
        return f"no heartbeat for {ago(stats, worker.last_beat_at).removesuffix(' ago')} (killed or cut off?){held}"
    if not worker.jobs:
        return "-"
    return ", ".join(f"job {job_id} ({progress.get(job_id, 0.0):.0%})" for job_id in worker.jobs)


def worker_lines(stats: QueueStats) -> list[str]:
    listed = [worker for worker in stats.workers if worker.status is not WorkerStatus.STOPPED]
    counts = {status: sum(worker.status is status for worker in stats.workers) for status in WorkerStatus}
    summary = (f"Workers: {counts[WorkerStatus.BUSY]} busy, {counts[WorkerStatus.IDLE]} idle, "
               f"{counts[WorkerStatus.GONE]} gone, {counts[WorkerStatus.STOPPED]} stopped (not listed)")
    if not listed:
        return [f"{summary}: no worker is heartbeating"]
    rows = [("WORKER", "STATUS", "HOST", "PID", "UP", "LAST HEARTBEAT", "JOB")]  # UP: until the last beat if gone
    for worker in listed:
        rows.append((worker.worker_id, worker.status.value.upper() if worker.status is WorkerStatus.GONE
                     else worker.status.value, worker.host, str(worker.pid),
                     format_age(((worker.last_beat_at if worker.status is WorkerStatus.GONE else stats.read_at)
                                 - worker.started_at).total_seconds()),
                     ago(stats, worker.last_beat_at), worker_job_text(worker, stats)))
    return [f"{summary}:", *table(rows)]


def running_lines(stats: QueueStats) -> list[str]:
    if not stats.running:
        return ["Running jobs: none"]
    rows = [("WORKER", "JOB", "PLATFORM", "STATE", "PROGRESS", "ATTEMPT", "LAST HEARTBEAT", "LEASE")]
    for job in stats.running:
        rows.append((job.worker_id, str(job.job_id), job.platform, "stopping" if job.cancel_requested else "running",
                     f"{job.progress:.0%}", str(job.attempts), ago(stats, job.last_heartbeat_at),
                     lease_text(job, stats)))
    return [f"Running jobs ({len(stats.running)}):", *table(rows)]


def render(stats: QueueStats, where: str) -> str:
    counts = "   ".join(f"{state.value} {count}" for state, count in stats.counts.items())
    oldest = stats.oldest_queued_age_s
    lines = [
        f"Queue: {where}",
        f"  {counts}",
        f"  oldest waiting: {'none waiting' if oldest is None else format_age(oldest)}",
        "",
        *worker_lines(stats),
        "",
        *running_lines(stats),
    ]
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
