"""Telegram, through python-telegram-bot: thin handlers that parse, store the file, enqueue, reply.

One small async handler per command, as in PTB's own examples. All decisions live in
:class:`~bot.service.ChatService`; all sending for the worker lives in the ChatReplier methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import mimetypes
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from telegram import (BotCommand, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters,
                      Update)
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (Application, ApplicationHandlerStop, BaseUpdateProcessor, CallbackQueryHandler,
                          CommandHandler, ContextTypes, Defaults, MessageHandler, TypeHandler, filters)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from . import i18n
from .commands import help_text, start_text
from .config import Settings
from .i18n import N_, _
from .platform import DeliveryError, RecipientGoneError, RetryAfterError, TooLargeError, TransientError
from .replies import Delivery, JobView
from .service import PRIVATE_CHAT_TEXT, Accepted, ChatService, Controls, Refused
from .telegram_albums import AlbumCollector
from .thumbnails import thumbnail_jpeg

log = logging.getLogger(__name__)

PLATFORM = "telegram"
T = TypeVar("T")
#: The command menu: (command, description message id); published in every language (:func:`bot_commands`).
COMMANDS = [
    ("start", N_("What this bot does")),
    ("help", N_("How to use it, limits and examples")),
    ("fps", N_("Set the target frame rate, e.g. /fps 60")),
    ("loop", N_("Toggle seamless looping")),
    ("gif", N_("Reply with GIF animations")),
    ("mp4", N_("Reply with MP4 videos")),
    ("slowmo", N_("Slow motion, e.g. /slowmo 4 (or /slowmo off)")),
    ("compare", N_("Before/after video: /compare split, side, stack or off")),
    ("cuts", N_("At scene cuts: /cuts cut (hard) or /cuts fade")),
    ("quality", N_("/quality fast or /quality best (RIFE: sharper, about 4× slower)")),
    ("model", N_("Choose the interpolation model")),
    ("language", N_("The bot's language: English, Español, Русский")),
    ("settings", N_("Show and change this chat's settings")),
    ("status", N_("Your videos and their places in the queue")),
    ("cancel", N_("Cancel your waiting or running video")),
]
#: The updates the handlers below use.
ALLOWED_UPDATES = ["message", "callback_query"]


def bot_commands(language: str) -> list[BotCommand]:
    """The command menu in ``language``."""
    return [BotCommand(name, i18n.translate(description, language)) for name, description in COMMANDS]
#: Videos, animations, round video notes, and files sent "as document" that are videos or GIFs.
VIDEO_FILTER = (filters.VIDEO | filters.ANIMATION | filters.VIDEO_NOTE | filters.Document.VIDEO
                | filters.Document.MimeType("image/gif"))
#: Telegram's limit on the text of a button press's answer.
MAX_BUTTON_ANSWER_CHARS = 200
#: Seconds between repeats of the "sending a video" chat action while a result uploads (it lasts 5 s).
CHAT_ACTION_REPEAT_S = 4.0
#: Quick choices offered under /settings.
FPS_CHOICES = (30, 48, 60)
MODEL_CHOICES = ("rife", "flow")
#: How Telegram words its refusals (the Bot API has no codes beyond the HTTP status, and PTB turns
#: 413 and 5xx into the same NetworkError): a file too large, and a chat nobody can be reached in.
TOO_LARGE_WORDS = ("request entity too large", "file is too big", "too large")
GONE_WORDS = ("chat not found", "bot was kicked", "bot was blocked", "user is deactivated", "not enough rights",
              "have no rights", "chat_write_forbidden", "group chat was upgraded", "need administrator rights")
#: The status message's edit found no message (deleted by the user): post a new one instead.
EDIT_TARGET_GONE_WORDS = ("message to edit not found", "message can't be edited", "message_id_invalid")


#: getUpdates answering 409 Conflict (another process polls with this token) this long, without one
#: successful poll in between, means another instance holds the token for good. A restart's overlap with
#: the old process lasts one long poll (about 10 s); PTB retries conflicts, more and more slowly, up to 30 s.
CONFLICT_LOST_AFTER_S = 120.0


class PollingWatch(HTTPXRequest):
    """getUpdates' own connection (one, as PTB builds it), watching what Telegram answers the polls.

    PTB's polling loop ends on 401 (InvalidToken: the token was revoked) with only a log line, and retries
    403 and 409 for ever; the process would stay up but deaf. This sets :attr:`lost` with the reason when
    polling has ended for good; timeouts, 429, 5xx and network errors are PTB's to retry and change nothing.
    """

    def __init__(self, conflict_lost_after_s: float) -> None:
        super().__init__(connection_pool_size=1)
        self.conflict_lost_after_s = conflict_lost_after_s
        self.lost = asyncio.Event()
        self.reason = ""
        self._conflict_since: float | None = None

    async def do_request(self, url: str, method: str, request_data=None, read_timeout=HTTPXRequest.DEFAULT_NONE,
                         write_timeout=HTTPXRequest.DEFAULT_NONE, connect_timeout=HTTPXRequest.DEFAULT_NONE,
                         pool_timeout=HTTPXRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        code, payload = await super().do_request(url, method, request_data, read_timeout, write_timeout,
                                                 connect_timeout, pool_timeout)
        self.observe(code)
        return code, payload

    def observe(self, code: int) -> None:
        """One getUpdates answer's HTTP status (never the URL: it holds the token)."""
        if code == 200:
            self._conflict_since = None
        elif code in (401, 404):  # PTB raises InvalidToken for both, and its polling loop stops
            self.end(f"Telegram refused the bot token (HTTP {code}): was it revoked or replaced in @BotFather?")
        elif code == 403:
            self.end("Telegram forbids this bot to fetch updates (HTTP 403)")
        elif code == 409:
            now = time.monotonic()
            self._conflict_since = self._conflict_since or now
            if now - self._conflict_since >= self.conflict_lost_after_s:
                self.end(f"another process has been fetching this bot's updates for "
                         f"{now - self._conflict_since:.0f} s (HTTP 409 Conflict): is a second instance running?")

    def end(self, reason: str) -> None:
        if not self.lost.is_set():
            self.reason = reason
            self.lost.set()


