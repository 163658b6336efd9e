"""Telegram polling with two real front-end processes (python -m bot --role frontend) on the test
PostgreSQL and the fake Bot API: one polls, the other stands by; SIGKILL the one that polls and the standby takes over;
the update the dead one had fetched but not confirmed is sent again, and the idempotent enqueue drops it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg

from tests.bot.test_telegram import add_clip, replying_to, tg  # noqa: F401 (fixture)
from tests.fakes import FakeTelegram
from tests.media import make_testsrc

ROOT = Path(__file__).resolve().parents[2]
HOLDING = "this front-end holds the polling lock"
#: The front-ends run no worker: the test is about who polls (jobs stay queued; their delivery is
#: tests/bot/test_roles.py's business).


class FrontEnd:
    """One ``python -m bot`` process; its log goes to a file the test reads."""

    def __init__(self, name: str, tg: FakeTelegram, tmp_path: Path, queue_url: str) -> None:
        self.name = name
        self.log = tmp_path / f"{name}.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("SMOOTHBOT_")} | {
            "PYTHONPATH": str(ROOT), "TELEGRAM_TOKEN": tg.token, "SMOOTHBOT_TELEGRAM_BASE_URL": tg.base_url,
            "SMOOTHBOT_TELEGRAM_BASE_FILE_URL": tg.base_file_url, "SMOOTHBOT_QUEUE_URL": queue_url,
            "SMOOTHBOT_DATA_DIR": str(tmp_path / "data"),  # shared, as a volume both machines mount
            "SMOOTHBOT_LEASE_SECONDS": "5",
            "SMOOTHBOT_TELEGRAM_STANDBY_RETRY_S": "0.2",
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "bot", "--role", "frontend"], cwd=tmp_path,
                                            env=env, stdout=subprocess.DEVNULL, stderr=log)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def polls(self) -> bool:
        return HOLDING in self.text()

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


async def until(condition, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None


async def jobs_for(queue_url: str, message_id: int) -> int:
    conn = await asyncpg.connect(queue_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM jobs WHERE platform = 'telegram' AND message_id = $1",
                                   str(message_id))
    finally:
        await conn.close()


async def test_the_standby_takes_over_polling_when_the_holder_is_killed(tg, tmp_path, postgres_url):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=0.5)
    first = FrontEnd("first", tg, tmp_path, postgres_url)
    second: FrontEnd | None = None
    try:
        await until(first.polls, 60, "the first front-end polls")
        await tg.wait_until_polling(timeout=15)
        second = FrontEnd("second", tg, tmp_path, postgres_url)
        await until(lambda: "waiting for the polling lock" in second.text(), 60, "the second front-end stands by")
        await asyncio.sleep(1.0)  # a standby that wrongly polled would show in the fake's calls by now
        assert not second.polls()
        assert [call for call in tg.calls_to("getUpdates") if call.status == 409] == []  # no second poller

        # The holder fetches a video, enqueues it and answers, but is killed before its next poll
        # confirms the update (that poll is held up at the server), so Telegram sends it again.
        tg.delay("getUpdates", 12)
        message_id = tg.send_user_message(42, 42, video=add_clip(tg, clip))
        queued = await tg.wait_for("sendMessage", replying_to(message_id), timeout=30)
        assert queued.params["text"] == "Queued — position 1"
        first.stop(signal.SIGKILL)
        assert tg.pending_updates == 1  # fetched, never confirmed

        await until(second.polls, 30, "the standby takes over polling")
        await until(lambda: tg.pending_updates == 0, 30, "the new holder fetches and confirms the update")
        # A new message after the take-over is answered by the new holder.
        hello = tg.send_user_message(43, 43, text="/start")
        await tg.wait_for("sendMessage", replying_to(hello), timeout=30)
        assert await jobs_for(postgres_url, message_id) == 1  # the re-delivered update made no second job
        answers = [call for call in tg.calls_to("sendMessage")
                   if call.params["chat_id"] == 42 and replying_to(message_id)(call)]
        assert len(answers) == 1  # and no second "Queued"
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            second.stop()
    assert tg.token not in first.text() + (second.text() if second else "")  # never in the logs


async def test_a_poller_that_loses_its_database_connection_stops_polling_and_takes_the_lock_again(
        tg, tmp_path, postgres_url, caplog):
    """In-process: serve() on PostgreSQL polls under the lock; the server ends the lock's session (a
    restart, a network cut): polling stops, and once the lock is taken again polling resumes."""
    import logging

    from bot.__main__ import serve
    from storage.exclusive import HOLD_LOCK_SPACE
    from tests.bot.test_telegram import bot_settings

    caplog.set_level(logging.INFO, logger="bot.telegram_failover")
    settings = bot_settings(tg, tmp_path, queue_url=postgres_url, telegram_standby_retry_s=0.2)
    stop = asyncio.Event()
    service = asyncio.create_task(serve(settings, stop))
    try:
        await tg.wait_until_polling(timeout=30)
        conn = await asyncpg.connect(postgres_url)
        try:
            holder = await conn.fetchval("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 "
                                         "AND granted", HOLD_LOCK_SPACE)
            assert holder is not None
            await conn.fetchval("SELECT pg_terminate_backend($1)", holder)
        finally:
            await conn.close()

        def said(text: str) -> int:
            return sum(text in record.getMessage() for record in caplog.records)

        await until(lambda: said("polling lock was lost") == 1, 15, "the lost lock is noticed")
        await until(lambda: said("holds the polling lock") == 2, 15, "the lock is taken again")
        hello = tg.send_user_message(44, 44, text="/start")
        await tg.wait_for("sendMessage", replying_to(hello), timeout=30)
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)
