"""Telegram with several front-ends: which process receives the bot's updates.

Telegram hands a bot's updates to one consumer: one ``getUpdates`` long poll per token (a second
poller gets 409 Conflict), or a webhook URL. So:

- **Long polling on PostgreSQL** (``StandbyTelegramAdapter``): every front-end starts the bot (so
  it can send results, status edits and answers), but only the one holding the queue's advisory
  lock ``telegram-polling:<bot id>`` polls. The others stand by and try for the lock every
  ``SMOOTHBOT_TELEGRAM_STANDBY_RETRY_S``; when the holder dies, PostgreSQL ends its session and a
  standby takes over and polls. Updates the dead holder fetched but had not confirmed are sent
  again to the new holder: the idempotent enqueue (one job per platform message) drops them, and
  the adapter answers only new jobs. A holder whose database connection breaks stops polling and
  stands by again.
- **Webhook** (``WebhookTelegramAdapter``, ``SMOOTHBOT_TELEGRAM_WEBHOOK_URL`` +
  ``SMOOTHBOT_TELEGRAM_WEBHOOK_SECRET``): PTB's webhook server (tornado) in every front-end; any
  front-end behind the load balancer takes updates. PTB refuses a request without the secret
  token header (403). Each front-end sets the webhook at start (the same URL and secret: setting
  it again changes nothing).
- **SQLite** (one machine, one process): the plain ``TelegramAdapter``, polling at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from telegram.error import InvalidToken

from storage import ExclusiveHold
from storage.exclusive import LocalHold

from .config import Settings
from .service import ChatService
from .telegram_adapter import ALLOWED_UPDATES, TelegramAdapter

log = logging.getLogger(__name__)


def polling_lock_name(settings: Settings) -> str:
    """The lock's name: the bot's public numeric id (the token's part before ':'), never the secret part."""
    assert settings.telegram_token is not None
    return f"telegram-polling:{settings.telegram_token.get_secret_value().split(':', 1)[0]}"


def telegram_adapter(settings: Settings, service: ChatService) -> TelegramAdapter:
    """The adapter for this deployment: webhook, polling with standbys (PostgreSQL), or plain polling."""
    if settings.telegram_webhook_url is not None:
        return WebhookTelegramAdapter(settings, service)
    hold = service.queue.exclusive(polling_lock_name(settings), retry_s=settings.telegram_standby_retry_s)
    if isinstance(hold, LocalHold):
        return TelegramAdapter(settings, service)
    return StandbyTelegramAdapter(settings, service, hold)


class StandbyTelegramAdapter(TelegramAdapter):
    """Polls only while holding the polling lock; stands by otherwise (it still sends)."""

    def __init__(self, settings: Settings, service: ChatService, hold: ExclusiveHold) -> None:
        super().__init__(settings, service)
        self.hold = hold
        self._leading: asyncio.Task[None] | None = None

    async def start_updates(self) -> None:
        self._leading = asyncio.create_task(self._lead(), name="telegram-polling-lock")

    async def _lead(self) -> None:
        try:
            while True:
                log.info("Telegram: waiting for the polling lock (another front-end may be polling)")
                await self.hold.acquire()
                log.info("Telegram: this front-end holds the polling lock; polling for updates")
                await super().start_updates()
                await self.hold.wait_lost()
                log.warning("Telegram: the polling lock was lost (the database connection broke); "
                            "stopping polling and standing by")
                await self.stop_polling()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # polling could not start: exit, so that the supervisor restarts us
            log.exception("Telegram: polling could not start")
            self.polling.end(f"Telegram polling could not start: {type(error).__name__}: {error}")

    async def stop_polling(self) -> None:
        if self.app.updater is not None and self.app.updater.running:
            with contextlib.suppress(InvalidToken):
                await self.app.updater.stop()

    async def stop(self) -> None:
        if self._leading is not None:
            self._leading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._leading
        try:
            await super().stop()
        finally:
            await self.hold.release()


class WebhookTelegramAdapter(TelegramAdapter):
    """Updates arrive by HTTPS POST at ``SMOOTHBOT_TELEGRAM_WEBHOOK_URL`` (PTB's webhook server)."""

    async def start_updates(self) -> None:
        assert self.app.updater is not None
        settings = self.settings
        assert settings.telegram_webhook_url is not None and settings.telegram_webhook_secret is not None
        await self.app.updater.start_webhook(
            listen=settings.telegram_webhook_listen,
            port=settings.telegram_webhook_port,
            url_path=urlsplit(settings.telegram_webhook_url).path,
            webhook_url=settings.telegram_webhook_url,
            secret_token=settings.telegram_webhook_secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
        )
        log.info("Telegram: webhook server on %s:%d for %s", settings.telegram_webhook_listen,
                 settings.telegram_webhook_port, settings.telegram_webhook_url)
