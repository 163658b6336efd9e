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
with JSON or multipart bodies, message edits), records every request, and lets a test inject an
error answer for the next calls to a route. API reference: https://discord.com/developers/docs
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
UNKNOWN_CHANNEL, UNKNOWN_MESSAGE = 10003, 10008
MISSING_ACCESS, MISSING_PERMISSIONS, ENTITY_TOO_LARGE = 50001, 50013, 40005


@dataclass
class Request:
    """One REST request the client made, and the status it was answered with."""

    method: str
    path: str
    payload: JsonDict | None
    files: dict[str, bytes]
    status: int = 0


@dataclass
class Injected:
    status: int
    body: JsonDict
    headers: dict[str, str] = field(default_factory=dict)


class FakeDiscord:
    """The fake Discord: an aiohttp server with REST routes and a gateway websocket."""

    def __init__(self, token: str = "fake.discord.token", *, host: str = "127.0.0.1") -> None:
        self.token = token
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
        user = {"id": str(user_id), "username": f"user{user_id}", "discriminator": "0", "global_name": None,
                "avatar": None}
        self.channels[channel_id] = {"id": str(channel_id), "type": 1, "recipients": [user], "last_message_id": None}
        self.messages[channel_id] = {}
        return channel_id

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
        sequence = itertools.count(1)
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
                    ready = {"v": API_VERSION, "user": self.bot_user, "guilds": [],
                             "session_id": f"session-{self.identifies}", "resume_gateway_url": self.gateway_url, "shard": [0, 1],
                             "application": {"id": str(self.application_id), "flags": 0}}
                    await socket.send_json({"op": DISPATCH, "t": "READY", "s": next(sequence), "d": ready})
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
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return self._answer(record, 401, {"code": 0, "message": "401: Unauthorized"})
        injected = self._injected.get((request.method, path))
        if injected:
            error = injected.popleft()
            return self._answer(record, error.status, error.body, error.headers)
        status, body = self._route(request.method, path.strip("/").split("/"), payload or {})
        return self._answer(record, status, body)

    def _route(self, method: str, parts: list[str], payload: JsonDict) -> tuple[int, Any]:
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
                return self._create_message(int(channel_id), payload)
            case "PATCH", ["channels", channel_id, "messages", message_id]:
                messages = self.messages.get(int(channel_id))
                if messages is None:
                    return self._unknown_channel()
                message = messages.get(int(message_id))
                if message is None:
                    return 404, {"code": UNKNOWN_MESSAGE, "message": "Unknown Message"}
                message.update({key: payload[key] for key in ("content",) if key in payload})
                message["edited_timestamp"] = datetime.now(UTC).isoformat()
                return 200, message
        return 404, {"code": 0, "message": "404: Not Found"}

    @staticmethod
    def _unknown_channel() -> tuple[int, JsonDict]:
        return 404, {"code": UNKNOWN_CHANNEL, "message": "Unknown Channel"}

    def _create_message(self, channel_id: int, payload: JsonDict) -> tuple[int, JsonDict]:
        messages = self.messages.get(channel_id)
        if messages is None:
            return self._unknown_channel()
        message_id = next(self._ids)
        reference = payload.get("message_reference")
        message = {"id": str(message_id), "channel_id": str(channel_id), "type": 19 if reference else 0,
                   "content": payload.get("content") or "", "author": self.bot_user, "embeds": [],
                   "attachments": [], "mentions": [], "mention_roles": [], "mention_everyone": False,
                   "pinned": False, "tts": False, "timestamp": datetime.now(UTC).isoformat(),
                   "edited_timestamp": None, "flags": 0}
        if reference:
            message["message_reference"] = reference
        for index, attachment in enumerate(payload.get("attachments") or []):
            message["attachments"].append({"id": str(next(self._ids)), "size": 0,
                                           "filename": attachment.get("filename", f"file{index}"),
                                           "url": "https://cdn.invalid/x", "proxy_url": "https://cdn.invalid/x"})
        messages[message_id] = message
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
