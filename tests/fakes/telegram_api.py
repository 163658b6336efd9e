"""A fake Telegram Bot API server on 127.0.0.1 for testing the real python-telegram-bot client.

Telegram is the one remote part of the bot, so tests fake only it, over real HTTP:

    async with FakeTelegram(token="123:ABC") as tg:
        app = (Application.builder().token(tg.token)
               .base_url(tg.base_url).base_file_url(tg.base_file_url).build())
        clip = tg.add_file(mp4_bytes, mime_type="video/mp4", file_name="clip.mp4",
                           width=320, height=240, duration=2)
        message_id = tg.send_user_message(42, 42, video=clip, caption="/fps 60")
        ...  # run the bot
        call = await tg.wait_for("sendVideo")
        assert call.params["video"].content.startswith(b"...")

It serves `/bot<token>/<method>` (GET or POST; query string, JSON, urlencoded or
multipart bodies) and `/file/bot<token>/<file_path>`, answers as the cloud Bot API
does — long-polling `getUpdates`, realistic Message objects, the 20 MB download
and 50 MB upload limits, "message is not modified", 401 for a wrong token — and
records every call for the test to inspect. Method reference:
https://core.telegram.org/bots/api

`FakeTelegram(local_dir=path)` behaves like a self-hosted `telegram-bot-api --local` server:
getFile answers an absolute path under `local_dir` (no download endpoint, no download limit),
uploads may be `file:///absolute/path` strings, and uploads go up to 2000 MB. `add_local_file`
registers a file already on that disk (e.g. a large sparse one) without reading it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import mimetypes
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web

from tests.fakes.telegram_formatting import Entity, EntityParseError, bot_command_entities, parse_text
from tests.fakes.telegram_requests import (
    FORM_BODY_LIMIT,
    BotApiError,
    JsonDict,
    Upload,
    bad_request,
    read_params,
)

# Cloud Bot API limits (decimal megabytes, like PTB's FILESIZE_DOWNLOAD/FILESIZE_UPLOAD).
DOWNLOAD_LIMIT = 20_000_000
UPLOAD_LIMIT = 50_000_000
LOCAL_UPLOAD_LIMIT = 2_000_000_000  # a --local server's limit; it downloads any size
MESSAGE_TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes
MAX_COMMANDS = 100
GET_UPDATES_LIMIT = 100

# How long closing the server waits for requests still in flight.
SHUTDOWN_TIMEOUT = 2.0

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Where getFile puts each kind of file, as the cloud API does ("videos/file_7.mp4").
FILE_DIRECTORIES = {
    "video": "videos",
    "animation": "animations",
    "video_note": "video_notes",
    "document": "documents",
    "thumbnail": "thumbnails",
}
BOT_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
GET_UPDATES_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
INVALID_QUERY = "Bad Request: query is too old and response timeout expired or query ID is invalid"


@dataclass(frozen=True)
class FileRef:
    """A file Telegram holds: one a user sent (`add_file`) or one the bot uploaded.

    `file_size` is what Telegram reports; it defaults to len(content) and may be set
    higher to describe a large file without allocating it.
    """

    file_id: str
    file_unique_id: str
    content: bytes = field(repr=False)
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    reported_size: int | None = None
    #: Where a local-mode server keeps the file (its content is then read from there, not held).
    local_path: Path | None = None

    @property
    def file_size(self) -> int:
        if self.reported_size is not None:
            return self.reported_size
        return self.local_path.stat().st_size if self.local_path is not None else len(self.content)


@dataclass
class ApiCall:
    """One request the bot made: canonical method name, decoded params and the answer.

    For an upload, `params[<field>]` is the stored FileRef (its `content` is the bytes).
    """

    method: str
    params: JsonDict
    status: int
    result: Any = None
    error: str | None = None
    at: float = 0.0  # time.monotonic() when answered

    @property
    def ok(self) -> bool:
        return self.status == 200

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as (method, params)."""
        return iter((self.method, self.params))


