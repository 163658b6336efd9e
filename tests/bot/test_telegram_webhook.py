"""Webhook mode (SMOOTHBOT_TELEGRAM_WEBHOOK_URL + secret): PTB's webhook server in python -m bot's
serve(); the fake Telegram sets the webhook and POSTs updates the way Telegram does."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import ValidationError

from bot.__main__ import serve
from bot.config import Settings, setting_error
from storage import SqliteJobQueue
from tests.bot.test_telegram import JOB_TIMEOUT, add_clip, bot_settings, replying_to, tg  # noqa: F401 (fixture)
from tests.media import make_testsrc
from tests.storage.servers import free_port

SECRET = "s3cret-Token_1"


async def test_an_update_posted_with_the_secret_becomes_a_job_and_others_are_refused(tg, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    settings = bot_settings(tg, tmp_path, telegram_webhook_url=url, telegram_webhook_secret=SECRET,
                            telegram_webhook_port=port)
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=1)
    stop = asyncio.Event()
    service = asyncio.create_task(serve(settings, stop))
    try:
        async with asyncio.timeout(15):
            while tg.webhook is None:
                await asyncio.sleep(0.05)
        assert tg.webhook == {"url": url, "secret_token": SECRET, "allowed_updates": ["message", "callback_query"]}
        message_id = tg.send_user_message(42, 42, video=add_clip(tg, clip), caption="/fps 50")

        # Anyone else who finds the URL: a wrong secret, no secret at all.
        assert await tg.push_updates(secret_token="not-the-secret") == [403]
        async with httpx.AsyncClient() as client:
            update = {"update_id": 999, "message": {"message_id": 5, "date": 0, "chat": {"id": 42, "type": "private"},
                                                    "from": {"id": 42, "is_bot": False, "first_name": "x"},
                                                    "text": "/start"}}
            assert (await client.post(url, json=update)).status_code == 403
        await asyncio.sleep(0.3)
        async with SqliteJobQueue.open(settings.database) as queue:
            assert await queue.jobs_for_user("telegram", 42, 42, include_finished=True) == []
        assert tg.sent_messages(42) == []

        # Telegram itself, with the secret.
        assert await tg.push_updates() == [200]
        queued = await tg.wait_for("sendMessage", replying_to(message_id), timeout=10)
        assert queued.params["text"] == "Queued — position 1"
        sent = await tg.wait_for("sendVideo", lambda call: call.ok, timeout=JOB_TIMEOUT)
        assert replying_to(message_id)(sent)
        async with SqliteJobQueue.open(settings.database) as queue:
            (job,) = await queue.jobs_for_user("telegram", 42, 42, include_finished=True)
        assert job.message_id == str(message_id)
        assert tg.calls_to("getUpdates") == []  # no polling beside the webhook
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)


def test_a_webhook_url_without_a_secret_is_refused(monkeypatch):
    monkeypatch.setenv("SMOOTHBOT_TELEGRAM_WEBHOOK_URL", "https://bot.example.org/telegram")
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)
    assert setting_error(refused.value) == (
        "bad settings: SMOOTHBOT_TELEGRAM_WEBHOOK_URL needs SMOOTHBOT_TELEGRAM_WEBHOOK_SECRET, so that only "
        "Telegram can post updates")
    monkeypatch.setenv("SMOOTHBOT_TELEGRAM_WEBHOOK_SECRET", "has spaces")
    with pytest.raises(ValidationError, match="1 to 256 characters"):
        Settings(_env_file=None)
