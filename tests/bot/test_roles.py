"""``python -m bot --role frontend|worker``: a front-end with the fake Telegram Bot API and a worker
process that has no platform token and cannot import any chat library; job files in the data
directory, or in an S3 bucket (SeaweedFS on loopback) that only ever holds keys the bot made."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.__main__ import main
from storage import JobState, SqliteJobQueue
from tests.bot.test_telegram import JOB_TIMEOUT, add_clip, bot_settings, replying_to, running_bot
from tests.fakes import FakeTelegram
from tests.media import make_testsrc, read_video

#: A worker process as an operator starts it, with the chat libraries made unimportable.
WORKER_WITHOUT_CHAT_LIBRARIES = (
    "import sys\n"
    "for name in ('telegram', 'discord'):\n"
    "    sys.modules[name] = None  # any import of it raises ImportError\n"
    "from bot.__main__ import main\n"
    "sys.exit(main(['--role', 'worker']))\n"
)


def worker_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "SMOOTHBOT_TELEGRAM_TOKEN", "SMOOTHBOT_DISCORD_TOKEN")}
    return env | {"SMOOTHBOT_DATA_DIR": str(data_dir), "SMOOTHBOT_DEFAULT_MODEL": "blend",
                  "SMOOTHBOT_LEASE_SECONDS": "5", "PYTHONPATH": str(Path.cwd())} | extra


@contextlib.contextmanager
def worker_process(data_dir: Path, cwd: Path, **extra: str) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen([sys.executable, "-c", WORKER_WITHOUT_CHAT_LIBRARIES], cwd=cwd,
                               env=worker_env(data_dir, **extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen, grace_s: float = 30) -> int:
    """SIGTERM (a clean shutdown), SIGKILL after ``grace_s``; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def test_a_front_end_without_a_platform_token_is_refused(monkeypatch, capsys):
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert main(["--role", "frontend"]) == 2  # a front-end without a platform is a mistake
    assert "No chat platform is configured" in capsys.readouterr().err


async def test_a_front_end_and_a_token_less_worker_process_deliver_one_result(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", size="640x480", fps="25", seconds=3)
    settings = bot_settings(tg, tmp_path, progress_edit_interval_s=0.2)
    async with running_bot(tg, settings, role="frontend"):
        message_id = tg.send_user_message(5, 5, video=add_clip(tg, clip), caption="/fps 50")
        queued = await tg.wait_for("sendMessage", replying_to(message_id), timeout=15)
        assert queued.params["text"] == "Queued — position 1"
        await asyncio.sleep(1.0)
        async with SqliteJobQueue.open(settings.database) as queue:
            assert (await queue.get(1)).state is JobState.QUEUED  # the front-end runs no model
        with worker_process(settings.data_dir, tmp_path) as worker:
            sent = await tg.wait_for("sendVideo", lambda c: c.ok, timeout=JOB_TIMEOUT)
            await asyncio.sleep(0.5)
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
        assert worker.returncode == 0, worker.stderr.read().decode()[-2000:]
    assert replying_to(message_id)(sent) and sent.params["caption"].startswith("25 → 50 fps")
    result = tmp_path / "result.mp4"
    result.write_bytes(sent.params["video"].content)
    assert len(read_video(result)[0]) == 150
    assert len(tg.calls_to("sendVideo")) == 1
    edits = [c.params["text"] for c in tg.calls_to("editMessageText") if c.ok]
    assert any(text.startswith("Smoothing…") for text in edits) and edits[-1] == "Done.", edits


def s3_environment(seaweed, prefix: str) -> dict[str, str]:
    return {"SMOOTHBOT_FILES_URL": f"s3://smoothbot/{prefix}", "SMOOTHBOT_S3_ENDPOINT_URL": seaweed.endpoint_url,
            "AWS_ACCESS_KEY_ID": seaweed.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": seaweed.SECRET_KEY,
            "AWS_REGION": seaweed.REGION}


async def test_job_files_go_through_the_s3_bucket_under_keys_the_bot_made(tg, tmp_path, seaweed, monkeypatch):
    import boto3

    prefix = f"roles-{secrets.token_hex(4)}"
    environment = s3_environment(seaweed, prefix)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    clip = make_testsrc(tmp_path / "clip.mp4", size="640x480", fps="25", seconds=2)
    settings = bot_settings(tg, tmp_path, progress_edit_interval_s=0.2, files_url=environment["SMOOTHBOT_FILES_URL"],
                            s3_endpoint_url=seaweed.endpoint_url)
    bucket = boto3.client("s3", endpoint_url=seaweed.endpoint_url, **seaweed.client_options())
    seen: set[str] = set()

    def keys() -> set[str]:
        listing = bucket.list_objects_v2(Bucket="smoothbot", Prefix=f"{prefix}/")
        return {item["Key"].removeprefix(f"{prefix}/") for item in listing.get("Contents", [])}

    async with running_bot(tg, settings, role="frontend"):
        evil = tg.add_file(clip.read_bytes(), mime_type="video/mp4", file_name="../../etc/passwd?x#y.mp4",
                           width=640, height=480, duration=2)
        message_id = tg.send_user_message(6, 6, video=evil, caption="/fps 50")
        await tg.wait_for("sendMessage", replying_to(message_id), timeout=15)
        seen |= keys()  # the input is in the bucket before any worker runs
        assert len(seen) == 1 and not any((tmp_path / "data" / "inbox").glob("*"))  # no local copy kept
        shared_queue = {"SMOOTHBOT_QUEUE_URL": f"sqlite:///{settings.database.resolve()}"}
        with worker_process(tmp_path / "worker-data", tmp_path, **environment, **shared_queue) as worker:
            sending = asyncio.ensure_future(tg.wait_for("sendVideo", lambda c: c.ok, timeout=JOB_TIMEOUT))
            while not sending.done():
                seen |= keys()
                await asyncio.sleep(0.1)
            sent = sending.result()
        assert worker.returncode == 0, worker.stderr.read().decode()[-2000:]
        deadline = asyncio.get_running_loop().time() + 10
        while keys():  # delivered: both files are deleted
            assert asyncio.get_running_loop().time() < deadline, keys()
            await asyncio.sleep(0.1)
    assert seen and all(re.fullmatch(r"in/[0-9a-f]{32}\.mp4|out/1\.mp4", key) for key in seen), seen
    assert "out/1.mp4" in seen  # the worker, on its own data directory, put the result there
    result = tmp_path / "result.mp4"
    result.write_bytes(sent.params["video"].content)
    assert len(read_video(result)[0]) == 100 and replying_to(message_id)(sent)
    assert not any(path.is_file() for path in (tmp_path / "worker-data").rglob("*.mp4"))  # nothing left behind
