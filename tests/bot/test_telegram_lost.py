"""The real serve() and python-telegram-bot polling a fake Bot API over HTTP: polling that has ended
for good (token revoked, another instance holding the token) stops the service with exit code 1, so
its supervisor restarts it, instead of leaving it up but deaf; errors PTB retries (5xx) change nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import telegram_adapter
from bot.__main__ import serve
from bot.config import Settings
from tests.fakes import FakeTelegram
from tests.fakes.telegram_api import GET_UPDATES_CONFLICT

#: "Within a few seconds" of the token's revocation.
LOST_WITHIN_S = 5


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def settings(tg: FakeTelegram, tmp_path: Path) -> Settings:
    return Settings(_env_file=None, TELEGRAM_TOKEN=tg.token, telegram_base_url=tg.base_url,
                    telegram_base_file_url=tg.base_file_url, data_dir=tmp_path / "data", default_model="blend")


@contextlib.asynccontextmanager
async def serving(tg: FakeTelegram, settings: Settings) -> AsyncIterator[asyncio.Task]:
    stop = asyncio.Event()
    service = asyncio.create_task(serve(settings, stop))
    try:
        await tg.wait_until_polling(timeout=15)
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def answers_start(tg: FakeTelegram) -> bool:
    message_id = tg.send_user_message(42, 42, text="/start")
    call = await tg.wait_for("sendMessage", lambda c: (c.params.get("reply_parameters") or {}).get("message_id")
                             == message_id, timeout=15)
    return call.ok


async def test_a_token_revoked_mid_run_exits_1_within_seconds(tg, settings, caplog):
    caplog.set_level(logging.INFO)
    async with serving(tg, settings) as service:
        assert await answers_start(tg)
        tg.revoke_token()
        code = await asyncio.wait_for(service, LOST_WITHIN_S)
    assert code == 1
    assert [c.status for c in tg.calls_to("getUpdates")][-1] == 401
    assert any("Telegram refused the bot token (HTTP 401)" in message for message in errors(caplog)), errors(caplog)
    assert any("telegram connection lost for good" in message for message in errors(caplog)), errors(caplog)
    ours = [record.getMessage() for record in caplog.records if record.name.startswith("bot")]
    assert not any(settings.telegram_token.get_secret_value() in message for message in ours)


async def test_502s_on_get_updates_are_retried_and_the_bot_keeps_serving(tg, settings, caplog):
    caplog.set_level(logging.INFO)
    async with serving(tg, settings) as service:
        tg.fail("getUpdates", 502, "Bad Gateway", times=2)
        tg.send_user_message(42, 42, text="/help")  # ends the waiting poll; the next two answer 502
        async with asyncio.timeout(15):
            while [c.status for c in tg.calls_to("getUpdates")].count(502) < 2:
                await asyncio.sleep(0.05)
        assert await answers_start(tg)  # polling again after PTB's back-off
        assert not service.done()
    assert service.result() == 0
    assert not any("lost for good" in message for message in errors(caplog))


async def test_another_instance_polling_for_good_exits_1(tg, settings, caplog, monkeypatch):
    monkeypatch.setattr(telegram_adapter, "CONFLICT_LOST_AFTER_S", 0.5)
    caplog.set_level(logging.INFO)
    async with serving(tg, settings) as service:
        tg.fail("getUpdates", 409, GET_UPDATES_CONFLICT, times=1000)
        tg.send_user_message(42, 42, text="/help")  # ends the waiting poll; every next one answers 409
        code = await asyncio.wait_for(service, 10)
    assert code == 1
    assert any("HTTP 409 Conflict" in message for message in errors(caplog)), errors(caplog)


async def test_a_conflict_that_clears_is_a_restart_overlap_not_a_loss(tg, settings, caplog):
    caplog.set_level(logging.INFO)
    async with serving(tg, settings) as service:
        tg.fail("getUpdates", 409, GET_UPDATES_CONFLICT, times=2)
        tg.send_user_message(42, 42, text="/help")
        assert await answers_start(tg)
        assert not service.done()
    assert service.result() == 0
