"""Property tests (hypothesis): the caption/command parser, and Bot API updates fed through the real
python-telegram-bot Application with the real handlers, service and SQLite queue, answering over
HTTP to the fake Bot API. Odd unicode, huge and non-finite numbers, missing fields, entities that
point outside the text, unknown buttons: no exception escapes a handler, and every input gets an
answer or is ignored by design. Example counts are modest so the suite stays fast.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from telegram import Update

from bot.commands import (MAX_QUOTED_CHARS, MIN_TARGET_FPS, CommandError, JobSettings, available_models,
                          parse_caption, parse_fps)
from bot.config import Settings
from bot.service import ChatService
from bot.telegram_adapter import COMMANDS, TelegramAdapter
from interpolation.options import COMPARE_MODES, CUT_MODES, MAX_SLOWMO, MIN_SLOWMO, QUALITY_MODES
from storage import SqliteJobQueue
from tests.fakes import FakeTelegram
from tests.fakes.telegram_formatting import bot_command_entities, utf16_length

FUZZ = hypothesis_settings(max_examples=200, deadline=None, database=None,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
UPDATES = hypothesis_settings(FUZZ, max_examples=150)

#: Longest answer a parse error may be (the user's own words are quoted shortened).
MAX_ERROR_CHARS = 300
COMMAND_NAMES = [name for name, _description in COMMANDS]
CAPTION_WORDS = ["/fps", "/slowmo", "/model", "/compare", "/cuts", "/quality", "/loop", "/noloop", "/gif", "/mp4",
                 "/FPS60", "/fps=1e309", "/fps:nan", "/fps@SmoothBot", "/mp4x", "/slowmo×", "/compare", "off", "x"]
#: Numbers as people (and attackers) type them.
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                    st.integers(min_value=-(10 ** 400), max_value=10 ** 400).map(str),
                    st.sampled_from(["60fps", "2,5", "2.5x", "4×", "٦٠", "６０", "1e309", "-0", "nan", "inf",
                                     "0x3c"]))
words = st.one_of(st.text(max_size=30), numbers, st.sampled_from([*CAPTION_WORDS, *COMPARE_MODES, *CUT_MODES]),
                  st.sampled_from(["@everyone", "<b>", "&amp;", "*_`[", "\u202e", "\u0000", "\ufeff", "🎞️", "\n"]))
captions = st.one_of(st.none(), st.text(), st.lists(words, max_size=12).map(" ".join))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", default_model="blend")


@FUZZ
@given(caption=captions)
def test_a_caption_parses_to_valid_settings_or_a_short_explanation(settings, caption):
    try:
        parsed = parse_caption(caption, JobSettings(), settings)
    except CommandError as error:
        text = str(error)
        assert text and len(text) <= MAX_ERROR_CHARS
        assert "\n" not in text
        return
    assert parsed.fps is None or (math.isfinite(parsed.fps) and MIN_TARGET_FPS <= parsed.fps <= settings.max_fps)
    assert parsed.slowmo is None or MIN_SLOWMO <= parsed.slowmo <= MAX_SLOWMO
    assert parsed.output in ("mp4", "gif") and parsed.model in available_models(settings)
    assert parsed.compare is None or parsed.compare in COMPARE_MODES
    assert parsed.cut_mode in CUT_MODES and parsed.quality in QUALITY_MODES
    assert JobSettings.from_dict(parsed.to_dict()) == parsed  # what is stored reads back the same


@FUZZ
@given(value=st.text(min_size=MAX_QUOTED_CHARS + 1))
def test_a_long_bad_value_is_quoted_shortened(settings, value):
    with pytest.raises(CommandError) as raised:
        parse_fps("x" + value, settings)
    quoted_part = str(raised.value).removeprefix("“").split("”")[0]
    assert len(quoted_part) <= MAX_QUOTED_CHARS and "\n" not in quoted_part


# --- Bot API updates through the real Application ------------------------------------------------

class UpdateRig:
    """The Telegram adapter's Application, initialised against the fake Bot API, on one event loop
    that stays open for all examples (hypothesis calls the test body once per example)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.tg = FakeTelegram()
        self.errors: list[BaseException] = []
        self.clip_ref: Any = None

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    async def open(self) -> None:
        await self.tg.start()
        bot_settings = Settings(_env_file=None, TELEGRAM_TOKEN=self.tg.token, telegram_base_url=self.tg.base_url,
                                telegram_base_file_url=self.tg.base_file_url, data_dir=self.settings.data_dir,
                                default_model="blend", max_queued_per_user=1000)
        self._queue_context = SqliteJobQueue.open(bot_settings.database, max_queued_per_user=1000)
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        queue = await self._queue_context.__aenter__()
        self.adapter = TelegramAdapter(bot_settings, ChatService(queue, bot_settings))
        self.adapter.app.add_error_handler(self.record_error)
        await self.adapter.app.initialize()
        self.clip_ref = self.tg.add_file(b"\0" * 2048, mime_type="video/mp4", file_name="clip.mp4")

    async def close(self) -> None:
        await self.adapter.app.shutdown()
        await self._queue_context.__aexit__(None, None, None)
        await self.tg.close()

    async def record_error(self, update: object, context: Any) -> None:
        self.errors.append(context.error)

    async def feed(self, payload: dict[str, Any]) -> list[Any]:
        """Process one update as polling would; returns the Bot API calls it caused."""
        since = len(self.tg.calls)
        for container in (payload.get("message"), (payload.get("callback_query") or {}).get("message")):
            if container:  # the chat an update comes from exists at Telegram, so answers can go there
                self.tg.chats.setdefault(container["chat"]["id"], container["chat"])
        update = Update.de_json(payload, self.adapter.app.bot)
        await self.adapter.app.process_update(update)
        return self.tg.calls[since:]