class _Signal:
    """Wakes every waiter when state changes; waiters re-check their own condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            await self._event.wait()


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


Handler = Callable[[JsonDict], Awaitable[Any]]


class FakeTelegram:
    """The fake Bot API: an aiohttp server plus the test-side controls and records."""

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        bot_username: str = "smoothbot_test_bot",
        bot_name: str = "Smoothbot",
        upload_limit: int | None = None,
        download_limit: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        local_dir: Path | None = None,
    ) -> None:
        self.token = token
        self.local_dir = Path(local_dir).resolve() if local_dir is not None else None
        local = self.local_dir is not None
        self.upload_limit = upload_limit or (LOCAL_UPLOAD_LIMIT if local else UPLOAD_LIMIT)
        self.download_limit: int | None = download_limit or (None if local else DOWNLOAD_LIMIT)
        self.host = host
        self.port = port
        self.bot_user: JsonDict = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        # Records and state, for tests to read.
        self.calls: list[ApiCall] = []
        self.users: dict[int, JsonDict] = {}
        self.chats: dict[int, JsonDict] = {}
        self.messages: dict[int, dict[int, JsonDict]] = {}
        self.files: dict[str, FileRef] = {}
        self.callback_answers: dict[str, JsonDict] = {}
        self.downloads: list[str] = []  # file paths served by the file endpoint
        self.webhook: JsonDict | None = None  # setWebhook's url, secret_token, allowed_updates
        # Internal state.
        self._updates: list[JsonDict] = []
        self._last_update_id = 0
        self._allowed_updates: list[str] = []
        self._poll_generation = 0
        self._waiting_polls = 0
        self._message_ids: dict[int, int] = {}
        self._file_counter = 0
        self._path_counter = 0
        self._query_counter = 0
        self._file_kinds: dict[str, str] = {}
        self._file_paths: dict[str, str] = {}
        self._files_by_path: dict[str, FileRef] = {}
        self._open_queries: set[str] = set()
        self._blocked: set[int] = set()
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._injected: dict[str, deque[BotApiError]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._updates_changed = _Signal()
        self._calls_changed = _Signal()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "getFile": self._get_file,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "sendVideo": self._send_video,
            "sendAnimation": self._send_animation,
            "sendDocument": self._send_document,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "answerCallbackQuery": self._answer_callback_query,
        }
        # Method names are case-insensitive in the Bot API.
        self._method_names = {name.lower(): name for name in self._handlers}

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(client_max_size=FORM_BODY_LIMIT)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_route("GET", "/file/bot{token}/{file_path:.+}", self._handle_download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Answers waiting long polls and stops the server."""
        self._closing = True
        self._updates_changed.fire()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """For `ApplicationBuilder.base_url`; PTB appends the token."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For `ApplicationBuilder.base_file_url`; PTB appends the token."""
        return f"http://{self.host}:{self.port}/file/bot"

    # ----------------------------------------------------------- test-side API

    def add_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str = "en",
    ) -> JsonDict:
        """Registers (or replaces) a user; users are otherwise created on first use."""
        self.users[user_id] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name or f"User{user_id}",
            "username": username or f"user{user_id}",
            "language_code": language_code,
        }
        return self.users[user_id]

    def add_file(
        self,
        content: bytes,
        *,
        mime_type: str | None = "video/mp4",
        file_name: str | None = None,
        width: int | None = None,
        height: int | None = None,
        duration: int | None = None,
        file_size: int | None = None,
    ) -> FileRef:
        """Registers a file a user can send; the bot downloads it with getFile."""
        ref = self._new_file(
            content,
            mime_type=mime_type,
            file_name=file_name,
            width=width,
            height=height,
            duration=duration,
            reported_size=file_size,
        )
        self.files[ref.file_id] = ref
        return ref

    def add_local_file(
        self,
        path: Path,
        *,
        mime_type: str | None = "video/mp4",
        file_name: str | None = None,
        width: int | None = None,
        height: int | None = None,
        duration: int | None = None,
    ) -> FileRef:
        """Local mode: a file a user sent that the server already holds at `path` (never read here)."""
        if self.local_dir is None:
            raise ValueError("add_local_file needs FakeTelegram(local_dir=...)")
        ref = self._new_file(
            b"",
            mime_type=mime_type,
            file_name=file_name or Path(path).name,
            width=width,
            height=height,
            duration=duration,
            reported_size=Path(path).stat().st_size,
            local_path=Path(path).resolve(),
        )
        self.files[ref.file_id] = ref
        return ref

    def send_user_message(
        self,
        chat_id: int,
        user_id: int,
        *,
        text: str | None = None,
        caption: str | None = None,
        video: FileRef | None = None,
        animation: FileRef | None = None,
        video_note: FileRef | None = None,
        document: FileRef | None = None,
        reply_to: int | None = None,
        media_group_id: str | None = None,
    ) -> int:
        """Queues a `message` update from a user; returns the new message_id.

        An album is several such messages with the same `media_group_id` (each its own update; at
        most one carries the caption), as Telegram sends them.

        A private chat's id is the user's id; group chat ids are negative. `/commands`
        in text or caption get `bot_command` entities, as Telegram adds them.
        """
        media = {
            kind: ref
            for kind, ref in (
                ("video", video),
                ("animation", animation),
                ("video_note", video_note),
                ("document", document),
            )
            if ref is not None
        }
        if len(media) > 1:
            raise ValueError(f"a Telegram message carries one attachment, got {sorted(media)}")
        if media and text is not None:
            raise ValueError("a message with an attachment has a caption, not text")
        if not media and caption is not None:
            raise ValueError("a caption needs an attachment")
        if not media and not text:
            raise ValueError("a message needs text or an attachment")
        if media_group_id is not None and not media:
            raise ValueError("only a photo, video, audio or document can be part of an album")
        user = self.users.get(user_id) or self.add_user(user_id)
        chat = self._user_chat(chat_id, user)
        content: JsonDict = {}
        if text is not None:
            content["text"] = text
            content["entities"] = bot_command_entities(text)
        for kind, ref in media.items():
            self._file_kinds.setdefault(ref.file_id, kind)
            self.files.setdefault(ref.file_id, ref)
            content.update(self._media_content(kind, ref))
        if caption is not None:
            content["caption"] = caption
            content["caption_entities"] = bot_command_entities(caption)
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        reply = self._existing_reply(chat_id, reply_to) if reply_to is not None else None
        message = self._add_message(chat, user, reply, content)
        self._enqueue_update("message", copy.deepcopy(message))
        return int(message["message_id"])

    def press_button(self, chat_id: int, user_id: int, message_id: int, callback_data: str) -> str:
        """Queues a `callback_query` for an inline button on a bot message; returns the query id."""
        message = self.messages.get(chat_id, {}).get(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        buttons = [b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
        if not any(b.get("callback_data") == callback_data for b in buttons):
            offered = [b.get("callback_data") for b in buttons]
            raise ValueError(f"message {message_id} has no button {callback_data!r}; it offers {offered}")
        user = self.users.get(user_id) or self.add_user(user_id)
        self._query_counter += 1
        query_id = str(4_000_000_000_000_000_000 + self._query_counter)
        self._open_queries.add(query_id)
        self._enqueue_update(
            "callback_query",
            {
                "id": query_id,
                "from": user,
                "message": copy.deepcopy(message),
                "chat_instance": f"instance-{chat_id}",
                "data": callback_data,
            },
        )
        return query_id

    def add_bot_message(
        self, chat_id: int, user_id: int, text: str, buttons: list[list[tuple[str, str]]] | None = None
    ) -> int:
        """A message the bot sent in this chat earlier (with inline buttons as (text, callback_data)
        rows), e.g. before the chat was left out of an allowlist; returns its message_id."""
        chat = self._user_chat(chat_id, self.users.get(user_id) or self.add_user(user_id))
        markup = None
        if buttons:
            keyboard = [[{"text": label, "callback_data": data} for label, data in row] for row in buttons]
            markup = {"inline_keyboard": keyboard}
        message = self._add_message(chat, self.bot_user, None, {"text": text, "reply_markup": markup})
        return int(message["message_id"])

    def delay(self, method: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` calls to `method` are answered only after `seconds` (a stalled server)."""
        self._delays.setdefault(method.lower(), deque()).extend([seconds] * times)

    async def wait_quiet(self, quiet_s: float = 0.5, timeout: float = 10.0) -> None:
        """Waits until the bot has made no call but long polls for `quiet_s` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            active = [c.at for c in self.calls if c.method != "getUpdates"]
            idle = time.monotonic() - max(active, default=0.0)
            if idle >= quiet_s:
                return
            if time.monotonic() + quiet_s - idle > deadline:
                raise TimeoutError(f"the bot was still calling the API after {timeout} s")
            await asyncio.sleep(quiet_s - idle)

    def flood_wait(self, method: str, retry_after: int = 1, *, times: int = 1) -> None:
        """The next `times` calls to `method` answer 429 with parameters.retry_after."""
        self.fail(
            method,
            429,
            f"Too Many Requests: retry after {retry_after}",
            times=times,
            parameters={"retry_after": retry_after},
        )

    def fail(
        self,
        method: str,
        error_code: int,
        description: str,
        *,
        times: int = 1,
        parameters: JsonDict | None = None,
    ) -> None:
        """The next `times` calls to `method` answer this Bot API error instead of running."""
        queue = self._injected.setdefault(method.lower(), deque())
        queue.extend(BotApiError(error_code, description, parameters) for _ in range(times))

    def revoke_token(self) -> None:
        """The owner revokes the token in @BotFather: from now on every call with it answers 401."""
        self.token = f"{self.bot_user['id']}:revoked"
        self._updates_changed.fire()

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: sends to this chat answer 403."""
        self._blocked.add(chat_id)

    def calls_to(self, method: str) -> list[ApiCall]:
        name = self._canonical(method)
        return [call for call in self.calls if call.method == name]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        *,
        timeout: float = 5.0,
        since: int = 0,
    ) -> ApiCall:
        """The first recorded call to `method` (answered, ok or not) at index >= `since`
        in `calls` that satisfies `predicate`, waiting up to `timeout` seconds for it.

        To wait for a call made after some point, pass `since=len(tg.calls)` taken then.
        """
        (call,) = await self.wait_for_all(method, 1, predicate, timeout=timeout, since=since)
        return call

    async def wait_for_all(
        self,
        method: str,
        count: int,
        predicate: Callable[[ApiCall], bool] | None = None,
        *,
        timeout: float = 5.0,
        since: int = 0,
    ) -> list[ApiCall]:
        """Like `wait_for`, for the first `count` matching calls."""
        name = self._canonical(method)

        def matching() -> list[ApiCall]:
            found = [
                c for c in self.calls[since:] if c.method == name and (predicate is None or predicate(c))
            ]
            return found[:count]

        try:
            async with asyncio.timeout(timeout):
                await self._calls_changed.wait_until(lambda: len(matching()) == count)
        except TimeoutError:
            seen = [f"{c.method}:{c.status}" for c in self.calls[since:] if c.method != "getUpdates"]
            wanted = f"{count} {name} calls" if count > 1 else f"{name} call"
            condition = " matching the predicate" if predicate else ""
            raise TimeoutError(
                f"no {wanted}{condition} within {timeout} s; calls since {since}: {seen}"
            ) from None
        return matching()

    async def wait_until_polling(self, timeout: float = 5.0) -> None:
        """Waits until a getUpdates long poll is waiting at the server (the bot is listening)."""
        try:
            async with asyncio.timeout(timeout):
                await self._updates_changed.wait_until(lambda: self._waiting_polls > 0)
        except TimeoutError:
            raise TimeoutError(f"no getUpdates long poll arrived within {timeout} s") from None

    async def wait_updates_confirmed(self, timeout: float = 5.0) -> None:
        """Waits until the bot has confirmed (getUpdates offset past) every queued update."""
        try:
            async with asyncio.timeout(timeout):
                await self._updates_changed.wait_until(lambda: not self._updates)
        except TimeoutError:
            raise TimeoutError(f"{len(self._updates)} updates still unconfirmed after {timeout} s") from None

    def sent_messages(self, chat_id: int) -> list[JsonDict]:
        """The bot's messages in a chat, oldest first, as they are now (edits applied)."""
        bot_id = self.bot_user["id"]
        return [m for m in self.messages.get(chat_id, {}).values() if m["from"]["id"] == bot_id]

    def bot_commands(self, scope: JsonDict | None = None, language_code: str = "") -> list[JsonDict]:
        """The command list set with setMyCommands for a scope and language."""
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    # --------------------------------------------------------------- HTTP layer

    async def _handle_method(self, request: web.Request) -> web.Response:
        name = self._canonical(request.match_info["method"])
        params: JsonDict = {}
        try:
            params = await read_params(request, self.upload_limit)
            if request.match_info["token"] != self.token:
                raise BotApiError(401, "Unauthorized")
            handler = self._handlers.get(name)
            if handler is None:
                raise BotApiError(404, "Not Found")
            delays = self._delays.get(name.lower())
            if delays:
                await asyncio.sleep(delays.popleft())
            injected = self._injected.get(name.lower())
            if injected:
                raise injected.popleft()
            result = await handler(params)
        except BotApiError as error:
            if not (name == "getUpdates" and _client_gone(request)):  # a poll nobody waits for any more
                self._record(
                    ApiCall(name, params, error.status, error=error.description, at=time.monotonic())
                )
            return web.json_response(error.body(), status=error.status)
        self._record(ApiCall(name, params, 200, result=copy.deepcopy(result), at=time.monotonic()))
        return web.json_response({"ok": True, "result": result})

    async def _handle_download(self, request: web.Request) -> web.Response:
        file_path = request.match_info["file_path"]
        if request.match_info["token"] != self.token:
            return web.json_response(BotApiError(401, "Unauthorized").body(), status=401)
        ref = self._files_by_path.get(file_path)
        if ref is None or self.local_dir is not None:  # a --local server serves files from its disk only
            return web.json_response(BotApiError(404, "Not Found").body(), status=404)
        self.downloads.append(file_path)
        return web.Response(body=ref.content, content_type=ref.mime_type or "application/octet-stream")

    def _record(self, call: ApiCall) -> None:
        self.calls.append(call)
        self._calls_changed.fire()

    def _canonical(self, method: str) -> str:
        return self._method_names.get(method.lower(), method)

    # ------------------------------------------------------------ state helpers

    def _new_file(self, content: bytes, **attributes: Any) -> FileRef:
        self._file_counter += 1
        number = self._file_counter
        return FileRef(f"BAACAgIAAxk-fake-{number:06d}", f"AgAD{number:06d}", content, **attributes)

    def _user_chat(self, chat_id: int, user: JsonDict) -> JsonDict:
        if chat_id == user["id"]:
            chat = {
                "id": chat_id,
                "type": "private",
                "first_name": user["first_name"],
                "username": user["username"],
            }
        elif chat_id < 0:
            chat = {"id": chat_id, "type": "supergroup", "title": f"Group {chat_id}"}
        else:
            raise ValueError("a private chat's id is the user's id; group chat ids are negative")
        return self.chats.setdefault(chat_id, chat)

    def _add_message(
        self, chat: JsonDict, sender: JsonDict, reply: JsonDict | None, content: JsonDict
    ) -> JsonDict:
        chat_id = chat["id"]
        message_id = self._message_ids.get(chat_id, 0) + 1
        self._message_ids[chat_id] = message_id
        message: JsonDict = {"message_id": message_id, "from": sender, "chat": chat, "date": int(time.time())}
        if reply is not None:
            message["reply_to_message"] = reply
        message.update({key: value for key, value in content.items() if value not in (None, [])})
        self.messages.setdefault(chat_id, {})[message_id] = message
        return message

    def _existing_reply(self, chat_id: int, message_id: int) -> JsonDict:
        target = self.messages.get(chat_id, {}).get(message_id)
        if target is None:
            raise ValueError(f"no message {message_id} in chat {chat_id} to reply to")
        return {k: copy.deepcopy(v) for k, v in target.items() if k != "reply_to_message"}

    def _enqueue_update(self, kind: str, payload: JsonDict) -> None:
        if self._allowed_updates and kind not in self._allowed_updates:
            return  # Telegram does not create updates of types the bot did not ask for
        self._last_update_id += 1
        self._updates.append({"update_id": self._last_update_id, kind: payload})
        self._updates_changed.fire()

    def _media_content(self, kind: str, ref: FileRef, sent: JsonDict | None = None) -> JsonDict:
        """The message fields for a file sent as `kind`; `sent` holds the sender's
        width/height/duration parameters, which Telegram reports back."""
        sent = sent or {}
        described: JsonDict = {"file_id": ref.file_id, "file_unique_id": ref.file_unique_id}
        if kind != "video_note":  # a VideoNote has no file name or MIME type in the Bot API
            described.update(
                {k: v for k, v in (("file_name", ref.file_name), ("mime_type", ref.mime_type)) if v}
            )
        described["file_size"] = ref.file_size
        media = dict(described)
        width = sent.get("width", ref.width) or 0
        duration = sent.get("duration", ref.duration) or 0
        if kind in ("video", "animation"):
            media.update(width=width, height=sent.get("height", ref.height) or 0, duration=duration)
        elif kind == "video_note":
            media.update(length=sent.get("length", width) or 0, duration=duration)
        if kind == "animation":  # the Bot API sets `document` too, for old clients
            return {"animation": media, "document": described}
        return {kind: media}

    def _file_path(self, ref: FileRef) -> str:
        path = self._file_paths.get(ref.file_id)
        if path is None:
            directory = FILE_DIRECTORIES.get(self._file_kinds.get(ref.file_id, "document"), "documents")
            suffix = ""
            if ref.file_name and "." in ref.file_name:
                suffix = "." + ref.file_name.rsplit(".", 1)[1]
            elif ref.mime_type:
                suffix = mimetypes.guess_extension(ref.mime_type) or ""
            self._path_counter += 1
            path = f"{directory}/file_{self._path_counter}{suffix}"
            if self.local_dir is not None:  # the server's own disk: <dir>/<token>/videos/file_1.mp4
                if ref.local_path is not None:
                    path = str(ref.local_path)
                else:
                    stored = self.local_dir / self.token.replace(":", "_") / path
                    stored.parent.mkdir(parents=True, exist_ok=True)
                    stored.write_bytes(ref.content)
                    path = str(stored)
            self._file_paths[ref.file_id] = path
            self._files_by_path[path] = ref
        return path

    # -------------------------------------------------------- parameter helpers

    def _target_chat(self, params: JsonDict) -> JsonDict:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise bad_request("chat_id is empty")
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise bad_request("chat not found")
        if chat_id in self._blocked:
            raise BotApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _chat_message(self, params: JsonDict, missing: str) -> JsonDict:
        if "inline_message_id" in params:
            raise bad_request("inline messages are not supported by the fake server")
        chat = self._target_chat(params)
        message_id = params.get("message_id")
        message = self.messages.get(chat["id"], {}).get(message_id) if isinstance(message_id, int) else None
        if message is None:
            raise bad_request(missing)
        return message

    def _reply_to(self, chat_id: int, params: JsonDict) -> JsonDict | None:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        if reply is None:
            return None
        if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
            raise bad_request("can't parse reply parameters JSON object")
        target = self.messages.get(reply.get("chat_id", chat_id), {}).get(reply["message_id"])
        if target is None:
            if reply.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return {k: copy.deepcopy(v) for k, v in target.items() if k != "reply_to_message"}

    @staticmethod
    def _inline_markup(params: JsonDict) -> JsonDict | None:
        """The inline keyboard a message will show; other reply markups show none on it."""
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            if {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
                return None
            raise bad_request("can't parse reply keyboard markup JSON object")
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request(
                'can\'t parse inline keyboard button: field "inline_keyboard" must be an Array of Arrays'
            )
        for button in (b for row in rows for b in row):
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request("can't parse inline keyboard button: Text must be a String")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                raise bad_request("BUTTON_DATA_INVALID")
        return {"inline_keyboard": rows}

    @staticmethod
    def _formatted(
        params: JsonDict, key: str, entities_key: str, limit: int, too_long: str
    ) -> tuple[str | None, list[Entity]]:
        raw = params.get(key)
        if raw is None:
            return None, []
        text = str(raw)
        if params.get(entities_key):
            entities = params[entities_key]
        else:
            try:
                text, entities = parse_text(text, params.get("parse_mode"))
            except EntityParseError as error:
                raise bad_request(f"can't parse entities: {error}") from None
        if len(text) > limit:
            raise bad_request(too_long)
        return text, entities

    def _message_text(self, params: JsonDict) -> tuple[str, list[Entity]]:
        text, entities = self._formatted(
            params, "text", "entities", MESSAGE_TEXT_LIMIT, "message is too long"
        )
        if text is None or not text.strip():
            raise bad_request("message text is empty")
        return text, entities

    def _caption(self, params: JsonDict) -> tuple[str | None, list[Entity]]:
        return self._formatted(
            params, "caption", "caption_entities", CAPTION_LIMIT, "message caption is too long"
        )

    def _input_file(self, params: JsonDict, kind: str) -> FileRef:
        """The file a send method names: a fresh upload (stored) or an existing file_id."""
        value = params.get(kind)
        if value is None or value == "":
            raise bad_request(f"there is no {kind} in the request")
        if isinstance(value, Upload):
            ref = self._new_file(
                value.content,
                mime_type=value.content_type or mimetypes.guess_type(value.file_name or "")[0],
                file_name=value.file_name,
                width=params.get("width"),
                height=params.get("height"),
                duration=params.get("duration"),
            )
            self._file_kinds[ref.file_id] = kind
            self.files[ref.file_id] = ref
            params[kind] = ref  # the recorded call shows what was stored
            return ref
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        if isinstance(value, str) and value.startswith("file://") and self.local_dir is not None:
            return self._local_upload(params, kind, Path(unquote(urlsplit(value).path)))
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _local_upload(self, params: JsonDict, kind: str, path: Path) -> FileRef:
        """Local mode: the bot named a file on the server's disk; the server reads it (as the real one does)."""
        if not path.is_absolute() or not path.is_file():
            raise bad_request("wrong file identifier/HTTP URL specified")
        if path.stat().st_size > self.upload_limit:
            raise BotApiError(413, "Request Entity Too Large")
        ref = self._new_file(
            path.read_bytes(),
            mime_type=mimetypes.guess_type(path.name)[0],
            file_name=path.name,
            width=params.get("width"),
            height=params.get("height"),
            duration=params.get("duration"),
            local_path=path,
        )
        self._file_kinds[ref.file_id] = kind
        self.files[ref.file_id] = ref
        params[kind] = ref
        return ref

    def _store_thumbnail(self, params: JsonDict) -> None:
        thumbnail = params.get("thumbnail")
        if isinstance(thumbnail, Upload):
            ref = self._new_file(
                thumbnail.content, mime_type=thumbnail.content_type, file_name=thumbnail.file_name
            )
            self._file_kinds[ref.file_id] = "thumbnail"
            self.files[ref.file_id] = ref
            params["thumbnail"] = ref

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope if isinstance(scope, dict) else {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    # ------------------------------------------------------------------ methods

    async def _get_me(self, params: JsonDict) -> JsonDict:
        return dict(self.bot_user)

    async def _set_webhook(self, params: JsonDict) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params)
        if not url.startswith(("https://", "http://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("bad webhook: secret token contains unallowed characters")
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": params.get("allowed_updates")}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._updates_changed.fire()  # a waiting getUpdates ends in a conflict, as on Telegram
        return True

    async def push_updates(self, secret_token: str | None = None) -> list[int]:
        """Telegram's side of webhook mode: POST each pending update to the webhook URL with the
        secret header (the one set, unless ``secret_token`` is given); a 200 confirms it. Returns
        the HTTP statuses."""
        from aiohttp import ClientSession

        assert self.webhook is not None, "no webhook is set"
        secret = self.webhook["secret_token"] if secret_token is None else secret_token
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        statuses = []
        async with ClientSession() as session:
            for update in list(self._updates):
                async with session.post(self.webhook["url"], json=update, headers=headers) as response:
                    statuses.append(response.status)
                    if response.status == 200:
                        self._updates = [u for u in self._updates if u["update_id"] != update["update_id"]]
        return statuses

    async def _delete_webhook(self, params: JsonDict) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
            self._updates_changed.fire()
        return True

    async def _get_webhook_info(self, params: JsonDict) -> JsonDict:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    async def _get_updates(self, params: JsonDict) -> list[JsonDict]:
        if self.webhook is not None:
            raise BotApiError(409, WEBHOOK_CONFLICT)
        offset = params.get("offset") or 0
        limit = min(max(int(params.get("limit") or GET_UPDATES_LIMIT), 1), GET_UPDATES_LIMIT)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        if params.get("allowed_updates") is not None:
            self._allowed_updates = list(params["allowed_updates"])
        if offset > 0:  # confirms every update before `offset`
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:  # keeps only the last -offset updates
            self._updates = self._updates[offset:]
        # A newer getUpdates ends this one with 409, as when two bot instances poll.
        self._poll_generation += 1
        generation = self._poll_generation
        token = self.token  # a poll waiting when the token is revoked ends with 401
        self._waiting_polls += 1
        self._updates_changed.fire()
        try:
            async with asyncio.timeout(timeout):
                await self._updates_changed.wait_until(
                    lambda: bool(self._updates) or self._closing or generation != self._poll_generation
                    or token != self.token
                )
        except TimeoutError:
            pass
        finally:
            self._waiting_polls -= 1
        if token != self.token:
            raise BotApiError(401, "Unauthorized")
        if self.webhook is not None:
            raise BotApiError(409, WEBHOOK_CONFLICT)
        if generation != self._poll_generation and not self._closing:
            raise BotApiError(409, GET_UPDATES_CONFLICT)
        return copy.deepcopy(self._updates[:limit])

    async def _get_file(self, params: JsonDict) -> JsonDict:
        ref = self.files.get(str(params.get("file_id", "")))
        if ref is None:
            raise bad_request("invalid file_id")
        if self.download_limit is not None and ref.file_size > self.download_limit:
            raise bad_request("file is too big")
        return {
            "file_id": ref.file_id,
            "file_unique_id": ref.file_unique_id,
            "file_size": ref.file_size,
            "file_path": self._file_path(ref),
        }

    async def _send_message(self, params: JsonDict) -> JsonDict:
        chat = self._target_chat(params)
        text, entities = self._message_text(params)
        content = {"text": text, "entities": entities, "reply_markup": self._inline_markup(params)}
        message = self._add_message(chat, self.bot_user, self._reply_to(chat["id"], params), content)
        return copy.deepcopy(message)

    async def _send_media(self, params: JsonDict, kind: str) -> JsonDict:
        chat = self._target_chat(params)
        caption, caption_entities = self._caption(params)
        reply = self._reply_to(chat["id"], params)
        markup = self._inline_markup(params)
        ref = self._input_file(params, kind)
        self._store_thumbnail(params)
        content = self._media_content(kind, ref, params)
        content.update(caption=caption, caption_entities=caption_entities, reply_markup=markup)
        return copy.deepcopy(self._add_message(chat, self.bot_user, reply, content))

    async def _send_video(self, params: JsonDict) -> JsonDict:
        return await self._send_media(params, "video")

    async def _send_animation(self, params: JsonDict) -> JsonDict:
        return await self._send_media(params, "animation")

    async def _send_document(self, params: JsonDict) -> JsonDict:
        return await self._send_media(params, "document")

    def _apply_edit(self, message: JsonDict, changes: JsonDict) -> JsonDict:
        """Applies an edit; an edit that changes nothing is refused, as Telegram does.

        Like the real API, an edit without reply_markup removes the inline keyboard.
        """
        current = {key: message.get(key) or None for key in changes}
        wanted = {key: value or None for key, value in changes.items()}
        if current == wanted:
            raise bad_request(NOT_MODIFIED.removeprefix("Bad Request: "))
        for key, value in wanted.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _editable_message(self, params: JsonDict) -> JsonDict:
        message = self._chat_message(params, "message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise bad_request("message can't be edited")
        return message

    async def _edit_message_text(self, params: JsonDict) -> JsonDict:
        message = self._editable_message(params)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        text, entities = self._message_text(params)
        return self._apply_edit(
            message, {"text": text, "entities": entities, "reply_markup": self._inline_markup(params)}
        )

    async def _edit_message_caption(self, params: JsonDict) -> JsonDict:
        message = self._editable_message(params)
        if not any(kind in message for kind in FILE_DIRECTORIES):
            raise bad_request("there is no caption in the message to edit")
        caption, entities = self._caption(params)
        return self._apply_edit(
            message,
            {"caption": caption, "caption_entities": entities, "reply_markup": self._inline_markup(params)},
        )

    async def _edit_message_reply_markup(self, params: JsonDict) -> JsonDict:
        message = self._editable_message(params)
        return self._apply_edit(message, {"reply_markup": self._inline_markup(params)})

    async def _delete_message(self, params: JsonDict) -> bool:
        message = self._chat_message(params, "message to delete not found")
        del self.messages[message["chat"]["id"]][message["message_id"]]
        return True

    async def _send_chat_action(self, params: JsonDict) -> bool:
        self._target_chat(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    async def _set_my_commands(self, params: JsonDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not isinstance(command, dict) or not BOT_COMMAND_NAME.fullmatch(
                str(command.get("command", ""))
            ):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands[key] = [{"command": c["command"], "description": c["description"]} for c in commands]
        return True

    async def _get_my_commands(self, params: JsonDict) -> list[JsonDict]:
        return self.bot_commands(params.get("scope"), str(params.get("language_code") or ""))

    async def _delete_my_commands(self, params: JsonDict) -> bool:
        self._commands.pop(self._commands_key(params.get("scope"), params.get("language_code")), None)
        return True

    async def _answer_callback_query(self, params: JsonDict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self._open_queries:
            raise bad_request(INVALID_QUERY.removeprefix("Bad Request: "))
        self._open_queries.discard(query_id)
        self.callback_answers[query_id] = {k: v for k, v in params.items() if k != "callback_query_id"}
        return True
