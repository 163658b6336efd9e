"""The real discord.py client against a fake Discord over real HTTP and a real websocket
(tests/fakes/discord_api.py): what dpytest, which replaces discord.py's HTTP client and gateway,
cannot show. A gateway connection that dies is resumed; one that ends for good stops the service
with exit code 1 (so its supervisor restarts it). Failed sends become the typed delivery errors
the worker acts on: 429 -> retry after N s, 413 -> too large, 5xx -> transient, no permission or
no channel -> gone; a deleted status message is posted again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest

from bot.__main__ import serve
from bot.config import Settings
from bot.discord_adapter import MAX_RATELIMIT_WAIT_S, DiscordAdapter
from bot.service import ChatService
from bot.platform import DeliveryError, RecipientGoneError, RetryAfterError, TooLargeError, TransientError
from storage import SqliteJobQueue
from tests.bot.replier_stubs import VIDEO, JobStub, result_file
from tests.fakes.discord_api import ENTITY_TOO_LARGE, MISSING_ACCESS, MISSING_PERMISSIONS, FakeDiscord

USER = 4242


#: A job in a channel given by id, from the fake user.
DiscordJob = functools.partial(JobStub, platform="discord", user_id=str(USER))


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        server.point_discord_py_here(monkeypatch)
        yield server


@pytest.fixture
def settings(fake: FakeDiscord, tmp_path: Path) -> Settings:
    return Settings(_env_file=None, DISCORD_TOKEN=fake.token, data_dir=tmp_path / "data", default_model="blend")


async def wait_for(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_dropped_gateway_is_resumed_and_one_that_ends_for_good_exits_1(fake, settings, caplog):
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()
    service = asyncio.create_task(serve(settings, stop))
    try:
        await wait_for(lambda: "discord adapter started" in caplog.text or service.done())
        assert not service.done() and fake.identifies == 1 and {c["name"] for c in fake.commands} >= {"fps"}
        await fake.drop_gateway(4000)  # "unknown error": resumable
        await fake.wait_for_session(identifies=1, resumes=1)
        await asyncio.sleep(0.2)
        assert not service.done()  # resumed, still serving
        await fake.drop_gateway(4004)  # "authentication failed": discord.py gives up for good
        code = await asyncio.wait_for(service, 15)
    finally:
        stop.set()
        if not service.done():
            await asyncio.wait_for(service, 15)
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("gateway connection ended for good" in message for message in errors), errors
    assert any("discord connection lost for good" in message for message in errors), errors


async def test_a_service_stopped_on_purpose_exits_0(fake, settings, caplog):
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()
    service = asyncio.create_task(serve(settings, stop))
    await wait_for(lambda: "discord adapter started" in caplog.text or service.done())
    stop.set()
    assert await asyncio.wait_for(service, 15) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
async def adapter(fake: FakeDiscord, settings: Settings) -> AsyncIterator[DiscordAdapter]:
    """Logged in over REST (sending needs no gateway session), on an empty queue."""
    async with SqliteJobQueue.open(settings.data_dir / "queue.db") as queue:
        adapter = DiscordAdapter(settings, service=ChatService(queue, settings))
        await adapter.client.login(fake.token)
        try:
            yield adapter
        finally:
            await adapter.client.close()


@pytest.fixture
def result(tmp_path: Path) -> Path:
    return result_file(tmp_path, 4096)


async def test_a_long_rate_limit_is_the_workers_to_wait(fake, adapter, result):
    dm = fake.add_dm(USER)
    fake.fail("POST", f"/channels/{dm}/messages", 429, message="You are being rate limited.",
              retry_after=MAX_RATELIMIT_WAIT_S * 4)
    with pytest.raises(RetryAfterError) as raised:
        await adapter.deliver(DiscordJob(str(dm)), result, VIDEO)
    assert raised.value.retry_after_s == MAX_RATELIMIT_WAIT_S * 4
    assert [r.status for r in fake.requests_to("POST", f"/channels/{dm}/messages")] == [429]  # no retry here
    sent_id = await adapter.deliver(DiscordJob(str(dm)), result, VIDEO)  # the worker's next try
    (message,) = fake.messages[dm].values()
    assert message["id"] == sent_id and message["attachments"]


async def test_a_short_rate_limit_is_sat_out_by_discord_py(fake, adapter, result):
    dm = fake.add_dm(USER)
    fake.fail("POST", f"/channels/{dm}/messages", 429, message="You are being rate limited.", retry_after=0.1)
    await adapter.deliver(DiscordJob(str(dm)), result, VIDEO)
    assert [r.status for r in fake.requests_to("POST", f"/channels/{dm}/messages")] == [429, 200]


async def test_a_file_discord_refuses_as_too_large(fake, adapter, result):
    dm = fake.add_dm(USER)
    fake.fail("POST", f"/channels/{dm}/messages", 413, code=ENTITY_TOO_LARGE, message="Request entity too large")
    with pytest.raises(TooLargeError):
        await adapter.deliver(DiscordJob(str(dm)), result, VIDEO)


async def test_a_server_error_is_transient(fake, adapter, result):
    dm = fake.add_dm(USER)
    fake.fail("POST", f"/channels/{dm}/messages", 503, message="Service Unavailable")
    with pytest.raises(TransientError) as raised:
        await adapter.deliver(DiscordJob(str(dm)), result, VIDEO)
    assert isinstance(raised.value.__cause__, discord.DiscordServerError)


@pytest.mark.parametrize(("code", "message"), [(MISSING_PERMISSIONS, "Missing Permissions"),
                                               (MISSING_ACCESS, "Missing Access"),
                                               (50007, "Cannot send messages to this user")])
async def test_a_channel_the_bot_may_no_longer_post_in_is_gone(fake, adapter, result, caplog, code, message):
    dm = fake.add_dm(USER)
    fake.fail("POST", f"/channels/{dm}/messages", 403, code=code, message=message, times=3)
    with pytest.raises(RecipientGoneError):
        await adapter.deliver(DiscordJob(str(dm)), result, VIDEO)
    with pytest.raises(RecipientGoneError):
        await adapter.send_status(DiscordJob(str(dm)), "Smoothing… 50%")
    with caplog.at_level(logging.WARNING):
        await adapter.send_error(DiscordJob(str(dm)), "Sorry, that failed.")  # nobody can be told: logged only
    assert "cannot be reported" in caplog.text


async def test_a_deleted_channel_is_gone(fake, adapter, result):
    dm = fake.add_dm(USER)
    status = await adapter.send_status(DiscordJob(str(dm)), "Queued — position 1")
    fake.remove_channel(dm)
    adapter.client._connection._private_channels.clear()  # as Discord's CHANNEL_DELETE event would
    with pytest.raises(RecipientGoneError):
        await adapter.send_status(DiscordJob(str(dm), status_message_id=status), "Smoothing… 10%")
    with pytest.raises(RecipientGoneError):
        await adapter.deliver(DiscordJob(str(dm)), result, VIDEO)


async def test_a_deleted_status_message_is_posted_again(fake, adapter):
    dm = fake.add_dm(USER)
    status = await adapter.send_status(DiscordJob(str(dm)), "Queued — position 1")
    assert await adapter.send_status(DiscordJob(str(dm), status_message_id=status), "Smoothing… 10%") is None
    assert fake.messages[dm][int(status)]["content"] == "Smoothing… 10%"
    del fake.messages[dm][int(status)]  # the user deleted it
    again = await adapter.send_status(DiscordJob(str(dm), status_message_id=status), "Smoothing… 20%")
    assert again is not None and again != status
    assert fake.messages[dm][int(again)]["content"] == "Smoothing… 20%"
    patches = fake.requests_to("PATCH", f"/channels/{dm}/messages/{status}")
    assert [r.status for r in patches] == [200, 404]


async def test_another_refusal_is_not_retried(fake, adapter, result):
    dm = fake.add_dm(USER)
    fake.fail("POST", f"/channels/{dm}/messages", 400, code=50035, message="Invalid Form Body")
    with pytest.raises(DeliveryError) as raised:
        await adapter.deliver(DiscordJob(str(dm)), result, VIDEO)
    assert not raised.value.transient and type(raised.value) is DeliveryError
