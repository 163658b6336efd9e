"""The fake Bot API against the real python-telegram-bot client, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes import FakeTelegram, FileRef
from tests.fakes.telegram_formatting import EntityParseError, bot_command_entities, parse_text, utf16_length

CHAT = USER = 4242
GROUP = -100123
# Not a real video: the fake passes bytes through untouched, which is what these tests check.
CLIP = bytes(range(256)) * 1200  # 300 KB, several upload/download chunks


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token="123:ABC") as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as client:
        yield client


@asynccontextmanager
async def running_app(tg: FakeTelegram, *handlers: BaseHandler) -> AsyncIterator[Application]:
    """A real PTB Application polling the fake, as the bot service runs it."""
    app = Application.builder().token(tg.token).base_url(tg.base_url).base_file_url(tg.base_file_url).build()
    for handler in handlers:
        app.add_handler(handler)
    async with app:
        await app.updater.start_polling(poll_interval=0, timeout=10)
        await app.start()
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


# --------------------------------------------------------------- start-up and auth


async def test_initialize_calls_get_me_and_knows_the_bot(tg: FakeTelegram) -> None:
    app = Application.builder().token(tg.token).base_url(tg.base_url).base_file_url(tg.base_file_url).build()
    async with app:
        assert app.bot.username == "smoothbot_test_bot"
        assert app.bot.id == 123
    assert [call.method for call in tg.calls] == ["getMe"]


async def test_wrong_token_raises_invalid_token(tg: FakeTelegram) -> None:
    app = (
        Application.builder().token("999:WRONG").base_url(tg.base_url).base_file_url(tg.base_file_url).build()
    )
    with pytest.raises(InvalidToken):
        async with app:
            pass
    # PTB quirk: a failed initialize leaves the bot's HTTP clients open (Application.shutdown
    # is a no-op when not initialised), so close them or their sockets leak.
    await app.bot.shutdown()
    assert tg.calls[0].status == 401


async def test_unknown_method_and_raw_protocol_details(tg: FakeTelegram) -> None:
    async with httpx.AsyncClient(base_url=f"{tg.base_url}{tg.token}") as http:
        unknown = await http.post("/noSuchMethod")
        assert unknown.status_code == 404
        assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        # method names are case-insensitive; GET with a query string works like POST
        me = await http.get("/getme")
        assert me.json()["result"]["is_bot"] is True
        # a JSON body is read as JSON, typed values included
        tg.send_user_message(CHAT, USER, text="hi")
        sent = await http.post(
            "/sendMessage", json={"chat_id": CHAT, "text": "yo", "reply_parameters": {"message_id": 1}}
        )
        assert sent.json()["result"]["reply_to_message"]["text"] == "hi"
        wrong = await http.get(f"{tg.base_file_url}999:WRONG/videos/file_1.mp4")
        assert wrong.status_code == 401
        missing = await http.get(f"{tg.base_file_url}{tg.token}/videos/nothing.mp4")
        assert missing.status_code == 404


# ----------------------------------------------------------------- polling flow


async def test_polling_delivers_a_text_message_and_the_reply_is_recorded(tg: FakeTelegram) -> None:
    async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(f"you said {update.message.text}", do_quote=True)

    async with running_app(tg, MessageHandler(filters.TEXT, reply)):
        message_id = tg.send_user_message(CHAT, USER, text="hello")
        call = await tg.wait_for("sendMessage")

    assert call.params["chat_id"] == CHAT
    assert call.params["text"] == "you said hello"
    assert call.params["reply_parameters"]["message_id"] == message_id
    (sent,) = tg.sent_messages(CHAT)
    assert sent["reply_to_message"]["message_id"] == message_id
    assert sent["message_id"] == message_id + 1
    assert tg.pending_updates == 0
    assert {c.method for c in tg.calls} >= {"getMe", "deleteWebhook", "getUpdates"}


async def test_commands_carry_bot_command_entities_so_command_handlers_fire(tg: FakeTelegram) -> None:
    seen: list[list[str]] = []

    async def fps(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(context.args)
        await update.message.reply_text("ok")

    async with running_app(tg, CommandHandler("fps", fps)):
        tg.send_user_message(CHAT, USER, text="/fps 60 /loop")
        tg.send_user_message(GROUP, USER, text="/fps@smoothbot_test_bot 50")
        await tg.wait_for("sendMessage", lambda c: c.params["chat_id"] == GROUP)
        await tg.wait_for("sendMessage", lambda c: c.params["chat_id"] == CHAT)

    assert sorted(seen) == [["50"], ["60", "/loop"]]
    entities = tg.messages[CHAT][1]["entities"]
    assert [(e["offset"], e["length"]) for e in entities] == [(0, 4), (8, 5)]
    assert tg.chats[GROUP]["type"] == "supergroup"


async def test_handler_downloads_an_injected_video(tg: FakeTelegram, tmp_path: Path) -> None:
    clip = tg.add_file(CLIP, mime_type="video/mp4", file_name="clip.mp4", width=320, height=240, duration=3)
    target = tmp_path / "in.mp4"

    async def download(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        video = update.message.video
        assert (video.width, video.height, video.mime_type) == (320, 240, "video/mp4")
        telegram_file = await context.bot.get_file(video.file_id)
        await telegram_file.download_to_drive(target)
        await update.message.reply_text("downloaded")

    async with running_app(tg, MessageHandler(filters.VIDEO, download)):
        tg.send_user_message(CHAT, USER, video=clip, caption="/fps 60")
        await tg.wait_for("sendMessage")

    assert target.read_bytes() == CLIP
    get_file = tg.calls_to("getFile")[0]
    assert get_file.result["file_path"].startswith("videos/") and get_file.result["file_size"] == len(CLIP)
    assert tg.downloads == [get_file.result["file_path"]]
    assert tg.messages[CHAT][1]["caption_entities"][0]["type"] == "bot_command"
    assert tg.messages[CHAT][1]["video"]["duration"] == 3


async def test_user_media_messages_have_bot_api_shapes() -> None:
    async with FakeTelegram() as tg:
        animation = tg.add_file(
            b"gif", mime_type="video/mp4", file_name="a.gif.mp4", width=8, height=6, duration=1
        )
        note = tg.add_file(b"note", mime_type="video/mp4", width=240, duration=2)
        document = tg.add_file(b"doc", mime_type="video/x-matroska", file_name="clip.mkv")
        tg.send_user_message(CHAT, USER, animation=animation)
        tg.send_user_message(CHAT, USER, video_note=note)
        reply_to = tg.send_user_message(CHAT, USER, document=document, caption="x")
        tg.send_user_message(CHAT, USER, text="again", reply_to=reply_to)
        async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as bot:
            updates = await bot.get_updates(timeout=0)

    first, second, third, fourth = (update.message for update in updates)
    assert first.animation.width == 8 and first.document.file_id == first.animation.file_id
    assert second.video_note.length == 240 and second.video_note.file_size == 4
    assert third.document.mime_type == "video/x-matroska" and third.document.file_name == "clip.mkv"
    assert fourth.reply_to_message.message_id == reply_to
    assert [u.update_id for u in updates] == sorted(u.update_id for u in updates)
    with pytest.raises(ValueError, match="one attachment"):
        tg.send_user_message(CHAT, USER, video=note, document=document)


# ------------------------------------------------------------------ uploads


async def test_send_video_stores_the_uploaded_bytes_and_parameters(tg: FakeTelegram, bot: Bot) -> None:
    question = tg.send_user_message(CHAT, USER, text="smooth this")
    message = await bot.send_video(
        CHAT,
        InputFile(CLIP, filename="smooth.mp4"),
        caption="25 → 60 fps, loop",
        supports_streaming=True,
        width=320,
        height=240,
        duration=3,
        reply_parameters=ReplyParameters(question),
        write_timeout=20,
    )

    call = await tg.wait_for("sendVideo")
    uploaded = call.params["video"]
    assert isinstance(uploaded, FileRef)
    assert (
        uploaded.content == CLIP and uploaded.file_name == "smooth.mp4" and uploaded.mime_type == "video/mp4"
    )
    assert call.params["supports_streaming"] is True and call.params["caption"] == "25 → 60 fps, loop"
    assert (call.params["width"], call.params["height"], call.params["duration"]) == (320, 240, 3)
    assert message.video.file_id == uploaded.file_id and message.video.width == 320
    assert message.caption == "25 → 60 fps, loop" and message.reply_to_message.message_id == question
    assert tg.files[message.video.file_id].content == CLIP
    # the bot can fetch its own upload again, like any file
    assert bytes(await (await bot.get_file(message.video.file_id)).download_as_bytearray()) == CLIP


async def test_send_animation_and_document_with_thumbnail(tg: FakeTelegram, bot: Bot) -> None:
    tg.send_user_message(CHAT, USER, text="gif please")
    animation = await bot.send_animation(
        CHAT, InputFile(b"mp4-no-audio", filename="loop.mp4"), width=64, height=48
    )
    document = await bot.send_document(
        CHAT, InputFile(b"GIF89a...", filename="loop.gif"), thumbnail=InputFile(b"jpeg", filename="t.jpg")
    )

    assert (
        animation.animation.mime_type == "video/mp4"
        and animation.document.file_id == animation.animation.file_id
    )
    assert document.document.file_name == "loop.gif" and document.document.mime_type == "image/gif"
    call = tg.calls_to("sendDocument")[0]
    assert call.params["thumbnail"].content == b"jpeg"  # sent as attach://, stored as a file
    assert call.params["document"].content == b"GIF89a..."


async def test_upload_over_the_limit_is_refused_like_the_cloud_api(bot: Bot) -> None:
    async with FakeTelegram(upload_limit=100_000) as small:
        small.send_user_message(CHAT, USER, text="hi")
        async with Bot(small.token, base_url=small.base_url, base_file_url=small.base_file_url) as client:
            with pytest.raises(NetworkError, match="Request Entity Too Large"):
                await client.send_video(CHAT, InputFile(CLIP, filename="big.mp4"))
            await client.send_video(CHAT, InputFile(CLIP[:100_000], filename="fits.mp4"))
    assert [c.status for c in small.calls_to("sendVideo")] == [413, 200]


async def test_get_file_refuses_files_over_20_mb(tg: FakeTelegram, bot: Bot) -> None:
    huge = tg.add_file(b"head", mime_type="video/mp4", file_name="huge.mp4", file_size=25_000_000)
    tg.send_user_message(CHAT, USER, video=huge)
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(huge.file_id)
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await bot.get_file("nonsense")


# -------------------------------------------------------------- edits and errors


async def test_repeating_an_edit_is_refused_as_not_modified(tg: FakeTelegram, bot: Bot) -> None:
    tg.send_user_message(CHAT, USER, text="go")
    status = await bot.send_message(CHAT, "Queued — position 2")
    await bot.edit_message_text("Smoothing… 42%", CHAT, status.message_id)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Smoothing… 42%", CHAT, status.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", CHAT, 999)
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("x", CHAT, 1)  # the user's message

    current = tg.messages[CHAT][status.message_id]
    assert current["text"] == "Smoothing… 42%" and "edit_date" in current
    assert [c.status for c in tg.calls_to("editMessageText")] == [200, 400, 400, 400]


# PTB's own RetryAfter constructor reads its deprecated int `retry_after`; not ours to fix.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_wait_raises_retry_after_once(tg: FakeTelegram, bot: Bot) -> None:
    tg.send_user_message(CHAT, USER, text="go")
    tg.flood_wait("sendMessage", retry_after=1)
    with pytest.raises(RetryAfter, match="Retry in 1 seconds"):
        await bot.send_message(CHAT, "first")
    await bot.send_message(CHAT, "second")
    assert [c.status for c in tg.calls_to("sendMessage")] == [429, 200]
    assert [m["text"] for m in tg.sent_messages(CHAT)] == ["second"]


async def test_chat_errors(tg: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(777, "nobody here")
    tg.send_user_message(CHAT, USER, text="hi")
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(CHAT, "re", reply_parameters=ReplyParameters(99))
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(CHAT, "  ")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="x" * 65)]])
        await bot.send_message(CHAT, "buttons", reply_markup=markup)
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await bot.send_chat_action(CHAT, "dancing")
    assert await bot.send_chat_action(CHAT, "upload_video")
    assert await bot.delete_message(CHAT, 1)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(CHAT, 1)
    tg.block(CHAT)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(CHAT, "still there?")


async def test_parse_modes_become_text_and_entities(tg: FakeTelegram, bot: Bot) -> None:
    tg.send_user_message(CHAT, USER, text="hi")
    html = await bot.send_message(CHAT, "<b>Done</b> in 3 s &amp; <i>smooth</i>", parse_mode=ParseMode.HTML)
    assert html.text == "Done in 3 s & smooth"
    assert [(e.type, e.offset, e.length) for e in html.entities] == [("bold", 0, 4), ("italic", 14, 6)]
    with pytest.raises(BadRequest, match="Can't parse entities: unsupported start tag"):
        await bot.send_message(CHAT, "file <clip>.mp4", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="reserved and must be escaped"):
        await bot.send_message(CHAT, "3.2 s", parse_mode=ParseMode.MARKDOWN_V2)
    md = await bot.send_message(CHAT, r"*60* fps, 3\.2 s", parse_mode=ParseMode.MARKDOWN_V2)
    assert md.text == "60 fps, 3.2 s" and md.entities[0].type == "bold"


def test_entities_use_utf16_offsets() -> None:
    text = "🎬 /fps 60"
    (command,) = bot_command_entities(text)
    assert command == {"type": "bot_command", "offset": 3, "length": 4}  # the emoji is 2 UTF-16 units
    assert utf16_length("🎬") == 2
    plain, entities = parse_text("🎬 <b>x</b>", "HTML")
    assert plain == "🎬 x" and entities[0]["offset"] == 3
    assert bot_command_entities("a/b http://x/y") == []
    assert parse_text('<pre><code class="language-python">x</code></pre>', "HTML")[1] == [
        {"type": "pre", "offset": 0, "length": 1, "language": "python"}
    ]
    assert parse_text("[site](http://a.b) _it_", "Markdown") == (
        "site it",
        [
            {"type": "text_link", "offset": 0, "length": 4, "url": "http://a.b"},
            {"type": "italic", "offset": 5, "length": 2},
        ],
    )


@pytest.mark.parametrize(
    ("source", "mode", "error"),
    [
        ("<b>bold</i>", "HTML", 'expected "</b>", found "</i>"'),
        ("<b>open", "HTML", 'end tag corresponding to start tag "b"'),
        ("a < b", "HTML", "Unclosed start tag at byte offset 2"),
        ('<span class="x">s</span>', "HTML", 'must have class "tg-spoiler"'),
        ("*bold", "MarkdownV2", "Can't find end of Bold entity at byte offset 0"),
        ("`code", "MarkdownV2", "Can't find end of Code entity"),
        ("1+1", "MarkdownV2", "Character '+' is reserved"),
        ("_italic", "Markdown", "Can't find end of the entity starting at byte offset 0"),
        ("x", "Markdown3", 'Unsupported parse_mode "Markdown3"'),
    ],
)
def test_malformed_markup_is_refused(source: str, mode: str, error: str) -> None:
    with pytest.raises(EntityParseError, match=re.escape(error)):
        parse_text(source, mode)


def test_markdown_v2_entities() -> None:
    text, entities = parse_text(r"*b _i_* __u__ ||s|| [l](http://x/\)) `c\`` ```py" "\nx```", "MarkdownV2")
    assert text == "b i u s l c` x"
    kinds = [(e["type"], e["offset"], e["length"]) for e in entities]
    assert kinds == [
        ("bold", 0, 3),
        ("italic", 2, 1),
        ("underline", 4, 1),
        ("spoiler", 6, 1),
        ("text_link", 8, 1),
        ("code", 10, 2),
        ("pre", 13, 1),
    ]
    assert entities[4]["url"] == "http://x/)" and entities[6]["language"] == "py"
    assert parse_text('<a href="http://a?x=1&amp;y=2">l</a>', "HTML")[1][0]["url"] == "http://a?x=1&y=2"


# ---------------------------------------------------------- buttons and commands


async def test_callback_query_round_trip(tg: FakeTelegram) -> None:
    async def settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("60 fps", callback_data="fps:60")]])
        await update.message.reply_text("Settings", reply_markup=keyboard)

    async def choose(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer(f"set {query.data}")
        await query.edit_message_text(f"Settings: {query.data}")

    async with running_app(tg, CommandHandler("settings", settings), CallbackQueryHandler(choose)):
        tg.send_user_message(CHAT, USER, text="/settings")
        sent = await tg.wait_for("sendMessage")
        with pytest.raises(ValueError, match="no button"):
            tg.press_button(CHAT, USER, sent.result["message_id"], "fps:30")
        query_id = tg.press_button(CHAT, USER, sent.result["message_id"], "fps:60")
        await tg.wait_for("editMessageText")

    assert tg.callback_answers[query_id] == {"text": "set fps:60"}
    edited = tg.messages[CHAT][sent.result["message_id"]]
    assert edited["text"] == "Settings: fps:60"
    assert "reply_markup" not in edited  # an edit without reply_markup drops the keyboard, as on Telegram


async def test_answering_a_query_twice_is_refused(tg: FakeTelegram, bot: Bot) -> None:
    tg.send_user_message(CHAT, USER, text="hi")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("go", callback_data="go")]])
    sent = await bot.send_message(CHAT, "press", reply_markup=keyboard)
    query_id = tg.press_button(CHAT, USER, sent.message_id, "go")
    assert await bot.answer_callback_query(query_id)
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query_id)


async def test_set_and_get_my_commands(tg: FakeTelegram, bot: Bot) -> None:
    commands = [BotCommand("fps", "Set output frame rate"), BotCommand("loop", "Toggle looping")]
    assert await bot.set_my_commands(commands)
    assert await bot.get_my_commands() == tuple(commands)
    assert tg.bot_commands() == [
        {"command": "fps", "description": "Set output frame rate"},
        {"command": "loop", "description": "Toggle looping"},
    ]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


# ------------------------------------------------------- long polling semantics


async def test_get_updates_long_polls_and_offset_confirms(tg: FakeTelegram, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=timedelta(seconds=0.3)) == ()
    assert time.monotonic() - started >= 0.25  # waited for the timeout

    async def inject_later() -> None:
        await asyncio.sleep(0.1)
        tg.send_user_message(CHAT, USER, text="late")

    started = time.monotonic()
    waiting = asyncio.create_task(bot.get_updates(timeout=5))
    await inject_later()
    (update,) = await waiting
    assert update.message.text == "late" and time.monotonic() - started < 2  # answered on arrival

    assert len(await bot.get_updates(timeout=0)) == 1  # unconfirmed: delivered again
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    await tg.wait_updates_confirmed(timeout=1)


async def test_drop_pending_updates_and_allowed_updates(tg: FakeTelegram, bot: Bot) -> None:
    tg.send_user_message(CHAT, USER, text="sent while the bot was down")
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert tg.pending_updates == 0
    assert await bot.get_updates(timeout=0, allowed_updates=["callback_query"]) == ()
    tg.send_user_message(CHAT, USER, text="not asked for")
    assert tg.pending_updates == 0  # Telegram creates no update of a type the bot did not ask for
    await bot.get_updates(timeout=0, allowed_updates=[])  # empty list: every type again
    tg.send_user_message(CHAT, USER, text="now")
    (update,) = await bot.get_updates(timeout=0)
    assert update.message.text == "now"


async def test_wait_for_since_skips_earlier_calls(tg: FakeTelegram, bot: Bot) -> None:
    tg.send_user_message(CHAT, USER, text="hi")
    await bot.send_message(CHAT, "one")
    mark = len(tg.calls)
    later = asyncio.create_task(tg.wait_for("sendMessage", since=mark))
    await asyncio.sleep(0)
    assert not later.done()
    await bot.send_message(CHAT, "two")
    assert (await later).params["text"] == "two"
    method, params = tg.calls_to("sendMessage")[0]  # an ApiCall unpacks as (method, params)
    assert (method, params["text"]) == ("sendMessage", "one")


async def test_a_second_poller_ends_the_first_with_conflict(tg: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await tg.wait_until_polling()
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as second_instance:
        await second_instance.get_updates(timeout=0)
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first


async def test_closing_answers_waiting_polls_promptly() -> None:
    tg = FakeTelegram()
    await tg.start()
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as client:
        poll = asyncio.create_task(client.get_updates(timeout=30, read_timeout=35))
        await tg.wait_until_polling()
        started = time.monotonic()
        await tg.close()
        assert await poll == ()
        assert time.monotonic() - started < 1


async def test_wait_for_times_out_with_what_was_seen(tg: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(TimeoutError, match=r"no sendVideo call within 0.1 s; calls since 0: \['getMe:200'\]"):
        await tg.wait_for("sendVideo", timeout=0.1)


# --------------------------------------------------------------------- load


async def test_fifty_concurrent_senders(tg: FakeTelegram) -> None:
    async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text("Queued", do_quote=True)

    app_handlers = MessageHandler(filters.TEXT, reply, block=False)
    async with running_app(tg, app_handlers):
        users = range(1000, 1050)
        for user in users:
            tg.send_user_message(user, user, text=f"video from {user}")
        await tg.wait_for_all("sendMessage", len(users), lambda call: call.ok)

    for user in users:
        (answer,) = tg.sent_messages(user)
        assert answer["reply_to_message"]["text"] == f"video from {user}"
    assert json.dumps(tg.calls[0].result)  # records are plain JSON
