"""Moving a SQLite deployment to PostgreSQL: settings and unfinished jobs copied, history left, twice harmless."""

from __future__ import annotations

import subprocess
import sys

from storage import JobState, SqliteJobQueue
from storage.copy import copy_unfinished
from storage.postgres import PostgresJobQueue


async def test_settings_and_unfinished_jobs_move_to_postgresql(db_path, postgres_url, clock, tmp_path):
    async with SqliteJobQueue.open(db_path, clock=clock, max_queued_per_user=None) as old:
        await old.settings.update("telegram", 7, {"fps": 60, "loop": True})
        await old.settings.update("discord", "guild", {"model": "flow"})
        await old.enqueue("telegram", 7, 7, 1, "/in/1.mp4", {})  # finished below: history, not copied
        await old.complete(await old.claim("w"), 10)
        running = (await old.enqueue("telegram", 7, 7, 2, "/in/2.mp4", {"fps": 30})).job
        await old.set_status_message(running.id, 99)
        claim = await old.claim("w")
        await old.set_result(claim, "/out/2.mp4")
        await old.enqueue("discord", "guild", 123456789012345678, 3, "/in/3.mp4", {"slowmo": 2})

        async with PostgresJobQueue.open(postgres_url, clock=clock, max_queued_per_user=None) as new:
            report = await copy_unfinished(old, new)
            assert (report.settings, report.jobs, report.already_there) == (2, 2, 0)
            assert await new.settings.get("telegram", 7) == {"fps": 60, "loop": True}
            assert await new.settings.get("discord", "guild") == {"model": "flow"}
            jobs = await new.jobs_for_user("telegram", 7, 7, include_finished=True) + await new.jobs_for_user(
                "discord", "guild", 123456789012345678)
            assert [(j.message_id, j.state, j.input_path, j.options, j.status_message_id, j.attempts) for j in jobs] == [
                ("2", JobState.QUEUED, "/in/2.mp4", {"fps": 30}, "99", 0),
                ("3", JobState.QUEUED, "/in/3.mp4", {"slowmo": 2}, None, 0),
            ]  # message 1 (done) stayed behind; the running job is queued again, its attempt not counted
            again = await copy_unfinished(old, new)
            assert (again.jobs, again.already_there) == (0, 2)
            # A message re-delivered by the platform after the move is still one job.
            assert not (await new.enqueue("telegram", 7, 7, 2, "/in/dup", {})).created


def test_the_command_line_says_what_went_wrong(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "storage.copy", f"sqlite:///{tmp_path}/q.sqlite3", "mysql://x/y"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: unsupported queue URL 'mysql://x/y'") and "Traceback" not in completed.stderr
