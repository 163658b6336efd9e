"""Move a deployment to another queue: copy chat settings and unfinished jobs (SQLite → PostgreSQL).

    python -m storage.copy sqlite:///data/smoothbot.sqlite3 postgresql://bot:secret@db:5432/smoothbot

Stop the bot first (nothing may be running on the source). What is copied:
- every chat's settings (merged into the target's, key by key);
- every queued or running job, as a queued job with its platform message, input file, options and
  status message, so the new deployment runs it and edits the same status message. A running job's
  attempt is not counted; a result that was made but not yet sent is made again (its file stays
  where it is, but the target gets a fresh start).
Finished jobs (history) are not copied. Copying again is harmless: a job already in the target (the
same platform message) is skipped. The input paths are copied as they are, so the files must be
reachable at the same paths from the new deployment (same machine or the same mounted data folder).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

from storage.errors import StorageError
from storage.jobs import Job
from storage.queue import JobQueue
from storage.rules import SqlJobQueue
from storage.urls import open_queue
from storage.values import decode_json_object


@dataclass(frozen=True)
class CopyReport:
    settings: int  # chats whose settings were copied
    jobs: int  # unfinished jobs created in the target
    already_there: int  # unfinished jobs the target had already (an earlier copy)


async def copy_unfinished(source: SqlJobQueue, target: JobQueue) -> CopyReport:
    """Copy ``source``'s chat settings and unfinished jobs into ``target`` (see the module doc)."""
    if target.config.max_queued_per_user is not None:
        raise ValueError("open the target queue with max_queued_per_user=None: a copy must not refuse jobs")
    chats = await source.dialect.read(
        lambda conn: conn.fetch("SELECT platform, chat_id, settings FROM chat_settings ORDER BY platform, chat_id")
    )
    for chat in chats:
        await target.settings.update(chat["platform"], chat["chat_id"], decode_json_object(chat["settings"]))
    rows = await source.dialect.read(
        lambda conn: conn.fetch("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY id")
    )
    created = 0
    for job in (Job.from_row(row) for row in rows):
        if job.input_path is None:
            continue  # its file was deleted: nothing to run
        result = await target.enqueue(job.platform, job.chat_id, job.user_id, job.message_id, job.input_path,
                                      job.options)
        if result.created:
            created += 1
            if job.status_message_id is not None:
                await target.set_status_message(result.job.id, job.status_message_id)
    return CopyReport(settings=len(chats), jobs=created, already_there=len(rows) - created)


async def _copy(source_url: str, target_url: str) -> CopyReport:
    async with open_queue(source_url) as source, open_queue(target_url, max_queued_per_user=None) as target:
        return await copy_unfinished(source, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storage.copy", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the queue URL to copy from (e.g. sqlite:///data/smoothbot.sqlite3)")
    parser.add_argument("target", help="the queue URL to copy into (e.g. postgresql://user:pw@host:5432/db)")
    args = parser.parse_args(argv)
    return run(args.source, args.target)


def run(source_url: str, target_url: str) -> int:
    """Copy, and say what was copied (exit 0) or the one-line reason why not (exit 2)."""
    try:
        report = asyncio.run(_copy(source_url, target_url))
    except (ValueError, StorageError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"copied the settings of {report.settings} chats and {report.jobs} unfinished jobs "
          f"({report.already_there} were there already)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
