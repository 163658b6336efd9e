"""``python -m bot migrate TARGET_URL`` in a real subprocess: this bot's SQLite queue into the suite's PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import storage
from tests.bot.test_status import ROOT


def run_migrate(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items()
             if not name.startswith("SMOOTHBOT_") and name not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN")}
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "bot", "migrate", *args], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


async def test_the_configured_sqlite_queue_moves_to_postgresql(tmp_path, postgres_url):
    data = tmp_path / "data"
    async with storage.open_queue(f"sqlite:///{data / 'smoothbot.sqlite3'}") as queue:
        await queue.settings.update("telegram", 42, {"fps": 60})
        done = (await queue.enqueue("telegram", 43, 43, 1, "/data/in/b.mp4", {})).job
        waiting = (await queue.enqueue("telegram", 42, 42, 7, "/data/in/a.mp4", {"fps": 60})).job
        await queue.set_status_message(waiting.id, 8)
        claim = await queue.claim("w")
        assert claim.job_id == done.id  # the older head: history, not copied
        await queue.set_result(claim, "/data/out/x.mp4")
        await queue.complete(claim, 9)
    first = run_migrate(tmp_path, postgres_url, SMOOTHBOT_DATA_DIR=str(data))
    assert first.returncode == 0, first.stderr
    assert "copied the settings of 1 chats and 1 unfinished jobs (0 were there already)" in first.stdout
    again = run_migrate(tmp_path, postgres_url, SMOOTHBOT_DATA_DIR=str(data))
    assert "and 0 unfinished jobs (1 were there already)" in again.stdout
    async with storage.open_queue(postgres_url) as target:
        assert await target.settings.get("telegram", 42) == {"fps": 60}
        assert await target.jobs_for_user("telegram", 43, 43, include_finished=True) == []
        (copied,) = await target.jobs_for_user("telegram", 42, 42)
        assert (copied.state, copied.message_id, copied.status_message_id, copied.options) == (
            storage.JobState.QUEUED, "7", "8", {"fps": 60})


def test_without_a_queue_to_copy_it_says_so_in_one_line(tmp_path):
    done = run_migrate(tmp_path, "postgresql://u:pw-s3kr1t@127.0.0.1:1/db", SMOOTHBOT_DATA_DIR=str(tmp_path / "none"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: no queue at ") and done.stderr.count("\n") == 1
    assert "pw-s3kr1t" not in done.stderr + done.stdout
