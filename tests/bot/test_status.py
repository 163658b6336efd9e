"""``python -m bot status`` in a real subprocess, on a real SQLite file and on the suite's PostgreSQL."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import storage
from bot.status import format_age

ROOT = Path(__file__).resolve().parents[2]


def run_status(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m bot status`` with only these settings (no .env: cwd is a fresh directory)."""
    clean = {name: value for name, value in os.environ.items()
             if not name.startswith("SMOOTHBOT_") and name not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN")}
    clean["PYTHONPATH"] = str(ROOT)  # this checkout's modules
    return subprocess.run([sys.executable, "-m", "bot", "status"], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


async def fill(queue) -> dict[str, int]:
    """Three users' jobs: one claimed by gpu-a (40 % done), one waiting, one cancelled, one done."""
    jobs = {}
    for user in ("1", "2", "3", "4"):
        result = await queue.enqueue("telegram", user, user, 1, f"/data/in/{user}.mp4", {})
        jobs[user] = result.job.id
    done = await queue.claim("gpu-b")
    await queue.set_result(done, "/data/out/1.mp4")
    await queue.complete(done, 9)
    await queue.cancel("telegram", "4", "4")
    running = await queue.claim("gpu-a")
    await queue.progress(running, 0.4)
    return {"running": running.job_id, "done": done.job_id}


def worker_line(output: str, worker: str) -> str:
    (line,) = [line for line in output.splitlines() if line.split()[:1] == [worker]]
    return line


def assert_table(output: str, running_job: int) -> None:
    assert "  queued 1   running 1   done 1   failed 0   cancelled 1" in output
    assert re.search(r"oldest waiting: \d+s\n", output), output  # seconds (under a minute) ago
    assert "Running jobs (1):" in output
    line = worker_line(output.split("Running jobs")[1], "gpu-a")
    assert line.split()[1:6] == [str(running_job), "telegram", "running", "40%", "1"], line
    assert re.search(r"  \d+s ago +ends in \d+s$", line), line  # seconds, not minutes: the claim just happened


async def test_status_of_a_sqlite_queue_with_a_claimed_job(tmp_path):
    database = tmp_path / "queue.sqlite3"
    async with storage.open_queue(f"sqlite:///{database}", lease_seconds=60) as queue:
        jobs = await fill(queue)
        done = run_status(tmp_path, SMOOTHBOT_QUEUE_URL=f"sqlite:///{database}", SMOOTHBOT_LEASE_SECONDS="60")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert f"Queue: sqlite:///{database}" in done.stdout
    assert_table(done.stdout, jobs["running"])


async def test_status_of_a_postgres_queue_with_a_claimed_job(tmp_path, postgres_url):
    async with storage.open_queue(postgres_url, lease_seconds=60) as queue:
        jobs = await fill(queue)
        done = run_status(tmp_path, SMOOTHBOT_QUEUE_URL=postgres_url, SMOOTHBOT_LEASE_SECONDS="60")
    assert done.returncode == 0, done.stderr
    assert_table(done.stdout, jobs["running"])


async def test_a_worker_that_stopped_heartbeating_is_flagged(tmp_path):
    database = tmp_path / "queue.sqlite3"
    past = time.time() - 300  # the claim happened five minutes ago; the lease was 60 s
    async with storage.open_queue(f"sqlite:///{database}", lease_seconds=60, clock=lambda: past) as queue:
        await queue.enqueue("discord", "c", "u", "m", "/data/in/x.mp4", {})
        await queue.claim("gpu-dead")
    done = run_status(tmp_path, SMOOTHBOT_QUEUE_URL=f"sqlite:///{database}", SMOOTHBOT_LEASE_SECONDS="60")
    assert done.returncode == 0, done.stderr
    line = worker_line(done.stdout.split("Running jobs")[1], "gpu-dead")
    found = re.search(r"  (\d+)m (\d\d)s ago +EXPIRED (\d+)m (\d\d)s ago \(worker gone\?", line)
    assert found, line
    beat_age, expired_for = (int(found[1]) * 60 + int(found[2])), (int(found[3]) * 60 + int(found[4]))
    assert 300 <= beat_age < 360, line  # (the subprocess's start-up on a loaded machine adds seconds)
    assert beat_age - expired_for == 60, line  # the lease: heartbeat + 60 s


async def test_workers_that_heartbeat_are_listed_busy_idle_and_gone(tmp_path, postgres_url):
    now = [time.time() - 200]  # the workers started 200 s ago
    async with storage.open_queue(postgres_url, lease_seconds=60, clock=lambda: now[0]) as queue:
        for worker, host, pid in (("gpu-a", "box-1", 11), ("gpu-b", "box-2", 22), ("gpu-c", "box-2", 33),
                                  ("gpu-old", "box-3", 44)):
            await queue.register_worker(worker, host=host, pid=pid)
        await queue.unregister_worker("gpu-old")
        jobs = await fill(queue)  # gpu-a runs a job (40 %)
        now[0] += 190  # gpu-c falls silent; the others beat 10 s before the read
        for worker in ("gpu-a", "gpu-b"):
            assert await queue.worker_heartbeat(worker)
        done = run_status(tmp_path, SMOOTHBOT_QUEUE_URL=postgres_url, SMOOTHBOT_LEASE_SECONDS="60")
    assert done.returncode == 0, done.stderr
    workers = done.stdout.split("Running jobs")[0]
    assert "Workers: 1 busy, 1 idle, 1 gone, 1 stopped (not listed):" in workers
    assert "gpu-old" not in workers
    busy = worker_line(workers, "gpu-a").split()
    assert busy[1:5] == ["busy", "box-1", "11", "3m"], busy  # up 3m 20s, give or take the start-up
    assert re.search(r"\d+s ago +job %d \(40%%\)$" % jobs["running"], worker_line(workers, "gpu-a"))
    idle = worker_line(workers, "gpu-b")
    assert idle.split()[1:4] == ["idle", "box-2", "22"] and idle.endswith(" -"), idle
    gone = worker_line(workers, "gpu-c")
    assert gone.split()[1:4] == ["GONE", "box-2", "33"], gone
    assert re.search(r"no heartbeat for 3m \d\ds \(killed or cut off\?\)$", gone), gone


def test_an_empty_queue(tmp_path):
    database = tmp_path / "data" / "smoothbot.sqlite3"
    database.parent.mkdir()

    async def create() -> None:
        async with storage.open_queue(f"sqlite:///{database}"):
            pass

    import asyncio
    asyncio.run(create())
    done = run_status(tmp_path, SMOOTHBOT_DATA_DIR=str(tmp_path / "data"))  # the default queue file
    assert done.returncode == 0, done.stderr
    assert "oldest waiting: none waiting" in done.stdout
    assert "Workers: 0 busy, 0 idle, 0 gone, 0 stopped (not listed): no worker is heartbeating" in done.stdout
    assert "Running jobs: none" in done.stdout


def test_a_missing_sqlite_queue_is_one_line_and_exit_2(tmp_path):
    done = run_status(tmp_path, SMOOTHBOT_QUEUE_URL=f"sqlite:///{tmp_path}/nothing.sqlite3")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"error: no queue at {tmp_path}/nothing.sqlite3 (set SMOOTHBOT_QUEUE_URL, " \
                          "or SMOOTHBOT_DATA_DIR where the bot runs)\n"
    assert not (tmp_path / "nothing.sqlite3").exists()  # status created nothing


def test_a_file_that_is_not_a_queue_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "junk.sqlite3").write_bytes(b"this is not a database, just bytes" * 100)
    done = run_status(tmp_path, SMOOTHBOT_QUEUE_URL=f"sqlite:///{tmp_path}/junk.sqlite3")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: cannot open the queue at sqlite:///") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_an_unreachable_postgres_is_one_line_exit_2_without_the_password(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_status(tmp_path, SMOOTHBOT_QUEUE_URL=f"postgresql://bot:s3cret@127.0.0.1:{port}/smoothbot")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: cannot open the queue at postgresql://bot:***@127.0.0.1:{port}/smoothbot")
    assert done.stderr.count("\n") == 1 and "s3cret" not in done.stderr and "Traceback" not in done.stderr


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path):
    done = run_status(tmp_path, SMOOTHBOT_QUEUE_URL="mysql://x")
    assert done.returncode == 2 and done.stderr.startswith("error: bad setting queue_url:")


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.9, "59s"), (65, "1m 05s"), (3600 * 2 + 600, "2h 10m"),
                                               (86400 * 3 + 3600 * 4, "3d 4h"), (-3, "0s")])
def test_ages_read_like_a_clock(seconds, text):
    assert format_age(seconds) == text
