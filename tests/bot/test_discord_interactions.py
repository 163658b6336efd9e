"""Discord's interactions with the real service (python -m bot's serve), the real discord.py client and
the real worker (blend engine), against the fake Discord over HTTP and a websocket
(tests/fakes/discord_api.py): /smooth with an attachment, the "Smooth this video" context menu on
someone's message, the 15-minute interaction token (the bot and the fake share a clock the test moves
on), DMs where the bot cannot post, the status buttons (owner only, still working after a restart)
and the /settings menu.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.__main__ import serve
from bot.config import Settings
from bot.discord_adapter import NO_VIDEO_IN_MESSAGE_TEXT, NOT_YOURS_TEXT, DiscordAdapter
from bot.service import ChatService
from storage import JobState, SqliteJobQueue
from tests.fakes.discord_api import (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, EPHEMERAL, TOKEN_LIFETIME_S,
                                     UPDATE_MESSAGE, FakeDiscord, FakeInteraction, JsonDict)
from tests.media import make_testsrc, read_video

USER, OTHER = 4242, 5151
JOB_TIMEOUT = 90.0
MENU = "Smooth this video"


class Clock:
    """The monotonic clock, plus however far the test moved it on."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skew


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(clock=clock) as server:
        server.point_discord_py_here(monkeypatch)
        yield server


@pytest.fixture
def settings(fake: FakeDiscord, tmp_path: Path) -> Settings:
    return Settings(_env_file=None, DISCORD_TOKEN=fake.token, data_dir=tmp_path / "data", default_model="blend",
                    progress_edit_interval_s=0.1, lease_seconds=30)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=1)


ORIGINAL_START = DiscordAdapter.start