#: Updates handled at once (downloads overlap); each chat's own updates still run one after another.
MAX_CONCURRENT_UPDATES = 32


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Many chats at once, but one chat's updates in order ("/fps 30" then a video must not swap)."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        #: chat id → (its lock, how many updates hold or await it); dropped when that reaches 0.
        self._chats: dict[int | None, tuple[asyncio.Lock, list[int]]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[object]) -> None:
        chat = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
        lock, users = self._chats.setdefault(chat, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                await coroutine
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._chats[chat]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


def settings_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(_("{fps} fps").format(fps=fps), callback_data=f"fps:{fps}") for fps in FPS_CHOICES]
        + [InlineKeyboardButton("2×", callback_data="fps:auto")],
        [InlineKeyboardButton(_("Loop on/off"), callback_data="loop:toggle"),
         InlineKeyboardButton("MP4", callback_data="output:mp4"),
         InlineKeyboardButton("GIF", callback_data="output:gif")],
        [InlineKeyboardButton(name.upper() if name == "rife" else name, callback_data=f"model:{name}")
         for name in MODEL_CHOICES],
    ])


def language_keyboard() -> InlineKeyboardMarkup:
    """/language's choices, each named in its own language, and "auto" (each person's app)."""
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(name, callback_data=f"language:{code}") for code, name in i18n.LANGUAGE_NAMES.items()],
        [InlineKeyboardButton(_("Each person's app language"), callback_data="language:auto")],
    ])


