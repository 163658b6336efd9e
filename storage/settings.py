"""Per-chat settings (the defaults a chat set with /fps, /loop, /gif, /model …), in the queue's database.

Settings are a JSON object that storage keeps but does not interpret: the bot owns the keys and
their meaning, so a new setting needs no migration.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import aiosqlite

from storage.db import Database
from storage.values import PlatformId, decode_json_object, encode_json_object, id_text, platform_name


class ChatSettingsStore(ABC):
    @abstractmethod
    async def get(self, platform: str, chat_id: PlatformId) -> dict[str, Any]:
        """The chat's settings; ``{}`` for a chat that never changed any."""

    @abstractmethod
    async def update(self, platform: str, chat_id: PlatformId, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the chat's settings (a ``None`` value removes that key); returns the result."""


class SqliteChatSettings(ChatSettingsStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, platform: str, chat_id: PlatformId) -> dict[str, Any]:
        key = (platform_name(platform), id_text(chat_id, "chat_id"))
        rows = await self._db.read(
            lambda conn: conn.execute_fetchall(
                "SELECT settings FROM chat_settings WHERE platform = ? AND chat_id = ?", key
            )
        )
        return decode_json_object(rows[0]["settings"]) if rows else {}

    async def update(self, platform: str, chat_id: PlatformId, changes: Mapping[str, Any]) -> dict[str, Any]:
        key = (platform_name(platform), id_text(chat_id, "chat_id"))
        encode_json_object(changes, "settings changes")  # refuse bad values before touching the row

        async def body(conn: aiosqlite.Connection) -> dict[str, Any]:
            rows = await conn.execute_fetchall(
                "SELECT settings FROM chat_settings WHERE platform = ? AND chat_id = ?", key
            )
            merged = decode_json_object(rows[0]["settings"]) if rows else {}
            for name, value in changes.items():
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = value
            await conn.execute_fetchall(
                "INSERT INTO chat_settings (platform, chat_id, settings, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (platform, chat_id) DO UPDATE SET "
                "settings = excluded.settings, updated_at = excluded.updated_at",
                (*key, encode_json_object(merged, "chat settings"), self._db.now()),
            )
            return merged

        return await self._db.write(body)
