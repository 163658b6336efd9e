"""How the Telegram adapter reports failed sends to the worker: the real python-telegram-bot client
against the fake Bot API over HTTP, with the fake's flood waits, blocked users, stalls and errors.

The adapter never waits or retries itself (the worker does, by the kind of error); it only says
which kind of failure it was: retry after N s, transient, too large, recipient gone, or refused.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.config import Settings
from bot.platform import (DeliveryError, RecipientGoneError, RetryAfterError, TooLargeError, TransientError,
                          error_kind)
from bot.service import ChatService
from bot.telegram_adapter import TelegramAdapter
from storage import SqliteJobQueue
from tests.bot.replier_stubs import VIDEO, JobStub, result_file
from tests.fakes import FakeTelegram

CHAT = 42
#: Short timeouts so that a stalled server shows up quickly.
READ_TIMEOUT_S = 0.5


#: The job whose result goes to the fake user's chat, replying to their message 1.
TelegramJob = functools.partial(JobStub, chat_id=str(CHAT), platform="telegram", user_id=str(CHAT))


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(upload_limit=50_000) as fake:
        yield fake


@pytest.fixture
async def adapter(tg: FakeTelegram, tmp_path: Path) -> AsyncIterator[TelegramAdapter]:
    settings = Settings(_env_file=None, TELEGRAM_TOKEN=tg.token, telegram_base_url=tg.base_url,
                        telegram_base_file_url=tg.base_file_url, data_dir=tmp_path / "data",
                        telegram_read_timeout_s=READ_TIMEOUT_S, telegram_write_timeout_s=READ_TIMEOUT_S)
    # A real service over an empty queue: the stub jobs are in none, so status messages get no buttons.
    async with SqliteJobQueue.open(tmp_path / "queue.sqlite3") as queue:
        adapter = TelegramAdapter(settings, service=ChatService(queue, settings))
        await adapter.app.initialize()  # getMe, as at start; no polling needed to send
        tg.send_user_message(CHAT, CHAT, text="hello")  # the chat exists, with the user's message 1
        try:
            yield adapter
        finally:
            await adapter.app.shutdown()


@pytest.fixture
def result(tmp_path: Path) -> Path:
    return result_file(tmp_path, 10_000)


async def deliver_fails(adapter: TelegramAdapter, path: Path) -> DeliveryError:
    started = time.monotonic()
    with pytest.raises(DeliveryError) as raised:
        await adapter.deliver(TelegramJob(), path, VIDEO)
    assert time.monotonic() - started < 5 * READ_TIMEOUT_S  # no sleeping or retrying in the adapter
    return raised.value


async def test_a_flood_wait_on_the_upload_asks_the_worker_to_wait_that_long(tg, adapter, result):
    tg.flood_wait("sendVideo", retry_after=17)
    error = await deliver_fails(adapter, result)
    assert isinstance(error, RetryAfterError) and error.retry_after_s == 17 and error_kind(error) == "retry_after"
    assert isinstance(error.__cause__, RetryAfter)
    assert [call.status for call in tg.calls_to("sendVideo")] == [429]  # tried once: the worker waits
    assert await adapter.deliver(TelegramJob(), result, VIDEO)  # the worker's next try goes through


async def test_a_flood_wait_on_a_status_edit_is_reported_too(tg, adapter):
    status = await adapter.send_status(TelegramJob(), "Queued — position 1")
    tg.flood_wait("editMessageText", retry_after=5)
    with pytest.raises(RetryAfterError) as raised:
        await adapter.send_status(TelegramJob(status_message_id=status), "Smoothing… 10%")
    assert raised.value.retry_after_s == 5
    assert not tg.calls_to("editMessageText")[-1].ok and len(tg.calls_to("sendMessage")) == 1  # no new message
    assert await adapter.send_status(TelegramJob(status_message_id=status), "Smoothing… 10%") is None
    assert tg.messages[CHAT][int(status)]["text"] == "Smoothing… 10%"


async def test_a_user_who_blocked_the_bot_is_gone(tg, adapter, result, caplog):
    tg.block(CHAT)
    error = await deliver_fails(adapter, result)
    assert isinstance(error, RecipientGoneError) and error_kind(error) == "gone" and not error.transient
    assert isinstance(error.__cause__, Forbidden)
    with pytest.raises(RecipientGoneError):
        await adapter.send_status(TelegramJob(), "Smoothing… 50%")
    with caplog.at_level(logging.WARNING):
        await adapter.send_error(TelegramJob(), "Sorry, that failed.")  # nobody can be told: logged, not raised
    assert "cannot be reported" in caplog.text


async def test_a_chat_that_no_longer_exists_is_gone(tg, adapter, result):
    job = TelegramJob(chat_id="-1009999")  # never seen by the fake: "Bad Request: chat not found"
    with pytest.raises(RecipientGoneError) as raised:
        await adapter.deliver(job, result, VIDEO)
    assert isinstance(raised.value.__cause__, BadRequest)


async def test_a_stalled_upload_times_out_as_transient(tg, adapter, result):
    tg.delay("sendVideo", 4 * READ_TIMEOUT_S)
    error = await deliver_fails(adapter, result)
    assert isinstance(error, TransientError) and error.transient and isinstance(error.__cause__, TimedOut)


@pytest.mark.parametrize(("status", "description"), [(500, "Internal Server Error"), (502, "Bad Gateway"),
                                                     (503, "Service Unavailable")])
async def test_server_errors_during_upload_are_transient(tg, adapter, result, status, description):
    tg.fail("sendVideo", status, description)
    error = await deliver_fails(adapter, result)
    assert isinstance(error, TransientError) and isinstance(error.__cause__, NetworkError)
    assert [call.status for call in tg.calls_to("sendVideo")] == [status]


async def test_a_file_over_the_servers_limit_is_too_large(tg, adapter, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 60_000)  # over this fake server's 50 kB upload limit: a real 413
    error = await deliver_fails(adapter, big)
    assert isinstance(error, TooLargeError) and error_kind(error) == "too_large" and not error.transient
    assert [call.status for call in tg.calls_to("sendVideo")] == [413]


async def test_another_refusal_is_not_retried(tg, adapter, result):
    tg.fail("sendVideo", 400, "Bad Request: wrong type of the web page content")
    error = await deliver_fails(adapter, result)
    assert type(error) is DeliveryError and error_kind(error) == "refused"


async def test_a_deleted_status_message_is_posted_again(tg, adapter):
    status = await adapter.send_status(TelegramJob(), "Queued — position 1")
    del tg.messages[CHAT][int(status)]  # the user deleted it
    again = await adapter.send_status(TelegramJob(status_message_id=status), "Smoothing… 20%")
    assert again is not None and again != status
    assert tg.messages[CHAT][int(again)]["text"] == "Smoothing… 20%"
    assert await adapter.send_status(TelegramJob(status_message_id=again), "Smoothing… 20%") is None  # not modified