@contextlib.asynccontextmanager
async def serving(settings: Settings, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> AsyncIterator[DiscordAdapter]:
    """``serve`` as python -m bot runs it; yields its Discord adapter once started (on the test's clock)."""
    started: asyncio.Future[DiscordAdapter] = asyncio.get_running_loop().create_future()

    async def start(adapter: DiscordAdapter) -> None:
        adapter.clock = clock
        await ORIGINAL_START(adapter)
        started.set_result(adapter)

    monkeypatch.setattr(DiscordAdapter, "start", start)
    stop = asyncio.Event()
    service = asyncio.create_task(serve(settings, stop))
    try:
        await asyncio.wait([started, service], timeout=20, return_when=asyncio.FIRST_COMPLETED)
        if service.done():
            raise AssertionError(f"the service stopped: {service.result()}")
        yield started.result()
    finally:
        stop.set()
        assert await asyncio.wait_for(service, 30) == 0


async def job(settings: Settings, job_id: int):
    async with SqliteJobQueue.open(settings.database) as queue:
        return await queue.get(job_id)


def custom_ids(message: JsonDict) -> list[str]:
    return [component["custom_id"] for row in message.get("components") or [] for component in row["components"]]


def original_edits(fake: FakeDiscord, interaction: FakeInteraction) -> list[JsonDict]:
    path = f"/webhooks/{fake.application_id}/{interaction.token}/messages/@original"
    return [request.payload for request in fake.requests_to("PATCH", path)]


def results(messages: list[JsonDict]) -> list[JsonDict]:
    """The bot's messages that carry a file."""
    return [message for message in messages if message["attachments"] and message["author"].get("bot")]


def frames_of(fake: FakeDiscord, message: JsonDict, tmp_path: Path) -> int:
    (attachment,) = message["attachments"]
    path = tmp_path / attachment["filename"]
    path.write_bytes(fake.files[int(attachment["id"])])
    return len(read_video(path)[0])


async def test_smooth_with_an_attachment_is_deferred_shown_ephemerally_and_answered_in_public(
        fake, settings, monkeypatch, clock, clip, tmp_path):
    async with serving(settings, monkeypatch, clock):
        _, channel = await fake.add_guild_channel()
        interaction = await fake.slash("smooth", channel, USER, {"video": clip, "fps": 50.0, "loop": True})
        await fake.wait_until(lambda: results(interaction.followups), JOB_TIMEOUT)
        await fake.wait_until(lambda: interaction.content == "Done.")
    assert interaction.callback_type == DEFERRED_CHANNEL_MESSAGE and interaction.ephemeral  # deferred at once
    (result,) = results(interaction.followups)
    assert not result["flags"] & EPHEMERAL  # the result is public ...
    assert result["content"].startswith(f"<@{USER}> 25 → 50 fps, loop, 1.0 s, blend")
    assert result["allowed_mentions"]["users"] == [USER]  # ... and pings only the user who asked
    assert frames_of(fake, result, tmp_path) == 50
    edits = original_edits(fake, interaction)
    # Queued (with its place, unless the worker had already taken it), with Cancel and the place as buttons.
    assert (edits[0]["content"], custom_ids(edits[0])) in [("Queued — position 1", ["smooth:cancel:1", "smooth:where:1"]),
                                                           ("Queued", ["smooth:cancel:1"])]
    smoothing = [edit for edit in edits if edit["content"].startswith("Smoothing…")]
    assert smoothing and all(custom_ids(edit) == ["smooth:cancel:1"] for edit in smoothing)
    assert edits[-1]["content"] == "Done." and custom_ids(edits[-1]) == []  # no buttons once finished
    # Nothing went through the channel with the bot's token: all through the interaction.
    assert not fake.requests_to("POST", f"/channels/{channel}/messages")


async def test_the_content_decides_not_the_file_name(fake, settings, monkeypatch, clock, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is text, not a video" * 40)
    async with serving(settings, monkeypatch, clock):
        _, channel = await fake.add_guild_channel()
        interaction = await fake.slash("smooth", channel, USER, {"video": junk})
        await fake.wait_until(lambda: interaction.content)
    assert interaction.ephemeral
    assert interaction.content == "Not a video file that can be read (unknown, damaged or disallowed format)"
    assert await job(settings, 1) is None  # nothing was queued
    assert not list((settings.data_dir / "inbox").iterdir())  # and no file kept


async def test_the_context_menu_smooths_each_video_of_someone_elses_message(fake, settings, monkeypatch, clock,
                                                                            clip, tmp_path):
    other = make_testsrc(tmp_path / "other.mp4", fps="20", seconds=0.5)
    async with serving(settings, monkeypatch, clock):
        _, channel = await fake.add_guild_channel()
        message = fake.add_message(channel, OTHER, "look", attachments=[clip, other])
        interaction = await fake.message_command(MENU, channel, message, USER)
        await fake.wait_until(lambda: len(results(interaction.followups)) == 2, JOB_TIMEOUT)
        text = fake.add_message(channel, OTHER, "no video here")
        nothing = await fake.message_command(MENU, channel, text, USER)
        await fake.wait_until(lambda: nothing.content)
        nada = await fake.message_command(MENU, channel, text, OTHER, locale="es-419")  # in the user's language
        await fake.wait_until(lambda: nada.content)
    assert interaction.callback_type == DEFERRED_CHANNEL_MESSAGE and interaction.ephemeral
    status_2 = next(m for m in interaction.followups if m["flags"] & EPHEMERAL)  # the second video's status
    assert status_2["content"] == "Done."
    first, second = results(interaction.followups)
    assert all(m["content"].startswith(f"<@{USER}> ") and not m["flags"] & EPHEMERAL for m in (first, second))
    assert {frames_of(fake, first, tmp_path), frames_of(fake, second, tmp_path)} == {50, 20}
    assert nothing.ephemeral and nothing.content == NO_VIDEO_IN_MESSAGE_TEXT
    assert nada.content == "Ese mensaje no tiene ningún vídeo ni GIF adjunto."


async def test_after_15_minutes_progress_and_result_go_to_the_channel(fake, settings, monkeypatch, clock, clip,
                                                                      tmp_path):
    stored = ChatService.set_status_message

    async def queued_then_late(service: ChatService, job_id: int, message_id: str | int) -> None:
        await stored(service, job_id, message_id)
        clock.skew += TOKEN_LIFETIME_S  # the job waits long: the interaction's token runs out

    monkeypatch.setattr(ChatService, "set_status_message", queued_then_late)
    async with serving(settings, monkeypatch, clock):
        _, channel = await fake.add_guild_channel()
        interaction = await fake.slash("smooth", channel, USER, {"video": clip})
        await fake.wait_until(lambda: results(list(fake.messages[channel].values())), JOB_TIMEOUT)
        await fake.wait_until(lambda: any(m["content"] == f"<@{USER}> Done." for m in fake.messages[channel].values()))
    assert interaction.refused == 0  # the bot never used the expired token
    assert [edit["content"] for edit in original_edits(fake, interaction)] == ["Queued — position 1"]
    assert not interaction.followups
    (result,) = results(list(fake.messages[channel].values()))
    assert result["content"].startswith(f"<@{USER}> 25 → 50 fps")
    assert result["allowed_mentions"]["users"] == [USER]
    assert frames_of(fake, result, tmp_path) == 50


async def test_where_the_bot_cannot_post_a_late_result_goes_to_a_dm(fake, settings, monkeypatch, clock, clip,
                                                                    tmp_path):
    """A user-installed app in a server the bot is not in: after the token, only a DM reaches the user."""
    stored = ChatService.set_status_message

    async def queued_then_late(service: ChatService, job_id: int, message_id: str | int) -> None:
        await stored(service, job_id, message_id)
        clock.skew += TOKEN_LIFETIME_S

    monkeypatch.setattr(ChatService, "set_status_message", queued_then_late)
    async with serving(settings, monkeypatch, clock):
        _, channel = await fake.add_guild_channel(bot_member=False)
        interaction = await fake.slash("smooth", channel, USER, {"video": clip}, locale="ru")
        dm = await fake.wait_until(lambda: fake.dm_with(USER))
        await fake.wait_until(lambda: results(list(fake.messages[dm].values())), JOB_TIMEOUT)
        await fake.wait_until(lambda: any(m["content"] == f"<@{USER}> Готово." for m in fake.messages[dm].values()))
    assert interaction.refused == 0
    # The user's Discord language, kept with the job: its status and result speak it, in the DM too.
    assert original_edits(fake, interaction)[0]["content"].startswith("В очереди")
    (result,) = results(list(fake.messages[dm].values()))
    assert frames_of(fake, result, tmp_path) == 50
    assert (await job(settings, 1)).delivered


async def test_a_result_the_interaction_refuses_is_posted_in_the_channel(fake, settings, monkeypatch, clock, clip,
                                                                         tmp_path):
    """A follow-up Discord will not take (a user-installed app's limit of follow-ups, say) is no lost result."""
    stored = ChatService.set_status_message

    async def queued_then_limited(service: ChatService, job_id: int, message_id: str | int) -> None:
        await stored(service, job_id, message_id)
        (token,) = fake.interactions
        fake.fail("POST", f"/webhooks/{fake.application_id}/{token}", 400, message="Too many follow-up messages")

    monkeypatch.setattr(ChatService, "set_status_message", queued_then_limited)
    async with serving(settings, monkeypatch, clock):
        _, channel = await fake.add_guild_channel()
        interaction = await fake.slash("smooth", channel, USER, {"video": clip})
        await fake.wait_until(lambda: results(list(fake.messages[channel].values())), JOB_TIMEOUT)
        await fake.wait_until(lambda: interaction.content == "Done.")  # the status still through the interaction
    (refused,) = [r for r in fake.requests if r.path == f"/webhooks/{fake.application_id}/{interaction.token}"]
    assert refused.status == 400 and not interaction.followups
    (result,) = results(list(fake.messages[channel].values()))
    assert result["content"].startswith(f"<@{USER}> 25 → 50 fps") and frames_of(fake, result, tmp_path) == 50
    assert (await job(settings, 1)).delivered


async def test_status_buttons_work_after_a_restart_for_the_owner_only(fake, settings, monkeypatch, clock, tmp_path):
    long = make_testsrc(tmp_path / "long.mp4", size="640x480", fps="25", seconds=6)
    short = make_testsrc(tmp_path / "short.mp4", seconds=0.4)
    async with serving(settings, monkeypatch, clock):
        _, channel = await fake.add_guild_channel()
        fps = await fake.slash("fps", channel, USER, {"rate": 100.0})  # 600 frames: long enough to press Cancel
        await fake.wait_until(lambda: fps.callbacks)
        message = fake.add_message(channel, OTHER, attachments=[long, short])
        interaction = await fake.message_command(MENU, channel, message, USER)
        await fake.wait_until(lambda: interaction.followups and interaction.content.startswith("Smoothing… ")
                              and interaction.content != "Smoothing… 0%", JOB_TIMEOUT)
        (waiting,) = interaction.followups
        assert waiting["content"] == "Queued — position 1"
        assert custom_ids(waiting) == ["smooth:cancel:2", "smooth:where:2"]
    async with serving(settings, monkeypatch, clock):  # a new process: a new client, the same queue
        place = await fake.press(channel, int(waiting["id"]), "smooth:where:2", USER)
        await fake.wait_until(lambda: place.callbacks)
        cancel_2 = await fake.press(channel, int(waiting["id"]), "smooth:cancel:2", USER)
        await fake.wait_until(lambda: cancel_2.callbacks)
        stranger = await fake.press(channel, int(interaction.original["id"]), "smooth:cancel:1", OTHER)
        await fake.wait_until(lambda: stranger.callbacks)
        assert (await job(settings, 1)).state.is_active  # untouched by the stranger
        cancel_1 = await fake.press(channel, int(interaction.original["id"]), "smooth:cancel:1", USER)
        await fake.wait_until(lambda: cancel_1.callbacks)
        async with SqliteJobQueue.open(settings.database) as queue:
            deadline = time.monotonic() + JOB_TIMEOUT
            while (await queue.get(1)).state != JobState.CANCELLED:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
    place_answer = place.callbacks[0]["data"]  # the place now, for the asker only
    assert (place.callback_type, place_answer["content"], place_answer["flags"]) == (
        CHANNEL_MESSAGE, "Queued — position 1", EPHEMERAL)
    assert cancel_2.callback_type == UPDATE_MESSAGE  # the pressed status message says so, buttons gone
    assert waiting["content"] == "Cancelled. That video was still waiting in the queue." and not custom_ids(waiting)
    assert (await job(settings, 2)).state == JobState.CANCELLED
    # Someone else may not press the asker's buttons: a short answer only they see.
    assert stranger.callback_type == CHANNEL_MESSAGE
    answer = stranger.callbacks[0]["data"]
    assert (answer["content"], answer["flags"]) == (NOT_YOURS_TEXT, EPHEMERAL)
    assert cancel_1.callback_type == UPDATE_MESSAGE
    assert cancel_1.callbacks[0]["data"]["content"].startswith("Stopping.")
    everything = [*interaction.followups, *fake.messages[channel].values()]
    assert not results(everything)  # a cancelled job is never delivered
    # After the restart the token was gone from memory: the status went on in the channel.
    assert any(m["content"] == f"<@{USER}> Cancelled." for m in fake.messages[channel].values())


async def test_the_settings_menu_changes_the_channels_settings(fake, settings, monkeypatch, clock):
    async with serving(settings, monkeypatch, clock):
        _, channel = await fake.add_guild_channel()
        menu = await fake.slash("settings", channel, USER)
        await fake.wait_until(lambda: menu.callbacks)
        assert menu.callback_type == CHANNEL_MESSAGE and menu.ephemeral
        assert "settings:fps" in custom_ids(menu.original) and "settings:loop" in custom_ids(menu.original)
        fps = await fake.press(channel, int(menu.original["id"]), "settings:fps", USER, values=["60"])
        await fake.wait_until(lambda: fps.callbacks)
        loop = await fake.press(channel, int(menu.original["id"]), "settings:loop", USER)
        await fake.wait_until(lambda: loop.callbacks)
    assert fps.callback_type == UPDATE_MESSAGE
    assert fps.callbacks[0]["data"]["content"] == ("Videos in this chat will now be smoothed to 60 fps.\n"
                                                   "Settings for this chat: 60 fps, loop off, MP4, blend")
    assert loop.callbacks[0]["data"]["content"].endswith("Settings for this chat: 60 fps, loop on, MP4, blend")
    chosen = [o for row in loop.callbacks[0]["data"]["components"] for c in row["components"]
              if c["custom_id"] == "settings:fps" for o in c["options"] if o.get("default")]
    assert [option["value"] for option in chosen] == ["60"]  # the redrawn menu shows what is stored
