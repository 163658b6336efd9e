"""Telegram albums: the videos of one media group arrive as separate messages (separate updates) that
share a ``media_group_id``, with no marker for the last one. They are collected until none has come
for a short window, then handled together, so that the album's one caption applies to every video.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable

from telegram import Message

log = logging.getLogger(__name__)

#: Seconds without a new item after which an album counts as complete. Telegram sends an album's items
#: within a fraction of a second of each other; a user waits this long more for the first answer.
ALBUM_WINDOW_S = 1.0

AlbumHandler = Callable[[list[Message]], Awaitable[None]]


class AlbumCollector:
    """Collects each (chat, media group)'s messages and hands them to ``handle`` in message order.

    ``handle`` runs in the context of the first item's update (its language, bot/i18n.py); its errors
    are logged. :meth:`close` hands over what is still collecting at once and waits for every handler.
    """

    def __init__(self, handle: AlbumHandler, window_s: float = ALBUM_WINDOW_S) -> None:
        self.handle = handle
        self.window_s = window_s
        self._items: dict[tuple[int, str], list[Message]] = {}
        self._timers: dict[tuple[int, str], asyncio.TimerHandle] = {}
        self._contexts: dict[tuple[int, str], contextvars.Context] = {}
        self._running: set[asyncio.Task[None]] = set()

    def add(self, message: Message) -> None:
        """One item of an album (``message.media_group_id`` is set); the window starts again."""
        key = (message.chat_id, str(message.media_group_id))
        self._items.setdefault(key, []).append(message)
        self._contexts.setdefault(key, contextvars.copy_context())
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(self.window_s, self._complete, key)

    def _complete(self, key: tuple[int, str]) -> None:
        self._timers.pop(key, None)
        items = sorted(self._items.pop(key, []), key=lambda message: message.message_id)
        context = self._contexts.pop(key)
        if items:
            task = asyncio.get_running_loop().create_task(self._run(items), context=context)
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, items: list[Message]) -> None:
        try:
            await self.handle(items)
        except Exception:
            log.exception("album of %d videos in chat %s could not be handled", len(items), items[0].chat_id)

    async def close(self) -> None:
        """Hand over every album still collecting, and wait until all handlers are done."""
        for key, timer in list(self._timers.items()):
            timer.cancel()
            self._complete(key)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