def status_keyboard(job_id: int, controls: Controls | None) -> InlineKeyboardMarkup | None:
    """A status message's buttons: Cancel, and while the job waits its place in the queue (the job id in
    the callback data, far below Telegram's 64 bytes). None: no buttons (the job is over)."""
    if controls is None:
        return None
    row = [InlineKeyboardButton(_("Cancel"), callback_data=f"cancel:{job_id}")]
    if controls == "waiting":
        row.append(InlineKeyboardButton(_("Place in queue"), callback_data=f"where:{job_id}"))
    return InlineKeyboardMarkup([row])


async def answer_button(query: CallbackQuery, text: str, *, alert: bool = False) -> None:
    """Answer a button press (``alert``: as a dialog the user must close); a press too old to answer
    (pressed while the bot was down) is fine."""
    try:
        await query.answer(text[:MAX_BUTTON_ANSWER_CHARS], show_alert=alert)
    except BadRequest as error:
        log.info("button press not answered: %s", error)


def media_of(message: Message):
    return message.video or message.animation or message.video_note or message.document


def suffix_for(media) -> str:
    name = getattr(media, "file_name", None) or ""
    suffix = Path(name).suffix.lower()
    if suffix:
        return suffix
    mime = getattr(media, "mime_type", None) or "video/mp4"
    return mimetypes.guess_extension(mime) or ".mp4"


