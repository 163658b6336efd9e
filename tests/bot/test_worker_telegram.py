"""The failure paths of delivery end to end: the real service and PTB client against the fake Bot API
(flood waits, 5xx, a blocked user, a file refused as too large), and a real ``python -m bot``
process stopped with SIGTERM in the middle of a job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import courier as courier_module
from bot.courier import GONE_TEXT, SHUTDOWN_TEXT
from storage import JobState, SqliteJobQueue
from tests.bot.test_telegram import add_clip, bot_settings, replying_to, running_bot, start_bot_process
from tests.fakes import FakeTelegram
from tests.media import make_testsrc, read_video

JOB_TIMEOUT = 60
#: SIGTERM to exit: the running engine is stopped at its next frame or ffmpeg poll, the job handed back.
SHUTDOWN_BOUND_S = 5.0


@pytest.fixture
def quick_retries(monkeypatch):
    """The courier's own pause between retries, short: a flood wait must still be sat out in full."""
    monkeypatch.setattr(courier_module, "DELIVERY_RETRY_PAUSE_S", 0.1)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


async def finished_job(database: Path, job_id: int = 1):
    """The job once the worker is done with it (done, or failed and reported), read from the queue."""
    async with SqliteJobQueue.open(database) as queue:
        deadline = time.monotonic() + JOB_TIMEOUT
        while not ((job := await queue.get(job_id)) is not None and job.state.is_finished and job.delivered):
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.05)
        return job


async def test_a_flood_wait_on_the_upload_is_sat_out_and_the_video_sent_once(tg, tmp_path, quick_retries):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    tg.flood_wait("sendVideo", retry_after=1)
    settings = bot_settings(tg, tmp_path)
    async with running_bot(tg, settings):
        message_id = tg.send_user_message(4, 4, video=add_clip(tg, clip))
        job = await finished_job(settings.database)
    refused, sent = tg.calls_to("sendVideo")
    assert refused.status == 429 and sent.ok and replying_to(message_id)(sent)
    assert sent.at - refused.at >= 1.0  # as long as Telegram asked
    assert job.state == JobState.DONE


async def test_a_flood_wait_on_a_status_edit_never_fails_the_job(tg, tmp_path, caplog):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    tg.flood_wait("editMessageText", retry_after=5, times=3)
    settings = bot_settings(tg, tmp_path)
    async with running_bot(tg, settings):
        tg.send_user_message(4, 4, video=add_clip(tg, clip))
        job = await finished_job(settings.database)
    assert job.state == JobState.DONE and len([c for c in tg.calls_to("sendVideo") if c.ok]) == 1
    flooded = [r for r in caplog.records if "status update failed" in r.getMessage()]
    assert flooded and all(r.levelno == logging.WARNING for r in flooded)


async def test_server_errors_during_the_upload_are_retried(tg, tmp_path, quick_retries):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    tg.fail("sendVideo", 502, "Bad Gateway", times=2)
    settings = bot_settings(tg, tmp_path)
    async with running_bot(tg, settings):
        tg.send_user_message(4, 4, video=add_clip(tg, clip))
        job = await finished_job(settings.database)
    attempts = tg.calls_to("sendVideo")
    assert [c.status for c in attempts] == [502, 502, 200]
    assert attempts[2].at - attempts[1].at >= 0.2 and attempts[1].at - attempts[0].at >= 0.1  # growing pauses
    assert job.state == JobState.DONE


async def test_a_user_who_blocked_the_bot_is_given_up_at_once(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    settings = bot_settings(tg, tmp_path)
    async with running_bot(tg, settings):
        message_id = tg.send_user_message(4, 4, video=add_clip(tg, clip))
        await tg.wait_for("sendMessage", replying_to(message_id), timeout=10)
        tg.block(4)
        job = await finished_job(settings.database)
        calls_then = len(tg.calls)
        async with SqliteJobQueue.open(settings.database) as queue:
            assert await queue.unreported_failures() == []  # nothing left to retry
    assert job.state == JobState.FAILED and job.error == GONE_TEXT
    assert [c.status for c in tg.calls_to("sendVideo")] == [403]
    assert [c for c in tg.calls[calls_then:] if c.method != "getUpdates"] == []


async def test_a_result_refused_as_too_large_is_refitted_smaller(tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", size="320x240", seconds=1,
                        codec_args=("-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"))
    async with FakeTelegram(upload_limit=45_000) as tg:  # the server takes less than the bot was told
        settings = bot_settings(tg, tmp_path, telegram_upload_limit=60_000)
        async with running_bot(tg, settings):
            tg.send_user_message(9, 9, video=add_clip(tg, clip))
            job = await finished_job(settings.database)
    refused, sent = tg.calls_to("sendVideo")
    assert refused.status == 413 and sent.ok and job.state == JobState.DONE
    assert len(sent.params["video"].content) <= 45_000
    result = tmp_path / "result.mp4"
    result.write_bytes(sent.params["video"].content)
    assert len(read_video(result)[0]) == 50  # the whole second at 2x, smaller


def job_row(database: Path, job_id: int = 1) -> sqlite3.Row:
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()


async def test_sigterm_mid_job_hands_it_back_and_a_restart_delivers_it_once(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", size="640x480", fps="25", seconds=6)
    first = start_bot_process(tg, tmp_path)
    try:
        message_id = tg.send_user_message(8, 8, video=add_clip(tg, clip), caption="/fps 100")
        queued = await tg.wait_for("sendMessage", replying_to(message_id), timeout=30)
        await tg.wait_for("editMessageText", lambda c: c.params["text"].startswith("Smoothing… ")
                          and c.params["text"] != "Smoothing… 0%", timeout=JOB_TIMEOUT)
        running = job_row(tmp_path / "data" / "smoothbot.sqlite3")
        assert running["state"] == "running" and running["attempts"] == 1
        asked = time.monotonic()
        first.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(first.communicate, timeout=30)
        took = time.monotonic() - asked
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, stderr.decode()[-2000:]
    assert took < SHUTDOWN_BOUND_S, f"exit took {took:.1f} s"
    held = job_row(tmp_path / "data" / "smoothbot.sqlite3")
    assert held["state"] == "queued" and held["attempts"] == 0 and held["lease_owner"] is None
    assert tg.messages[8][queued.result["message_id"]]["text"] == SHUTDOWN_TEXT
    assert not tg.calls_to("sendVideo")
    data = tmp_path / "data"
    half_made = [p for folder in ("results", "work", "out") for p in (data / folder).rglob("*") if p.is_file()]
    assert half_made == []
    assert [p.parent.name for p in (data / "in").rglob("*") if p.is_file()] == ["in"]  # the input waits in the store

    second = start_bot_process(tg, tmp_path)
    try:
        job = await finished_job(tmp_path / "data" / "smoothbot.sqlite3")
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.communicate, timeout=30)
    assert second.returncode == 0
    sent = [c for c in tg.calls_to("sendVideo") if c.ok]
    assert len(sent) == 1 and replying_to(message_id)(sent[0]) and job.state == JobState.DONE
    assert job.attempts == 1  # the stopped run did not count
