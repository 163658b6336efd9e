"""A fake Discord (REST API and gateway websocket) on 127.0.0.1 for testing the real discord.py client.

dpytest replaces discord.py's HTTP client and gateway with objects in memory, so it cannot show
what the real client does when Discord answers 429, 413 or 5xx, or when the gateway connection
dies. This server speaks the wire protocol instead:

    async with FakeDiscord() as discord_:
        discord_.point_discord_py_here(monkeypatch)   # Route.BASE and the gateway URL
        client = discord.Client(intents=...)
        await client.login(discord_.token)            # GET /users/@me, /oauth2/applications/@me
        task = asyncio.create_task(client.connect())  # HELLO, IDENTIFY, READY over the websocket
        channel = discord_.add_dm(user_id=7)
        ...
        discord_.fail("POST", f"/channels/{channel}/messages", 413, code=40005, message="Request entity too large")
        await discord_.drop_gateway(4000)             # the connection dies; discord.py resumes
        await discord_.drop_gateway(4004)             # ... or gives up for good (authentication failed)

It answers the few routes a bot that sends messages needs (login, command sync, channels, messages
with JSON or multipart bodies, message edits, DM channels, attachment downloads from a CDN path),
records every request, and lets a test inject an error answer for the next calls to a route.

Interactions, as Discord runs them (https://discord.com/developers/docs/interactions/receiving-and-responding):

    guild, channel = await discord_.add_guild_channel()        # GUILD_CREATE over the gateway
    interaction = await discord_.slash("smooth", channel, user_id=7, options={"video": clip})
    message = discord_.add_message(channel, author_id=8, attachments=[clip])
    interaction = await discord_.message_command("Smooth this video", channel, message, user_id=7)
    interaction = await discord_.press(channel, message_or_id, "smooth:cancel:1", user_id=7)

Each dispatches INTERACTION_CREATE and returns a :class:`FakeInteraction` recording the callback
(type 4 message, 5 deferred, 7 update of the pressed message), the original response (edited through
``/webhooks/{app}/{token}/messages/@original``) and follow-ups. A token lasts 15 minutes on the
fake's ``clock`` (the test's, shared with the bot): after that every webhook call answers 401
Invalid Webhook Token, and an initial callback later than 3 s answers 404 Unknown Interaction.
API reference: https://discord.com/developers/docs
"""

from __future__ import annotations

import asyncio
import itertools
import json
import mimetypes
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yarl
from aiohttp import WSMsgType, web

JsonDict = dict[str, Any]

API_VERSION = 10
HEARTBEAT_INTERVAL_MS = 41_250
# Gateway opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 7, 9, 10, 11
# Discord's JSON error codes used by the tests.
UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, UNKNOWN_INTERACTION = 10003, 10008, 10062
MISSING_ACCESS, MISSING_PERMISSIONS, ENTITY_TOO_LARGE, INVALID_WEBHOOK_TOKEN = 50001, 50013, 40005, 50027
#: How long an interaction token works, and how soon its first answer must come (seconds).
TOKEN_LIFETIME_S = 15 * 60.0
INITIAL_RESPONSE_S = 3.0
EPHEMERAL = 1 << 6
#: Interaction types, and the callback types the bot answers with.
APPLICATION_COMMAND, MESSAGE_COMPONENT = 2, 3
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE = 4, 5, 6, 7
ALL_PERMISSIONS = str((1 << 50) - 1)
#: Discord's default upload limit, which interactions carry as attachment_size_limit.
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


@dataclass
class Request:
    """One REST request the client made, and the status it was answered with."""

    method: str
    path: str
    payload: JsonDict | None
    files: dict[str, bytes]
    status: int = 0


@dataclass
class FakeInteraction:
    """One interaction and everything the bot answered to it."""

    id: int
    token: str
    created_at: float  # on the fake's clock
    channel_id: int
    user_id: int
    callbacks: list[JsonDict] = field(default_factory=list)  # the initial responses (there should be one)
    original: JsonDict | None = None  # the original response message
    followups: list[JsonDict] = field(default_factory=list)
    #: Webhook calls refused because the token had expired.
    refused: int = 0

    @property
    def callback_type(self) -> int | None:
        return self.callbacks[0]["type"] if self.callbacks else None

    @property
    def ephemeral(self) -> bool:
        return self.original is not None and bool(self.original["flags"] & EPHEMERAL)

    @property
    def content(self) -> str | None:
        """What the user sees as the answer: the original response, or what a type 4/7 callback said."""
        if self.original is not None:
            return self.original["content"]
        return (self.callbacks[0].get("data") or {}).get("content") if self.callbacks else None


