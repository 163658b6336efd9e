"""What a chat platform adapter is to the service: a :class:`ChatReplier` that can start and stop."""

from __future__ import annotations

from typing import Protocol

from .replies import ChatReplier


class PlatformAdapter(ChatReplier, Protocol):
    async def start(self) -> None:
        """Connect and begin receiving messages (returns once running)."""

    async def stop(self) -> None:
        """Stop receiving and disconnect; safe to call once after ``start``."""
