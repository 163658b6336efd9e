"""The real bot service (python -m bot's serve) with the real discord.py client on dpytest's offline
Discord: attachments in, attachments out, slash commands, errors. The engine runs for real (blend).

dpytest drives message events and attachments; what it lacks is added here in :class:`FakeDiscord`:
a record of each sent message's payload (reply reference, uploaded bytes), edits of a message by
id, and the interaction endpoints that slash-command answers go to (a fake webhook adapter behind
discord.py's own Interaction, CommandTree and InteractionResponse).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import mimetypes
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest
from discord.ext.test import backend, factories
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from bot.__main__ import main, serve
from bot.config import Settings
from bot.discord_adapter import NOT_A_VIDEO_TEXT, VIDEO_FORMATS, DiscordAdapter
from bot.discord_commands import how_to_text
from bot.replies import FAILED_STATUS_TEXT
from bot.service import PRIVATE_CHAT_TEXT
from bot.worker import Worker
from storage import JobState, SqliteJobQueue
from tests.media import make_testsrc, read_video, video_rate

#: Seconds to wait for a whole job (download, engine, upload), and for a quick answer.
JOB_TIMEOUT = 60
ANSWER_TIMEOUT = 10
#: Discord's option types (application command option type) for the values tests pass.
OPTION_TYPES = {str: 3, int: 4, bool: 5, float: 10}
EPHEMERAL = 64
SEND_MESSAGES = discord.Permissions(send_messages=True)


@dataclass
class Sent:
    """A message the bot sent (dpytest keeps the message; this keeps the request's payload too)."""

    id: int
    channel_id: int
    content: str | None
    reply_to: int | None
    files: dict[str, bytes]
    #: The request's allowed_mentions (None: not sent, so Discord would ping whatever the text names).
    allowed_mentions: dict[str, Any] | None = None


@dataclass
class Answer:
    """What the bot answered to one slash command."""

    content: str | None = None
    ephemeral: bool = False
    deferred: bool = False
    payloads: list[dict[str, Any]] = field(default_factory=list)


class FakeInteractionEndpoints(AsyncWebhookAdapter):
    """Discord's interaction callback and webhook endpoints, answered in memory."""

    def __init__(self, fake: FakeDiscord) -> None:
        super().__init__()
        self.fake = fake

    async def request(self, route, session=None, *, payload=None, **_: Any) -> Any:
        answer = self.fake.answers[route.webhook_token]
        answer.payloads.append(payload or {})
        if route.method == "POST" and route.path.endswith("/callback"):
            data = payload.get("data") or {}
            answer.deferred = payload["type"] == 5
            answer.ephemeral = bool(data.get("flags", 0) & EPHEMERAL)
            answer.content = data.get("content")
            return {"interaction": {"id": str(route.webhook_id), "type": 2,
                                    "response_message_loading": answer.deferred,
                                    "response_message_ephemeral": answer.ephemeral}}
        if route.method == "PATCH" and route.path.endswith("/messages/@original"):
            answer.content = payload.get("content")
            channel = self.fake.channel
            return factories.make_message_dict(channel, self.fake.client.user, content=answer.content)
        raise AssertionError(f"unexpected interaction request {route.method} {route.path}")


class FakeDiscord:
    """dpytest's Discord with the bot's client connected to it, plus what dpytest lacks (see module doc)."""

    def __init__(self, adapter: DiscordAdapter) -> None:
        self.adapter = adapter
        self.client = adapter.client
        self.sent: list[Sent] = []
        self.refused = 0  # sends Discord refused (the bot lacks the permission)
        self.edits: list[tuple[int, str]] = []
        self.answers: dict[str, Answer] = {}
        self.tokens = itertools.count(1)

    async def connect(self) -> None:
        """What login and the gateway's READY would do, offline."""
        await self.client._async_setup_hook()
        # dpytest resolves mentions and authors from the client's member cache, which the bot (without
        # the privileged members intent) does not keep; Discord itself sends them in each event.
        intents = self.client._connection._intents
        intents.members = True
        self.client._connection.member_cache_flags = discord.MemberCacheFlags.from_intents(intents)
        mentions = self.client.allowed_mentions
        dpytest.configure(self.client, members=2)
        state = self.client._connection  # dpytest replaced the connection state: attach the command tree again
        state._command_tree = self.adapter.tree
        self.client.allowed_mentions = mentions  # ... and the client's allowed mentions, which it drops
        state.application_id = self.client.user.id

    @property
    def config(self) -> dpytest.RunnerConfig:
        return dpytest.get_config()

    @property
    def channel(self) -> discord.TextChannel:
        return self.config.channels[0]

    def member(self, index: int = 0) -> discord.Member:
        return self.config.members[index]

    # --- what the bot sends ---------------------------------------------------------------------

    async def send_message(self, http: backend.FakeHttp, channel_id: int, params, channel) -> dict[str, Any]:
        """dpytest's send (it reads ``channel`` from its caller's locals), recording payload and bytes."""
        files = {}
        for file in params.files or []:
            files[file.filename] = file.fp.read()
            file.fp.seek(0)
        try:
            data = await ORIGINAL_SEND(http, channel_id, params=params)
        except discord.Forbidden:
            self.refused += 1
            raise
        payload = params.payload  # with files, discord.py sends it as a multipart part instead
        if payload is None:
            payload = json.loads(next(part["value"] for part in params.multipart if part["name"] == "payload_json"))
        reference = payload.get("message_reference") or {}
        self.sent.append(Sent(int(data["id"]), channel_id, payload.get("content"),
                              int(reference["message_id"]) if reference else None, files,
                              payload.get("allowed_mentions")))
        return data

    def edit_by_id(self, channel_id: int, message_id: int, params) -> dict[str, Any]:
        """Discord edits a message by its id; dpytest only edits the Message object it is handed."""
        for data in backend._cur_config.messages.get(channel_id, []):
            if data["id"] == message_id:
                data.update(params.payload)
                self.edits.append((message_id, params.payload.get("content")))
                return data
        raise discord.NotFound(backend.FakeRequest(404, "Not Found"), {"code": 10008, "message": "Unknown Message"})

    def replies_to(self, message_id: int) -> list[Sent]:
        return [sent for sent in self.sent if sent.reply_to == message_id]

    def content_of(self, message_id: int) -> str:
        for data in backend._cur_config.messages[self.channel.id]:
            if data["id"] == message_id:
                return data["content"]
        raise KeyError(message_id)

    async def wait_for(self, what: Callable[[], Any], timeout: float = ANSWER_TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while not (found := what()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; sent: {[(s.content, s.reply_to) for s in self.sent]}")
            await asyncio.sleep(0.05)
        return found

    async def wait_for_reply(self, message_id: int, match: Callable[[Sent], bool] = lambda sent: True,
                             timeout: float = ANSWER_TIMEOUT) -> Sent:
        return await self.wait_for(lambda: next((s for s in self.replies_to(message_id) if match(s)), None), timeout)

    # --- what users do --------------------------------------------------------------------------

    async def post(self, content: str, *attachments: Path, member: int = 0,
                   channel: discord.abc.Messageable | None = None, claimed_size: int | None = None) -> discord.Message:
        """A user's message, delivered by dpytest; returns once the bot's handler has run.

        Unlike ``dpytest.message``, attachments carry their size and content type, as Discord's do.
        """
        state = backend.get_state()
        files = [discord.Attachment(state=state, data=factories.make_attachment_dict(
            path.name, claimed_size if claimed_size is not None else path.stat().st_size, path.absolute().as_uri(),
            path.absolute().as_uri(), content_type=mimetypes.guess_type(path.name)[0])) for path in attachments]
        message = backend.make_message(content, self.member(member), channel or self.channel, attachments=files)
        await dpytest.run_all_events()
        return message

    def mention(self, text: str) -> str:
        return f"{self.client.user.mention} {text}"

    async def slash(self, command: str, member: int = 0, **options: Any) -> Answer:
        """Invoke a slash command as Discord's gateway would (INTERACTION_CREATE) and wait for the answer."""
        token = f"interaction-token-{next(self.tokens)}"
        self.answers[token] = answer = Answer()
        user = self.member(member)
        channel = self.channel
        payload = {
            "id": str(factories.make_id()), "application_id": str(self.client.application_id), "type": 2,
            "token": token, "version": 1, "guild_id": str(channel.guild.id), "channel_id": str(channel.id),
            "channel": {"id": str(channel.id), "type": 0, "guild_id": str(channel.guild.id), "name": channel.name},
            "member": {"user": factories.dict_from_user(user._user), "roles": [], "flags": 0, "deaf": False,
                       "mute": False, "joined_at": datetime.now(UTC).isoformat(), "permissions": "3072"},
            "data": {"id": str(factories.make_id()), "name": command, "type": 1,
                     "options": [{"name": key, "type": OPTION_TYPES[type(value)], "value": value}
                                 for key, value in options.items()]},
            "locale": "en-US", "guild_locale": "en-US", "app_permissions": "3072", "entitlements": [],
            "authorizing_integration_owners": {"0": str(channel.guild.id)}, "context": 0,
            "attachment_size_limit": discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES,
        }
        self.client._connection.parse_interaction_create(payload)
        await self.wait_for(lambda: answer.content is not None)
        return answer


ORIGINAL_SEND = backend.FakeHttp.send_message
ORIGINAL_STOP = DiscordAdapter.stop
ORIGINAL_PROCESS_NEXT = Worker.process_next


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(_env_file=None, DISCORD_TOKEN="offline-token", data_dir=tmp_path / "data",
                    default_model="blend", progress_edit_interval_s=0.1, lease_seconds=30)


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                      tmp_path: Path) -> AsyncIterator[FakeDiscord]:
    """``serve`` as ``python -m bot`` runs it, with the Discord adapter connected to dpytest."""
    monkeypatch.chdir(tmp_path)  # dpytest writes every uploaded file into the working directory
    connected: asyncio.Future[FakeDiscord] = asyncio.get_running_loop().create_future()

    async def start_offline(adapter: DiscordAdapter) -> None:
        fake = FakeDiscord(adapter)
        await fake.connect()
        connected.set_result(fake)

    async def stop_offline(adapter: DiscordAdapter) -> None:
        adapter.client.ws = None  # dpytest's websocket has no socket to close
        await ORIGINAL_STOP(adapter)

    async def send_recorded(http, channel_id, *, params):
        return await fake.send_message(http, channel_id, params, channel=sys._getframe(1).f_locals["channel"])

    async def edit_recorded(http, channel_id, message_id, *, params):
        return fake.edit_by_id(channel_id, message_id, params)

    worker_idle = asyncio.Event()

    async def process_next_noted(worker: Worker) -> bool:
        busy = await ORIGINAL_PROCESS_NEXT(worker)
        if not busy:
            worker_idle.set()
        return busy

    monkeypatch.setattr(Worker, "process_next", process_next_noted)
    monkeypatch.setattr(DiscordAdapter, "start", start_offline)
    monkeypatch.setattr(DiscordAdapter, "stop", stop_offline)
    monkeypatch.setattr(backend.FakeHttp, "send_message", send_recorded)
    monkeypatch.setattr(backend.FakeHttp, "edit_message", edit_recorded)
    stop = asyncio.Event()
    service = asyncio.create_task(serve(settings, stop))
    await asyncio.wait([connected, service], timeout=ANSWER_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    if service.done():
        service.result()  # raises what stopped it
    fake = connected.result()
    await asyncio.wait_for(worker_idle.wait(), ANSWER_TIMEOUT)  # serving: the worker found the queue empty
    # Interaction answers go through this adapter; tasks that dispatch interactions inherit it from here.
    async_context.set(FakeInteractionEndpoints(fake))
    try:
        yield fake
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)
        await dpytest.empty_queue()


async def test_video_with_options_is_queued_smoothed_and_sent_back(settings, monkeypatch, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=1, audio=True)
    async with running_bot(settings, monkeypatch, tmp_path) as discord_:
        message = await discord_.post(discord_.mention("smooth /fps 50 /loop"), clip)
        queued = await discord_.wait_for_reply(message.id)
        assert queued.content == "Queued — position 1"
        result = await discord_.wait_for_reply(message.id, lambda sent: bool(sent.files), timeout=JOB_TIMEOUT)
        await discord_.wait_for(lambda: discord_.content_of(queued.id) == "Done.")
    assert result.content.startswith("25 → 50 fps, loop, 1.0 s, blend")
    (name, data), = result.files.items()
    assert name.endswith(".mp4")
    path = tmp_path / "result.mp4"
    path.write_bytes(data)
    times, _ = read_video(path)
    assert len(times) == 50 and video_rate(path) == 50
    assert any(text.startswith("Smoothing…") for message_id, text in discord_.edits if message_id == queued.id)


async def test_wrong_files_and_unaddressed_messages(settings, monkeypatch, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is text, not a video" * 40)
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    async with running_bot(settings, monkeypatch, tmp_path) as discord_:
        ignored = await discord_.post("look at this", clip)  # a server message that does not mention the bot
        text = await discord_.post(discord_.mention("smooth this"), notes)
        assert [sent.content for sent in discord_.replies_to(text.id)] == [NOT_A_VIDEO_TEXT.format(formats=VIDEO_FORMATS)]
        hello = await discord_.post(discord_.mention("hello"))
        assert [sent.content for sent in discord_.replies_to(hello.id)] == [how_to_text()]
        bad = await discord_.post(discord_.mention("smooth"), junk)
        error = await discord_.wait_for_reply(bad.id, lambda sent: "Queued" not in sent.content, timeout=JOB_TIMEOUT)
        assert error.content == "Not a video file that can be read (unknown, damaged or disallowed format)"
        good = await discord_.post(discord_.mention("/fps 50"), clip)  # the bot goes on
        queued = await discord_.wait_for_reply(good.id)
        assert queued.content == "Queued — position 1"
        await discord_.wait_for_reply(good.id, lambda sent: bool(sent.files), timeout=JOB_TIMEOUT)
        assert sum(bool(sent.files) for sent in discord_.replies_to(good.id)) == 1
    assert not discord_.replies_to(ignored.id)


async def test_several_videos_in_one_message_become_one_job_each(settings, monkeypatch, tmp_path):
    first = make_testsrc(tmp_path / "first.mp4", fps="25", seconds=0.4)
    second = make_testsrc(tmp_path / "second.mp4", fps="20", seconds=0.5)
    async with running_bot(settings, monkeypatch, tmp_path) as discord_:
        message = await discord_.post(discord_.mention("smooth /fps 40"), first, second)
        await discord_.wait_for(lambda: sum(bool(sent.files) for sent in discord_.replies_to(message.id)) == 2,
                                timeout=JOB_TIMEOUT)
        answers = [sent for sent in discord_.replies_to(message.id) if not sent.files]
        results = [sent for sent in discord_.replies_to(message.id) if sent.files]
    assert len(answers) == 2 and all(answer.content.startswith("Queued") for answer in answers)  # each answered
    frames = []
    for index, result in enumerate(results):
        (data,) = result.files.values()
        (tmp_path / f"result{index}.mp4").write_bytes(data)
        frames.append(len(read_video(tmp_path / f"result{index}.mp4")[0]))
    assert sorted(frames) == [16, 20]  # 0.4 s and 0.5 s at 40 fps: the caption applies to both
    async with SqliteJobQueue.open(settings.database) as queue:
        assert [(await queue.get(job_id)).message_id for job_id in (1, 2)] == [str(message.id), f"{message.id}.1"]


async def test_too_big_attachment_is_refused_before_download(settings, monkeypatch, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    downloads = []
    monkeypatch.setattr(backend.FakeHttp, "get_from_cdn", lambda http, url: downloads.append(url))
    async with running_bot(settings, monkeypatch, tmp_path) as discord_:
        message = await discord_.post(discord_.mention("smooth"), clip, claimed_size=200 * 1024 * 1024)
        (refusal,) = discord_.replies_to(message.id)
    assert "209.7 MB" in refusal.content and "105 MB" in refusal.content
    assert not downloads


async def test_settings_commands_persist_and_message_options_apply_to_one_video(settings, monkeypatch, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=1)
    async with running_bot(settings, monkeypatch, tmp_path) as discord_:
        fps = await discord_.slash("fps", rate=30.0)
        assert fps.content == "Videos in this chat will now be smoothed to 30 fps." and not fps.ephemeral
        assert "GIF" in (await discord_.slash("gif")).content
        shown = await discord_.slash("settings")
        assert shown.content == "Settings for this chat: 30 fps, loop off, GIF, blend" and shown.ephemeral
        plain = await discord_.post(discord_.mention("smooth"), clip)
        gif = await discord_.wait_for_reply(plain.id, lambda sent: bool(sent.files), timeout=JOB_TIMEOUT)
        once = await discord_.post(discord_.mention("smooth /mp4 /fps 50"), clip)
        mp4 = await discord_.wait_for_reply(once.id, lambda sent: bool(sent.files), timeout=JOB_TIMEOUT)
        after = await discord_.slash("settings")
    assert after.content == shown.content  # the message's options applied to that video only
    (name, data), = gif.files.items()
    assert name.endswith(".gif") and data.startswith(b"GIF89a") and gif.content.startswith("25 → 30 fps")
    (tmp_path / "result.gif").write_bytes(data)
    assert len(read_video(tmp_path / "result.gif")[0]) == 30
    (name, data), = mp4.files.items()
    assert name.endswith(".mp4") and mp4.content.startswith("25 → 50 fps")
    (tmp_path / "result.mp4").write_bytes(data)
    assert len(read_video(tmp_path / "result.mp4")[0]) == 50


async def test_slash_commands_answer_through_discords_interaction_layer(settings, monkeypatch, tmp_path):
    async with running_bot(settings, monkeypatch, tmp_path) as discord_:
        start = await discord_.slash("start")
        assert start.ephemeral and "Send me a video" in start.content and how_to_text() in start.content
        help_ = await discord_.slash("help")
        assert help_.ephemeral and "/fps N" in help_.content and "120 s" in help_.content
        too_fast = await discord_.slash("fps", rate=1000.0)
        assert too_fast.content == "The frame rate must be between 1 and 240 fps."
        assert (await discord_.slash("fps")).content.endswith("twice their frame rate.")
        assert (await discord_.slash("loop")).content.startswith("Loop is on")
        assert (await discord_.slash("model", name="flow")).content == "This chat now uses optical flow."
        assert (await discord_.slash("slowmo", factor=20.0)).content.startswith("Slow motion goes from 2× to 8×")
        slower = await discord_.slash("slowmo", factor=2.5)
        assert slower.content.startswith("Videos in this chat will now play 2.5×")
        split = await discord_.slash("compare")  # the layout may be left out
        assert split.content.startswith("You'll now get before/after videos (moving split)")
        assert (await discord_.slash("compare", layout="off")).content.startswith("Comparison is off")
        assert (await discord_.slash("cuts", mode="fade")).content == "Scene cuts will now get a short cross-fade."
        best = await discord_.slash("quality", level="best")
        assert best.content.startswith("Videos in this chat will now use the best quality: sharper")
        status = await discord_.slash("status", member=1)
        assert status.ephemeral and status.content == "You have no videos here yet. Send one!"
        cancel = await discord_.slash("cancel", member=1)
        assert cancel.ephemeral and cancel.content == "You have no video in the queue, so there is nothing to cancel."
        discord_.adapter.defer_after_s = 0  # a slow answer: deferred, then edited in
        slow = await discord_.slash("status")
        assert slow.deferred and slow.ephemeral
        assert slow.content == "You have no videos here yet. Send one!"
        menu = await discord_.slash("settings")  # the menu: at once, for the asker only
        assert menu.ephemeral and menu.content == ("Settings for this chat: 2× the frame rate, loop on, MP4, "
                                                   "optical flow, 2.5× slow motion, cross-fades at cuts, "
                                                   "best quality (for RIFE only)")
        assert [payload.get("type") for payload in slow.payloads] == [5, None]


async def test_other_channels_are_refused_when_an_allowlist_is_set(settings, monkeypatch, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    private = settings.model_copy(update={"allowed_chat_ids": [1234]})
    downloads = []
    monkeypatch.setattr(backend.FakeHttp, "get_from_cdn", lambda http, url: downloads.append(url))
    async with running_bot(private, monkeypatch, tmp_path) as discord_:
        answers = [await discord_.slash("fps", rate=30.0), await discord_.slash("loop"),
                   await discord_.slash("model", name="flow"), await discord_.slash("settings"),
                   await discord_.slash("status"), await discord_.slash("cancel"), await discord_.slash("help")]
        message = await discord_.post(discord_.mention("smooth /fps 60"), clip)
        hello = await discord_.post(discord_.mention("hello"))
        (refusal,) = discord_.replies_to(message.id)
        (hello_refusal,) = discord_.replies_to(hello.id)
    assert all(answer.content == PRIVATE_CHAT_TEXT and answer.ephemeral for answer in answers)
    assert refusal.content == hello_refusal.content == PRIVATE_CHAT_TEXT
    assert not downloads
    with contextlib.closing(sqlite3.connect(private.database)) as db:
        assert [db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed names)
                for table in ("jobs", "chat_settings", "user_turns")] == [0, 0, 0]
    assert not [path for path in private.data_dir.rglob("*") if path.is_file()
                and not path.name.startswith(private.database.name)]


async def test_no_message_can_mention_anyone_but_the_user_who_asked(settings, monkeypatch, tmp_path):
    """User text quoted back ("“@everyone” is not a frame rate") pings nobody: every send carries
    allowed_mentions with an empty parse list; only results ping the user they reply to."""
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=0.4)
    none = {"parse": []}  # what discord.AllowedMentions.none() sends
    async with running_bot(settings, monkeypatch, tmp_path) as discord_:
        role = discord_.channel.guild.default_role
        injected = ["@everyone", "@here", f"<@&{role.id}>", f"<@{discord_.member(1).id}>"]
        refusals = []
        for text in injected:
            message = await discord_.post(discord_.mention(f"smooth /fps {text}"), clip)
            refusals.append(await discord_.wait_for_reply(message.id))
        slowmo = await discord_.post(discord_.mention("smooth /slowmo @everyone"), clip)
        refusals.append(await discord_.wait_for_reply(slowmo.id))
        hello = await discord_.post(discord_.mention("@everyone hello"))
        refusals.append(await discord_.wait_for_reply(hello.id))
        answer = await discord_.slash("compare", layout="@everyone")
        good = await discord_.post(discord_.mention("smooth"), clip)
        result = await discord_.wait_for_reply(good.id, lambda sent: bool(sent.files), timeout=JOB_TIMEOUT)
    assert [r.content for r in refusals[:2]] == ["“@everyone” is not a frame rate. Try /fps 60.",
                                                 "“@here” is not a frame rate. Try /fps 60."]
    assert all(r.allowed_mentions == none for r in refusals), [r.allowed_mentions for r in refusals]
    assert all(sent.allowed_mentions is not None and sent.allowed_mentions["parse"] == [] for sent in discord_.sent)
    (callback,) = answer.payloads
    assert callback["data"]["allowed_mentions"] == none
    assert result.allowed_mentions == {"parse": [], "replied_user": True}  # the result pings its asker only


async def test_result_in_a_direct_message_is_fitted_to_the_upload_limit(settings, monkeypatch, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", size="320x240", seconds=1,
                        codec_args=("-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"))
    limit = 20_000
    async with running_bot(settings.model_copy(update={"discord_upload_limit": limit}), monkeypatch,
                           tmp_path) as discord_:
        dm = await discord_.member(0).create_dm()
        message = await discord_.post("", clip, channel=dm)  # no mention needed in a DM
        result = await discord_.wait_for_reply(message.id, lambda sent: bool(sent.files), timeout=JOB_TIMEOUT)
    (data,) = result.files.values()
    assert len(data) <= limit and "fit" in result.content


async def test_cancel_stops_the_running_job(settings, monkeypatch, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", size="640x480", fps="25", seconds=6)
    async with running_bot(settings, monkeypatch, tmp_path) as discord_:
        message = await discord_.post(discord_.mention("smooth /fps 100"), clip)
        queued = await discord_.wait_for_reply(message.id)
        await discord_.wait_for(lambda: any(message_id == queued.id and text.startswith("Smoothing… ")
                                            and text != "Smoothing… 0%" for message_id, text in discord_.edits),
                                timeout=JOB_TIMEOUT)
        status = await discord_.slash("status")
        assert status.content.startswith("Your videos:\n#1: Smoothing… ")
        cancel = await discord_.slash("cancel")
        assert cancel.content.startswith("Stopping") and cancel.ephemeral
        await discord_.wait_for(lambda: discord_.content_of(queued.id) == "Cancelled.", timeout=JOB_TIMEOUT)
    assert not any(sent.files for sent in discord_.sent)


async def test_a_channel_the_bot_may_no_longer_post_in_fails_the_job_once(settings, monkeypatch, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", size="320x240", fps="25", seconds=2)
    async with running_bot(settings, monkeypatch, tmp_path) as discord_:
        message = await discord_.post(discord_.mention("smooth"), clip)
        await discord_.wait_for_reply(message.id)
        await discord_.wait_for(lambda: any(text.startswith("Smoothing…") for _, text in discord_.edits))
        everyone = discord_.channel.guild.default_role  # the server takes Send Messages away
        backend.update_role(everyone, permissions=everyone.permissions.value & ~SEND_MESSAGES.value)
        assert not discord_.channel.permissions_for(discord_.channel.guild.me).send_messages
        async with SqliteJobQueue.open(settings.database) as queue:
            deadline = time.monotonic() + JOB_TIMEOUT
            while not ((job := await queue.get(1)).state == JobState.FAILED and job.delivered):
                assert time.monotonic() < deadline, job
                await asyncio.sleep(0.05)
            assert await queue.unreported_failures() == []
        status = await discord_.slash("status")  # answered through the interaction, not the channel
    assert job.error.startswith("I made your video but could not send it")
    assert status.content == f"Your videos:\n#1: {FAILED_STATUS_TEXT}"  # the stored text is not repeated
    assert discord_.refused == 1  # the result, tried once: a gone channel is given up at once, nothing retried
    assert not any(sent.files for sent in discord_.sent)


async def test_slash_commands_are_published_at_login(settings, monkeypatch):
    published = []

    async def bulk_upsert(http, application_id, payload):
        published.extend(payload)
        return []

    monkeypatch.setattr(discord.http.HTTPClient, "bulk_upsert_global_commands", bulk_upsert)
    adapter = DiscordAdapter(settings, service=None)
    adapter.client._connection.application_id = 1
    await adapter.setup_hook()
    commands = {command["name"]: command for command in published}
    assert set(commands) == {"start", "help", "fps", "loop", "gif", "mp4", "slowmo", "compare", "cuts", "quality",
                             "model", "settings", "status", "cancel", "language", "smooth", "Smooth this video"}
    # Usable where the app is installed for a server or by a user, in servers, DMs and group DMs.
    assert all(command["integration_types"] == [0, 1] and command["contexts"] == [0, 1, 2]
               for command in published)
    menu = commands["Smooth this video"]
    assert menu["type"] == 3 and not menu.get("options")  # a message context menu
    smooth = {option["name"]: option for option in commands["smooth"]["options"]}
    assert list(smooth) == ["video", "fps", "loop", "gif", "slowmo", "compare", "quality"]
    assert smooth["video"]["type"] == 11 and smooth["video"]["required"]  # an attachment
    assert [smooth[name]["type"] for name in ("fps", "loop", "gif", "slowmo")] == [10, 5, 5, 10]
    assert 60 in [choice["value"] for choice in smooth["fps"]["choices"]]
    assert [choice["value"] for choice in smooth["quality"]["choices"]] == ["fast", "best"]
    assert [choice["value"] for choice in smooth["compare"]["choices"]] == ["split", "side", "stack"]
    (rate,) = commands["fps"]["options"]
    assert rate["name"] == "rate" and rate["type"] == 10 and not rate["required"]  # a number, may be left empty
    assert [choice["value"] for choice in commands["model"]["options"][0]["choices"]] == ["rife", "flow", "blend"]
    (level,) = commands["quality"]["options"]
    assert level["required"] and [choice["value"] for choice in level["choices"]] == ["fast", "best"]


def test_a_rejected_token_stops_python_m_bot_with_one_line(monkeypatch, tmp_path, capsys):
    async def reject(http, token):
        raise discord.LoginFailure("Improper token has been passed.")

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("DISCORD_TOKEN", "rejected.token.value")
    monkeypatch.setenv("SMOOTHBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(discord.http.HTTPClient, "static_login", reject)
    assert main([]) == 1
    assert capsys.readouterr().err == "error: discord did not start: Improper token has been passed.\n"


async def test_command_texts_are_published_in_every_language_with_a_catalogue(settings, monkeypatch):
    published = []

    async def bulk_upsert(http, application_id, payload):
        published.extend(payload)
        return []

    monkeypatch.setattr(discord.http.HTTPClient, "bulk_upsert_global_commands", bulk_upsert)
    adapter = DiscordAdapter(settings, service=None)
    adapter.client._connection.application_id = 1
    await adapter.setup_hook()
    commands = {command["name"]: command for command in published}
    menu = commands["Smooth this video"]["name_localizations"]
    # Discord's Spanish locales both get the Spanish catalogue; Russian its own; other languages English.
    assert menu == {"es-ES": "Suavizar este vídeo", "es-419": "Suavizar este vídeo", "ru": "Сгладить это видео"}
    video = commands["smooth"]["options"][0]
    assert video["description_localizations"]["ru"] == "Видео или GIF для сглаживания"
    assert commands["cancel"]["description_localizations"]["es-ES"] == "Cancela tu vídeo en espera o en curso"
    assert "name_localizations" not in commands["fps"] or not commands["fps"]["name_localizations"]  # /fps everywhere