@dataclass
class Injected:
    status: int
    body: JsonDict
    headers: dict[str, str] = field(default_factory=dict)


class FakeDiscord:
    """The fake Discord: an aiohttp server with REST routes and a gateway websocket."""

    def __init__(self, token: str = "fake.discord.token", *, host: str = "127.0.0.1",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.token = token
        self.clock = clock
        self.host = host
        self.port = 0
        self._ids = itertools.count(1_000_000_000_000_000_000)
        self.application_id = next(self._ids)
        self.bot_user: JsonDict = {"id": str(self.application_id), "username": "smoothbot", "discriminator": "0",
                                   "global_name": None, "avatar": None, "bot": True, "flags": 0}
        self.requests: list[Request] = []
        self.channels: dict[int, JsonDict] = {}
        self.messages: dict[int, dict[int, JsonDict]] = {}  # channel id -> message id -> message
        self.commands: list[JsonDict] = []
        self.guilds: dict[int, JsonDict] = {}
        self.users: dict[int, JsonDict] = {}
        self.files: dict[int, bytes] = {}  # attachment id -> bytes, served under /cdn/
        self.interactions: dict[str, FakeInteraction] = {}  # by token
        self._sequence = itertools.count(1)
        self._pressed: dict[str, JsonDict] = {}  # a component interaction's message, by token
        self.hidden: set[int] = set()  # channels of servers the bot is not in (a user-installed app's)
        self.identifies = 0
        self.resumes = 0
        self._injected: dict[tuple[str, str], deque[Injected]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._session_changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_route("GET", "/gateway", self._gateway)
        app.router.add_route("GET", "/cdn/{attachment}/{name}", self._cdn)
        app.router.add_route("*", f"/api/v{API_VERSION}/{{path:.+}}", self._rest)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    def point_discord_py_here(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Send discord.py's REST calls and gateway connection to this server (for one test)."""
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        monkeypatch.setattr(Route, "BASE", self.api_base)
        monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(self.gateway_url))

    # ----------------------------------------------------------- test-side API

    def add_dm(self, user_id: int) -> int:
        """A direct-message channel with a user; returns its id."""
        channel_id = next(self._ids)
        self.channels[channel_id] = {"id": str(channel_id), "type": 1, "recipients": [self.user(user_id)],
                                     "last_message_id": None}
        self.messages[channel_id] = {}
        return channel_id

    def user(self, user_id: int) -> JsonDict:
        return self.users.setdefault(user_id, {"id": str(user_id), "username": f"user{user_id}", "discriminator": "0",
                                               "global_name": None, "avatar": None})

    def dm_with(self, user_id: int) -> int | None:
        return next((channel_id for channel_id, channel in self.channels.items()
                     if channel["type"] == 1 and channel["recipients"][0]["id"] == str(user_id)), None)

    async def add_guild_channel(self, *, bot_member: bool = True) -> tuple[int, int]:
        """A server with one text channel; returns (guild id, channel id). With ``bot_member`` the bot is
        in it (GUILD_CREATE goes to the connected client); without, the app can only be user-installed
        there: the channel's routes answer 403 Missing Access."""
        guild_id, channel_id = next(self._ids), next(self._ids)
        channel = {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": "videos", "position": 0,
                   "permission_overwrites": [], "nsfw": False, "parent_id": None, "last_message_id": None}
        guild = {"id": str(guild_id), "name": "a server", "owner_id": "1", "icon": None, "features": [],
                 "roles": [{"id": str(guild_id), "name": "@everyone", "permissions": ALL_PERMISSIONS, "position": 0,
                            "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}],
                 "channels": [channel], "threads": [], "members": [], "member_count": 2, "emojis": [],
                 "stickers": [], "voice_states": [], "presences": [], "large": False, "unavailable": False,
                 "premium_tier": 0, "mfa_level": 0, "verification_level": 0, "explicit_content_filter": 0,
                 "default_message_notifications": 0, "system_channel_flags": 0, "preferred_locale": "en-US",
                 "joined_at": datetime.now(UTC).isoformat()}
        self.guilds[guild_id] = guild
        self.messages[channel_id] = {}
        if bot_member:
            self.channels[channel_id] = channel
            await self.dispatch("GUILD_CREATE", guild)
        else:
            self.messages.pop(channel_id)
            self.hidden.add(channel_id)
        return guild_id, channel_id

    def add_message(self, channel_id: int, author_id: int, content: str = "",
                    attachments: tuple[Path, ...] | list[Path] = ()) -> JsonDict:
        """A user's message in a channel, with files uploaded as attachments (served from /cdn/)."""
        message_id = next(self._ids)
        message = self._message(message_id, channel_id, self.user(author_id), content)
        message["attachments"] = [self.attachment(path) for path in attachments]
        self.messages.setdefault(channel_id, {})[message_id] = message
        return message

    def attachment(self, path: Path) -> JsonDict:
        attachment_id = next(self._ids)
        self.files[attachment_id] = path.read_bytes()
        url = f"http://{self.host}:{self.port}/cdn/{attachment_id}/{path.name}"
        return {"id": str(attachment_id), "filename": path.name, "size": len(self.files[attachment_id]),
                "url": url, "proxy_url": url, "content_type": mimetypes.guess_type(path.name)[0]}

    def message(self, message_id: int) -> JsonDict | None:
        """A message by id: in a channel, or an interaction's (ephemeral) response or follow-up."""
        for messages in self.messages.values():
            if message_id in messages:
                return messages[message_id]
        for interaction in self.interactions.values():
            for message in [interaction.original, *interaction.followups]:
                if message is not None and int(message["id"]) == message_id:
                    return message
        return None

    # ----------------------------------------------------------- interactions

    async def slash(self, name: str, channel_id: int, user_id: int, options: dict[str, Any] | None = None,
                    locale: str = "en-US") -> FakeInteraction:
        """A slash command; a Path among the options is uploaded as an attachment option."""
        resolved: JsonDict = {}
        values = []
        for key, value in (options or {}).items():
            if isinstance(value, Path):
                attachment = self.attachment(value)
                resolved.setdefault("attachments", {})[attachment["id"]] = attachment
                values.append({"name": key, "type": 11, "value": attachment["id"]})
            else:
                kind = {bool: 5, int: 4, float: 10, str: 3}[type(value)]
                values.append({"name": key, "type": kind, "value": value})
        data = {"id": str(next(self._ids)), "name": name, "type": 1, "options": values, "resolved": resolved}
        return await self.interact(APPLICATION_COMMAND, data, channel_id, user_id, locale=locale)

    async def message_command(self, name: str, channel_id: int, message: JsonDict, user_id: int,
                              locale: str = "en-US") -> FakeInteraction:
        """A message context menu command on ``message`` (Apps → name)."""
        data = {"id": str(next(self._ids)), "name": name, "type": 3, "target_id": message["id"],
                "resolved": {"messages": {message["id"]: message}}}
        return await self.interact(APPLICATION_COMMAND, data, channel_id, user_id, locale=locale)

    async def press(self, channel_id: int, message_id: int, custom_id: str, user_id: int,
                    values: list[str] | None = None) -> FakeInteraction:
        """A press on a button (or a choice in a select menu, with ``values``) of a message."""
        message = self.message(message_id)
        if message is None:
            raise KeyError(f"no message {message_id}")
        data: JsonDict = {"custom_id": custom_id, "component_type": 2 if values is None else 3}
        if values is not None:
            data["values"] = values
        return await self.interact(MESSAGE_COMPONENT, data, channel_id, user_id, message=message)

    async def interact(self, kind: int, data: JsonDict, channel_id: int, user_id: int, *,
                       message: JsonDict | None = None, locale: str = "en-US") -> FakeInteraction:
        interaction = FakeInteraction(next(self._ids), f"interaction-token-{next(self._ids)}", self.clock(),
                                      channel_id, user_id)
        self.interactions[interaction.token] = interaction
        payload: JsonDict = {
            "id": str(interaction.id), "application_id": str(self.application_id), "type": kind,
            "token": interaction.token, "version": 1, "channel_id": str(channel_id), "data": data,
            "locale": locale, "app_permissions": ALL_PERMISSIONS, "entitlements": [], "context": 1,
            "authorizing_integration_owners": {"1": str(user_id)},
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            "channel": {"id": str(channel_id), "type": 1}}
        guild_id = self._guild_of(channel_id)
        if guild_id is not None:
            payload |= {"guild_id": str(guild_id), "guild_locale": "en-US", "context": 0,
                        "channel": {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": "videos",
                                    "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None,
                                    "permissions": ALL_PERMISSIONS},
                        "authorizing_integration_owners": {"0": str(guild_id), "1": str(user_id)},
                        "member": {"user": self.user(user_id), "roles": [], "flags": 0, "deaf": False,
                                   "mute": False, "joined_at": datetime.now(UTC).isoformat(),
                                   "permissions": ALL_PERMISSIONS}}
        else:
            payload["user"] = self.user(user_id)
        if message is not None:
            payload["message"] = message
            self._pressed[interaction.token] = message
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    def _guild_of(self, channel_id: int) -> int | None:
        for guild_id, guild in self.guilds.items():
            if any(channel["id"] == str(channel_id) for channel in guild["channels"]):
                return guild_id
        return None

    async def wait_until(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        async with asyncio.timeout(timeout):
            while not (found := condition()):
                await asyncio.sleep(0.02)
        return found

    async def dispatch(self, event: str, data: JsonDict) -> None:
        """Send a gateway event to every connected client."""
        for socket in list(self._sockets):
            await socket.send_json({"op": DISPATCH, "t": event, "s": next(self._sequence), "d": data})

    def remove_channel(self, channel_id: int) -> None:
        """The channel is deleted: its routes answer 404 Unknown Channel."""
        self.channels.pop(channel_id, None)
        self.messages.pop(channel_id, None)

    def fail(self, method: str, path: str, status: int, *, code: int = 0, message: str = "", times: int = 1,
             retry_after: float | None = None) -> None:
        """The next `times` requests to `method path` (e.g. "POST", "/channels/1/messages") get this error."""
        body: JsonDict = {"code": code, "message": message or f"error {status}"}
        headers = {}
        if retry_after is not None:  # a rate limit, as Discord (behind Google's proxy) sends it
            body |= {"retry_after": retry_after, "global": False}
            headers = {"Via": "1.1 google", "X-RateLimit-Scope": "user", "Retry-After": str(int(retry_after) + 1)}
        queue = self._injected.setdefault((method.upper(), path), deque())
        queue.extend(Injected(status, body, headers) for _ in range(times))

    def requests_to(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    async def wait_for_session(self, identifies: int = 1, resumes: int = 0, timeout: float = 10.0) -> None:
        """Until the gateway saw at least this many IDENTIFYs and RESUMEs."""
        async with asyncio.timeout(timeout):
            while self.identifies < identifies or self.resumes < resumes:
                self._session_changed.clear()
                await self._session_changed.wait()

    async def drop_gateway(self, code: int) -> None:
        """Close the open gateway connections with a close code (4000: resumable; 4004: for good)."""
        for socket in list(self._sockets):
            await socket.close(code=code, message=b"closed by the fake")

    # --------------------------------------------------------------- gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._sockets.append(socket)
        sequence = self._sequence
        try:
            await socket.send_json({"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            async for frame in socket:
                if frame.type is not WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                op = message.get("op")
                if op == HEARTBEAT:
                    await socket.send_json({"op": HEARTBEAT_ACK, "d": None})
                elif op == IDENTIFY:
                    if message["d"].get("token") != self.token:
                        await socket.close(code=4004, message=b"Authentication failed.")
                        break
                    self.identifies += 1
                    joined = [guild for guild in self.guilds.values()
                              if any(int(channel["id"]) in self.channels for channel in guild["channels"])]
                    ready = {"v": API_VERSION, "user": self.bot_user,
                             "guilds": [{"id": guild["id"], "unavailable": True} for guild in joined],
                             "session_id": f"session-{self.identifies}", "resume_gateway_url": self.gateway_url, "shard": [0, 1],
                             "application": {"id": str(self.application_id), "flags": 0}}
                    await socket.send_json({"op": DISPATCH, "t": "READY", "s": next(sequence), "d": ready})
                    for guild in joined:  # the servers the bot is in, as Discord sends them after READY
                        await socket.send_json({"op": DISPATCH, "t": "GUILD_CREATE", "s": next(sequence), "d": guild})
                elif op == RESUME:
                    self.resumes += 1
                    await socket.send_json({"op": DISPATCH, "t": "RESUMED", "s": next(sequence), "d": {}})
                self._session_changed.set()
        finally:
            self._sockets.remove(socket)
        return socket

    # ------------------------------------------------------------------ REST

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        payload, files = await self._read_body(request)
        record = Request(request.method, path, payload, files)
        self.requests.append(record)
        parts = path.strip("/").split("/")
        # Interaction callbacks and follow-ups authenticate by the interaction's token in the path.
        by_token = parts[0] == "interactions" or (parts[0] == "webhooks" and len(parts) >= 3)
        if not by_token and request.headers.get("Authorization") != f"Bot {self.token}":
            return self._answer(record, 401, {"code": 0, "message": "401: Unauthorized"})
        injected = self._injected.get((request.method, path))
        if injected:
            error = injected.popleft()
            return self._answer(record, error.status, error.body, error.headers)
        if by_token:
            status, body = self._interaction_route(request.method, parts, payload or {}, files)
        else:
            status, body = self._route(request.method, parts, payload or {}, files)
        return self._answer(record, status, body)

    async def _cdn(self, request: web.Request) -> web.Response:
        data = self.files.get(int(request.match_info["attachment"]))
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    def _interaction_route(self, method: str, parts: list[str], payload: JsonDict,
                           files: dict[str, bytes]) -> tuple[int, Any]:
        token = parts[2]
        interaction = self.interactions.get(token)
        if interaction is None:
            return 404, {"code": UNKNOWN_INTERACTION, "message": "Unknown interaction"}
        age = self.clock() - interaction.created_at
        if parts[0] == "interactions":
            if age > INITIAL_RESPONSE_S or interaction.callbacks:
                return 404, {"code": UNKNOWN_INTERACTION, "message": "Unknown interaction"}
            return self._callback(interaction, payload, files)
        if age >= TOKEN_LIFETIME_S:
            interaction.refused += 1
            return 401, {"code": INVALID_WEBHOOK_TOKEN, "message": "Invalid Webhook Token"}
        match method, parts[3:]:
            case "PATCH" | "GET", ["messages", "@original"]:
                if interaction.original is None:
                    return 404, {"code": UNKNOWN_MESSAGE, "message": "Unknown Message"}
                if method == "PATCH":
                    self._edit(interaction.original, payload, files)
                return 200, interaction.original
            case "POST", []:
                flags = int(payload.get("flags") or 0)
                message = self._message(next(self._ids), interaction.channel_id, self.bot_user,
                                        payload.get("content") or "", flags=flags, webhook=True)
                self._edit(message, payload, files)
                interaction.followups.append(message)
                if not flags & EPHEMERAL and interaction.channel_id in self.messages:
                    self.messages[interaction.channel_id][int(message["id"])] = message
                return 200, message
            case "PATCH", ["messages", message_id]:
                message = next((m for m in interaction.followups if m["id"] == message_id), None)
                if message is None:
                    return 404, {"code": UNKNOWN_MESSAGE, "message": "Unknown Message"}
                self._edit(message, payload, files)
                return 200, message
        return 404, {"code": 0, "message": "404: Not Found"}

    def _callback(self, interaction: FakeInteraction, payload: JsonDict, files: dict[str, bytes]) -> tuple[int, Any]:
        interaction.callbacks.append(payload)
        kind, data = payload["type"], payload.get("data") or {}
        message = None
        if kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            flags = int(data.get("flags") or 0)
            message = self._message(next(self._ids), interaction.channel_id, self.bot_user,
                                    data.get("content") or "", flags=flags, webhook=True)
            self._edit(message, data, files)
            interaction.original = message
            if not flags & EPHEMERAL and interaction.channel_id in self.messages:
                self.messages[interaction.channel_id][int(message["id"])] = message
        elif kind == UPDATE_MESSAGE:  # the message whose component was used
            message = self._pressed.get(interaction.token)
            if message is not None:
                self._edit(message, data, files)
        answer: JsonDict = {"interaction": {
            "id": str(interaction.id), "type": APPLICATION_COMMAND,
            "response_message_loading": kind == DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(message is not None and message["flags"] & EPHEMERAL)}}
        if message is not None:
            answer["interaction"]["response_message_id"] = message["id"]
            answer["resource"] = {"type": kind, "message": message}
        return 200, answer

    def _message(self, message_id: int, channel_id: int, author: JsonDict, content: str, *, flags: int = 0,
                 webhook: bool = False) -> JsonDict:
        message = {"id": str(message_id), "channel_id": str(channel_id), "type": 0, "content": content,
                   "author": author, "embeds": [], "attachments": [], "components": [], "mentions": [],
                   "mention_roles": [], "mention_everyone": False, "pinned": False, "tts": False,
                   "timestamp": datetime.now(UTC).isoformat(), "edited_timestamp": None, "flags": flags}
        if webhook:
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
        return message

    def _edit(self, message: JsonDict, payload: JsonDict, files: dict[str, bytes]) -> None:
        for key in ("content", "components", "allowed_mentions"):
            if key in payload:
                message[key] = payload[key] if payload[key] is not None else ([] if key == "components" else "")
        for name, data in files.items():
            attachment_id = next(self._ids)
            self.files[attachment_id] = data
            message["attachments"].append({"id": str(attachment_id), "filename": name, "size": len(data),
                                           "url": f"http://{self.host}:{self.port}/cdn/{attachment_id}/{name}",
                                           "proxy_url": "https://cdn.invalid/x"})

    def _route(self, method: str, parts: list[str], payload: JsonDict, files: dict[str, bytes]) -> tuple[int, Any]:
        if parts[0] == "channels" and int(parts[1]) in self.hidden:
            return 403, {"code": MISSING_ACCESS, "message": "Missing Access"}
        match method, parts:
            case "GET", ["users", "@me"]:
                return 200, self.bot_user
            case "GET", ["oauth2", "applications", "@me"]:
                return 200, {"id": str(self.application_id), "name": "smoothbot", "icon": None, "description": "",
                             "bot_public": True, "bot_require_code_grant": False, "verify_key": "00" * 32,
                             "owner": self.bot_user | {"bot": False}, "flags": 0}
            case "PUT", ["applications", _, "commands"]:
                self.commands = list(payload) if isinstance(payload, list) else []
                return 200, [{"description": ""} | command | {"id": str(next(self._ids)), "version": "1",
                                                            "application_id": str(self.application_id),
                                                            "type": command.get("type", 1)}
                             for command in self.commands]
            case "GET", ["gateway", "bot"]:
                return 200, {"url": self.gateway_url, "shards": 1,
                             "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0,
                                                     "max_concurrency": 1}}
            case "GET", ["channels", channel_id]:
                channel = self.channels.get(int(channel_id))
                return (200, channel) if channel else self._unknown_channel()
            case "POST", ["channels", channel_id, "messages"]:
                return self._create_message(int(channel_id), payload, files)
            case "POST", ["users", "@me", "channels"]:
                recipient = int(payload["recipient_id"])
                return 200, self.channels[self.dm_with(recipient) or self.add_dm(recipient)]
            case "GET", ["users", user_id]:
                return 200, self.user(int(user_id))
            case "PATCH", ["channels", channel_id, "messages", message_id]:
                messages = self.messages.get(int(channel_id))
                if messages is None:
                    return self._unknown_channel()
                message = messages.get(int(message_id))
                if message is None:
                    return 404, {"code": UNKNOWN_MESSAGE, "message": "Unknown Message"}
                self._edit(message, payload, files)
                message["edited_timestamp"] = datetime.now(UTC).isoformat()
                return 200, message
        return 404, {"code": 0, "message": "404: Not Found"}

    @staticmethod
    def _unknown_channel() -> tuple[int, JsonDict]:
        return 404, {"code": UNKNOWN_CHANNEL, "message": "Unknown Channel"}

    def _create_message(self, channel_id: int, payload: JsonDict, files: dict[str, bytes]) -> tuple[int, JsonDict]:
        messages = self.messages.get(channel_id)
        if messages is None:
            return self._unknown_channel()
        message = self._message(next(self._ids), channel_id, self.bot_user, payload.get("content") or "")
        reference = payload.get("message_reference")
        if reference:
            message |= {"type": 19, "message_reference": reference}
        self._edit(message, payload, files)
        messages[int(message["id"])] = message
        return 200, message

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, dict[str, bytes]]:
        files: dict[str, bytes] = {}
        if request.content_type == "multipart/form-data":
            payload = None
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()
                if part.name == "payload_json":
                    payload = json.loads(data)
                else:
                    files[part.filename or part.name or "file"] = bytes(data)
            return payload, files
        if request.can_read_body:
            body = await request.read()
            return (json.loads(body) if body else None), files
        return None, files

    def _answer(self, record: Request, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        record.status = status
        headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "1",
                   "X-RateLimit-Bucket": "fake-bucket"} | (headers or {})
        if status == 429:
            headers["X-RateLimit-Remaining"] = "0"
        # discord.py decodes a body only when the content type is exactly "application/json", as Discord sends it.
        headers["Content-Type"] = "application/json"
        return web.Response(body=json.dumps(body).encode(), status=status, headers=headers)
