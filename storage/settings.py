"""Per-chat settings (the defaults a chat set with /fps, /loop, /gif, /model …), in the queue's database
(implemented once for both engines by ``storage.rules.SqlChatSettings``).

Settings are a JSON object that storage keeps but does not interpret: the bot owns the keys and
their meaning, so a new setting needs no migration.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from storage.values import PlatformId


class ChatSettingsStore(ABC):
    @abstractmethod
    async def get(self, platform: str, chat_id: PlatformId) -> dict[str, Any]:
        """The chat's settings; ``{}`` for a chat that never changed any."""

    @abstractmethod
    async def update(self, platform: str, chat_id: PlatformId, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the chat's settings (a ``None`` value removes that key); returns the result."""