@pytest.fixture
def rig(settings: Settings) -> Iterator[UpdateRig]:
    rig = UpdateRig(settings)
    rig.run(rig.open())
    try:
        yield rig
    finally:
        rig.run(rig.close())
        rig.loop.close()


ids = st.one_of(st.integers(min_value=1, max_value=2 ** 31), st.integers(min_value=2 ** 31, max_value=2 ** 63),
                st.integers(min_value=-(2 ** 63), max_value=-1))
texts = st.one_of(st.text(max_size=60), st.lists(words, max_size=8).map(" ".join))
entities = st.lists(st.fixed_dictionaries({
    "type": st.sampled_from(["bot_command", "mention", "bold", "text_link", "custom_emoji", "unknown_kind"]),
    "offset": st.integers(min_value=-5, max_value=10 ** 6), "length": st.integers(min_value=-5, max_value=10 ** 6),
}, optional={"url": st.text(max_size=10)}), max_size=4)
users = st.fixed_dictionaries({"id": ids, "is_bot": st.booleans(), "first_name": st.text(max_size=10)},
                              optional={"username": st.text(max_size=10), "language_code": st.text(max_size=6)})
chats = st.fixed_dictionaries({"id": ids, "type": st.sampled_from(["private", "group", "supergroup", "channel",
                                                                   "weird"])},
                              optional={"title": st.text(max_size=10)})


@st.composite
def messages(draw) -> dict[str, Any]:
    message: dict[str, Any] = {"message_id": draw(ids), "date": draw(st.integers(min_value=0, max_value=2 ** 32)),
                               "chat": draw(chats)}
    if draw(st.booleans()):
        message["from"] = draw(users)
    kind = draw(st.sampled_from(["text", "video", "document", "nothing"]))
    if kind == "text":
        message["text"] = draw(texts)
        message["entities"] = draw(entities)
    elif kind in ("video", "document"):
        media = {"file_id": draw(st.sampled_from(["unknown-file", "CLIP"])), "file_unique_id": "u",
                 "file_size": draw(st.one_of(st.none(), st.integers(min_value=-1, max_value=2 ** 63)))}
        if kind == "video":
            media |= {"width": draw(ids), "height": draw(ids), "duration": draw(st.integers(0, 2 ** 31))}
        else:
            media |= {"mime_type": draw(st.sampled_from(["video/mp4", "image/gif", "video/x-\u202e"])),
                      "file_name": draw(st.text(max_size=12))}
        message[kind] = media
        if draw(st.booleans()):
            message["caption"] = draw(texts)
            message["caption_entities"] = draw(entities)
    return message


@st.composite
def updates(draw) -> dict[str, Any]:
    update: dict[str, Any] = {"update_id": draw(st.integers(min_value=0, max_value=2 ** 31))}
    if draw(st.booleans()):
        update["message"] = draw(messages())
    else:
        query: dict[str, Any] = {"id": str(draw(ids)), "from": draw(users), "chat_instance": "i",
                                 "data": draw(st.one_of(st.text(max_size=64), st.sampled_from(
                                     ["fps:60", "fps:auto", "fps:nan", "fps:1e309", "fps:-1", "loop:toggle",
                                      "output:mp4", "output:avi", "model:flow", "model:dain", "model:", ":", "x"])))}
        if draw(st.booleans()):
            query["message"] = draw(messages())
        update["callback_query"] = query
    return update


def with_known_file(payload: dict[str, Any], rig: UpdateRig) -> dict[str, Any]:
    for media in ("video", "document"):
        found = ((payload.get("message") or {}).get(media)) or {}
        if found.get("file_id") == "CLIP":
            found["file_id"] = rig.clip_ref.file_id
    return payload


@UPDATES
@given(payload=updates())
def test_no_update_makes_a_handler_fail(rig, payload):
    payload = with_known_file(payload, rig)
    rig.errors.clear()
    calls = rig.run(rig.feed(payload))
    assert rig.errors == [], (payload, rig.errors)
    assert len([call for call in calls if call.method != "getFile"]) <= 3  # an answer (and a refresh) at most


@st.composite
def commands(draw) -> tuple[str, str]:
    name = draw(st.sampled_from(COMMAND_NAMES))
    argument = draw(st.one_of(st.just(""), words, st.lists(words, max_size=4).map(" ".join)))
    suffix = draw(st.sampled_from(["", "@smoothbot_test_bot"]))
    return name, f"/{name}{suffix} {argument}".rstrip()


@UPDATES
@given(command=commands(), user_id=st.integers(min_value=1, max_value=2 ** 40), anonymous=st.booleans(),
       deleted=st.booleans())
def test_every_command_gets_one_answer(rig, command, user_id, anonymous, deleted):
    """A well-formed command from a user gets exactly one answer, also when the user deleted their
    message before it; one without a sender (not something Telegram sends in a chat) is ignored."""
    name, text = command
    user = rig.tg.add_user(user_id)
    sent_id = rig.tg.send_user_message(user_id, user_id, text=text)  # the fake now knows the chat and message
    message = dict(rig.tg.messages[user_id][sent_id])
    if deleted:
        del rig.tg.messages[user_id][sent_id]
    if anonymous:
        del message["from"]
    assert message["entities"] == bot_command_entities(text) and message["entities"][0]["length"] <= utf16_length(text)
    rig.errors.clear()
    calls = rig.run(rig.feed({"update_id": 1, "message": message}))
    assert rig.errors == []
    answers = [call for call in calls if call.method == "sendMessage" and call.ok]
    assert len(answers) == (0 if anonymous else 1), (text, [(c.method, c.status, c.error) for c in calls])
    assert all(answer.params["text"] and int(answer.params["chat_id"]) == user["id"] for answer in answers)