class TelegramAdapter:
    platform = PLATFORM
    animations_as_mp4 = True  # Telegram shows every animation as a silent MP4 anyway

    def __init__(self, settings: Settings, service: ChatService) -> None:
        if settings.telegram_token is None:
            raise ValueError("TELEGRAM_TOKEN is not set")
        self.settings = settings
        self.service = service
        self.polling = PollingWatch(CONFLICT_LOST_AFTER_S)
        #: An album's videos, collected until it is complete: one job each, all with the album's caption.
        self.albums = AlbumCollector(self.accept_album)
        self.app = (
            Application.builder()
            .token(settings.telegram_token.get_secret_value())
            .base_url(settings.telegram_base_url)
            .base_file_url(settings.telegram_base_file_url)
            # A self-hosted --local server: getFile gives a path on its disk (PTB copies the file from
            # there, never through memory) and uploads may be file:// paths.
            .local_mode(settings.telegram_local_mode)
            .read_timeout(settings.telegram_read_timeout_s).write_timeout(settings.telegram_write_timeout_s)
            .media_write_timeout(settings.telegram_upload_timeout_s)
            # Answers quote the user's message, and still go out if it was deleted meanwhile.
            .defaults(Defaults(allow_sending_without_reply=True))
            .concurrent_updates(PerChatUpdateProcessor(MAX_CONCURRENT_UPDATES))
            .connection_pool_size(MAX_CONCURRENT_UPDATES)
            .get_updates_request(self.polling)
            .build()
        )
        # Group -1 runs before every handler: a chat outside the allowlist never reaches one.
        self.app.add_handler(TypeHandler(Update, self.gate), group=-1)
        self.app.add_handler(CommandHandler("start", self.on_start))
        self.app.add_handler(CommandHandler("help", self.on_help))
        self.app.add_handler(CommandHandler("fps", self.on_fps))
        self.app.add_handler(CommandHandler("loop", self.on_loop))
        self.app.add_handler(CommandHandler("gif", self.on_gif))
        self.app.add_handler(CommandHandler("mp4", self.on_mp4))
        self.app.add_handler(CommandHandler("slowmo", self.on_slowmo))
        self.app.add_handler(CommandHandler("compare", self.on_compare))
        self.app.add_handler(CommandHandler("cuts", self.on_cuts))
        self.app.add_handler(CommandHandler("quality", self.on_quality))
        self.app.add_handler(CommandHandler("model", self.on_model))
        self.app.add_handler(CommandHandler("language", self.on_language))
        self.app.add_handler(CommandHandler("settings", self.on_settings))
        self.app.add_handler(CommandHandler("status", self.on_status))
        self.app.add_handler(CommandHandler("cancel", self.on_cancel))
        self.app.add_handler(MessageHandler(VIDEO_FILTER, self.on_video))
        self.app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.on_text))
        self.app.add_handler(CallbackQueryHandler(self.on_button))
        self.app.add_error_handler(self.on_error)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.app.initialize()
        except Exception:
            await self.app.bot.shutdown()  # a failed initialize leaves the HTTP pool open
            raise
        # The default menu is English; Telegram shows the others to users whose app has that language.
        await self.app.bot.set_my_commands(bot_commands(i18n.DEFAULT_LANGUAGE))
        for language in i18n.LANGUAGES:
            if language != i18n.DEFAULT_LANGUAGE:
                await self.app.bot.set_my_commands(bot_commands(language), language_code=language)
        await self.app.start()
        await self.start_updates()

    async def start_updates(self) -> None:
        """Start receiving updates: long polling here; bot/telegram_failover.py adds the standby and
        webhook ways."""
        assert self.app.updater is not None
        await self.app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)

    async def stop(self) -> None:
        if self.app.updater is not None and self.app.updater.running:
            # A polling loop that ended on a refused token re-raises it here; wait_lost() has reported it.
            with contextlib.suppress(InvalidToken):
                await self.app.updater.stop()
        await self.albums.close()  # albums still collecting are queued now, not lost
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def wait_lost(self) -> None:
        """Returns once polling has ended for good (token refused, or another instance polling); PTB's
        updater retries timeouts, 5xx and network errors on its own for as long as it runs."""
        await self.polling.lost.wait()
        log.error("Telegram polling ended for good: %s", self.polling.reason)

    # --- handlers: one per command -----------------------------------------------------------------

    def allowed(self, update: Update) -> bool:
        return update.effective_chat is not None and self.settings.chat_allowed(update.effective_chat.id)

    async def gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The allowlist, checked once before any handler: strangers change nothing, nothing is fetched.

        A stranger's button press or command or video gets the polite refusal; anything else is ignored,
        as is an update with no sender (nobody whose settings or jobs it could be).
        """
        if update.effective_user is None:
            raise ApplicationHandlerStop
        if self.allowed(update):
            # Every handler of this update answers in the chat's /language, else the user's app language.
            i18n.use(await self.service.language_for(PLATFORM, update.effective_chat.id,
                                                     update.effective_user.language_code))
            return
        i18n.use(update.effective_user.language_code)  # nothing is read or stored for a stranger
        if update.callback_query is not None:
            await answer_button(update.callback_query, _(PRIVATE_CHAT_TEXT))
        elif (message := update.effective_message) is not None and update.effective_chat is not None:
            if media_of(message) is not None or (message.text or "").startswith("/"):
                await message.reply_text(_(PRIVATE_CHAT_TEXT), do_quote=True)
        raise ApplicationHandlerStop

    async def reply(self, update: Update, text: str) -> None:
        if update.effective_message is not None:
            await update.effective_message.reply_text(text, do_quote=True)

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, start_text())

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, help_text(self.settings))

    async def on_fps(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        argument = " ".join(context.args or []) or None
        await self.reply(update, await self.service.set_fps(PLATFORM, update.effective_chat.id, argument))

    async def on_loop(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, await self.service.toggle_loop(PLATFORM, update.effective_chat.id))

    async def on_gif(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, await self.service.set_output(PLATFORM, update.effective_chat.id, "gif"))

    async def on_mp4(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, await self.service.set_output(PLATFORM, update.effective_chat.id, "mp4"))

    async def on_slowmo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        argument = " ".join(context.args or []) or None
        await self.reply(update, await self.service.set_slowmo(PLATFORM, update.effective_chat.id, argument))

    async def on_compare(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        argument = " ".join(context.args or []) or None
        await self.reply(update, await self.service.set_compare(PLATFORM, update.effective_chat.id, argument))

    async def on_cuts(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        argument = " ".join(context.args or []) or None
        await self.reply(update, await self.service.set_cut_mode(PLATFORM, update.effective_chat.id, argument))

    async def on_quality(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        argument = " ".join(context.args or []) or None
        await self.reply(update, await self.service.set_quality(PLATFORM, update.effective_chat.id, argument))

    async def on_model(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        argument = " ".join(context.args or []) or None
        await self.reply(update, await self.service.set_model(PLATFORM, update.effective_chat.id, argument))

    async def on_language(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        argument = " ".join(context.args or []) or None
        text = await self.service.set_language(PLATFORM, update.effective_chat.id, argument,
                                               update.effective_user.language_code)
        await update.effective_message.reply_text(text, do_quote=True,
                                                  reply_markup=language_keyboard() if argument is None else None)

    async def on_settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        text = await self.service.settings_text(PLATFORM, update.effective_chat.id)
        await update.effective_message.reply_text(text, reply_markup=settings_keyboard())

    async def on_status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, await self.service.status_text(
            PLATFORM, update.effective_chat.id, update.effective_user.id))

    async def on_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, await self.service.cancel(
            PLATFORM, update.effective_chat.id, update.effective_user.id))

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The /settings keyboard: apply the choice, confirm it, refresh the settings message."""
        query = update.callback_query
        if query is None or query.message is None:
            return
        chat_id = query.message.chat.id
        setting, _colon, value = (query.data or "").partition(":")
        if setting in ("cancel", "where") and value.isdigit():
            await self.on_status_button(query, setting, int(value))
            return
        if setting == "fps":
            answer = (await self.service.clear_fps(PLATFORM, chat_id) if value == "auto"
                      else await self.service.set_fps(PLATFORM, chat_id, value))
        elif setting == "loop":
            answer = await self.service.toggle_loop(PLATFORM, chat_id)
        elif setting == "output" and value in ("mp4", "gif"):
            answer = await self.service.set_output(PLATFORM, chat_id, value)
        elif setting == "model":
            answer = await self.service.set_model(PLATFORM, chat_id, value)
        elif setting == "language":
            answer = await self.service.set_language(PLATFORM, chat_id, value, query.from_user.language_code)
            await answer_button(query, answer)
            with contextlib.suppress(BadRequest):  # unchanged, or deleted meanwhile
                await query.edit_message_text(await self.service.language_text(PLATFORM, chat_id),
                                              reply_markup=language_keyboard())
            return
        else:
            answer = _("That button is no longer valid; send /settings again.")
        await answer_button(query, answer)
        text = await self.service.settings_text(PLATFORM, chat_id)
        try:
            await query.edit_message_text(text, reply_markup=settings_keyboard())
        except BadRequest as error:  # unchanged, or the settings message was deleted meanwhile
            log.debug("settings message not refreshed: %s", error)

    async def on_status_button(self, query: CallbackQuery, action: str, job_id: int) -> None:
        """A status message's "place in queue" (anyone may ask; the answer is theirs alone) or Cancel (the
        owner only, who then sees the message say so; anyone else gets an alert)."""
        if action == "where":
            await answer_button(query, await self.service.job_state_text(job_id)
                                or _("That video is already finished."))
            return
        answer = await self.service.cancel_from_button(PLATFORM, query.message.chat.id, query.from_user.id, job_id)
        await answer_button(query, answer.text, alert=answer.alert)
        if not answer.alert:
            with contextlib.suppress(BadRequest):  # unchanged, or deleted meanwhile
                await query.edit_message_text(answer.text, reply_markup=status_keyboard(
                    job_id, await self.service.controls_for(job_id)))

    async def on_video(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or media_of(message) is None or message.from_user is None:
            return
        if message.media_group_id is not None:  # one item of an album: handled with the rest of it
            self.albums.add(message)
            return
        await self.accept_one(message, message.caption)

    async def accept_album(self, items: list[Message]) -> None:
        """An album: one job per video, each answered; the caption (Telegram puts it on one item) is
        every video's. Past the per-user cap, the rest are refused one by one."""
        caption = next((item.caption for item in items if item.caption), None)
        for item in items:
            await self.accept_one(item, caption)

    async def accept_one(self, message: Message, caption: str | None) -> None:
        media = media_of(message)

        async def download(target: Path) -> None:
            telegram_file = await self.app.bot.get_file(media.file_id)
            if self.settings.telegram_local_mode and not Path(telegram_file.file_path or "").is_file():
                # For the log (without the path: PTB may have put the tokened file URL before it); the user
                # gets the download-failed sentence.
                raise FileNotFoundError("local mode: the file getFile named is not readable here: mount the "
                                        "Bot API server's --dir at the same path")
            await telegram_file.download_to_drive(target)

        outcome = await self.service.accept_video(
            platform=PLATFORM, chat_id=message.chat_id, user_id=message.from_user.id, message_id=message.message_id,
            caption=caption, file_size=media.file_size, download_limit=self.settings.telegram_download_cap,
            upload_limit=self.settings.telegram_upload_cap, suffix=suffix_for(media), download=download,
            animations_as_mp4=self.animations_as_mp4)
        await self.answer_outcome(message, outcome)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A text with a link to a video: the same job as an uploaded one (other texts stay unanswered)."""
        message = update.effective_message
        if message is None or message.from_user is None:
            return
        outcome = await self.service.accept_link(
            platform=PLATFORM, chat_id=message.chat_id, user_id=message.from_user.id, message_id=message.message_id,
            text=message.text, upload_limit=self.settings.telegram_upload_cap, animations_as_mp4=self.animations_as_mp4)
        if outcome is not None:
            await self.answer_outcome(message, outcome)

    async def answer_outcome(self, message: Message, outcome: Accepted | Refused) -> None:
        if isinstance(outcome, Accepted):
            if outcome.new:  # a re-delivered update (not new) was answered the first time
                status = await message.reply_text(outcome.text, do_quote=True,
                                                  reply_markup=status_keyboard(outcome.job_id, "waiting"))
                await self.service.set_status_message(outcome.job_id, status.message_id)
        else:
            await message.reply_text(outcome.text, do_quote=True)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram handler failed: %s", context.error, exc_info=context.error)
        if isinstance(update, Update) and update.effective_message is not None:
            try:
                await update.effective_message.reply_text(_("Sorry, something went wrong. Please try again."))
            except TelegramError:
                pass

    # --- ChatReplier: what the worker calls ---------------------------------------------------------

    def upload_limit(self, job: JobView) -> int | None:
        return self.settings.telegram_upload_cap

    def reply_to(self, job: JobView) -> ReplyParameters:
        return ReplyParameters(message_id=int(job.message_id), allow_sending_without_reply=True)

    async def send_status(self, job: JobView, text: str) -> str | None:
        bot = self.app.bot
        keyboard = status_keyboard(job.id, await self.service.controls_for(job.id))
        if job.status_message_id is not None:
            try:
                await self.call_platform(lambda: bot.edit_message_text(
                    text, chat_id=int(job.chat_id), message_id=int(job.status_message_id), reply_markup=keyboard))
                return None
            except DeliveryError as error:
                reason = str(error.__cause__ or error).lower()
                if "not modified" in reason:
                    return None
                if not any(words in reason for words in EDIT_TARGET_GONE_WORDS):
                    raise
        sent = await self.call_platform(lambda: bot.send_message(int(job.chat_id), text, reply_markup=keyboard,
                                                                 reply_parameters=self.reply_to(job)))
        return str(sent.message_id)

    async def deliver(self, job: JobView, path: Path, delivery: Delivery) -> str:
        bot = self.app.bot
        thumbnail = await asyncio.to_thread(thumbnail_jpeg, path)
        common = dict(chat_id=int(job.chat_id), caption=delivery.caption, width=delivery.width,
                      height=delivery.height, duration=max(1, round(delivery.duration_s)),
                      reply_parameters=self.reply_to(job), thumbnail=thumbnail)

        async def send() -> Message:
            if self.settings.telegram_local_mode and self.settings.telegram_local_upload_by_path:
                # The local server reads the file itself (PTB sends file:///absolute/path).
                local = path.resolve()
                if delivery.kind == "video":
                    return await bot.send_video(video=local, supports_streaming=True, **common)
                return await bot.send_animation(animation=local, **common)
            with path.open("rb") as file:
                if delivery.kind == "video":
                    return await bot.send_video(video=file, supports_streaming=True, filename=path.name, **common)
                return await bot.send_animation(animation=file, filename=path.name, **common)

        action = ChatAction.UPLOAD_VIDEO if delivery.kind == "video" else ChatAction.UPLOAD_DOCUMENT
        uploading = asyncio.ensure_future(self.show_action(int(job.chat_id), action))
        try:
            sent = await self.call_platform(send)
        finally:
            uploading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await uploading
        return str(sent.message_id)

    async def show_action(self, chat_id: int, action: str) -> None:
        """"Sending a video…" in the chat until cancelled: Telegram shows an action for 5 s or until the
        bot's next message, so it is repeated every few seconds while the upload lasts (best effort)."""
        while True:
            try:
                await self.app.bot.send_chat_action(chat_id, action)
            except TelegramError as error:
                log.debug("chat action not shown: %s", error)
            await asyncio.sleep(CHAT_ACTION_REPEAT_S)

    async def send_error(self, job: JobView, text: str) -> None:
        try:
            await self.call_platform(lambda: self.app.bot.send_message(
                int(job.chat_id), text, reply_parameters=self.reply_to(job)))
        except RecipientGoneError as error:  # blocked, kicked, chat deleted: nobody can be told, ever
            log.warning("job %s: the failure cannot be reported in Telegram: %s", job.id, error)

    async def call_platform(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Bot API call and classify its failure for the worker (which waits and retries:
        nothing here sleeps). The messages are for the log; ``__cause__`` is PTB's exception."""
        try:
            return await call()
        except RetryAfter as error:
            with warnings.catch_warnings():  # PTB 22 warns that retry_after becomes a timedelta; either works
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                retry_after = error.retry_after
            wait = retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)
            raise RetryAfterError(f"Telegram flood control: retry after {wait:g} s", wait) from error
        except Forbidden as error:
            raise RecipientGoneError(f"the bot may not write to this chat ({error.message})") from error
        except TimedOut as error:
            raise TransientError(f"Telegram did not answer in time ({error.message})") from error
        except BadRequest as error:
            raise telegram_refusal(error) from error
        except NetworkError as error:  # 5xx, 413, connection errors (PTB tells them apart by text only)
            if any(words in error.message.lower() for words in TOO_LARGE_WORDS):
                raise TooLargeError(f"Telegram refused the file as too large ({error.message})") from error
            raise TransientError(f"Telegram did not answer ({error.message})") from error
        except TelegramError as error:
            raise DeliveryError(f"Telegram refused it ({error.message})", transient=False) from error


def telegram_refusal(error: BadRequest) -> DeliveryError:
    """A 400: the chat is gone, the file too large, or a request retrying cannot fix."""
    reason = error.message.lower()
    if any(words in reason for words in GONE_WORDS):
        return RecipientGoneError(f"the chat cannot be reached ({error.message})")
    if any(words in reason for words in TOO_LARGE_WORDS):
        return TooLargeError(f"Telegram refused the file as too large ({error.message})")
    return DeliveryError(f"Telegram refused it ({error.message})", transient=False)
