"""What a chat platform adapter is to the service, and how it tells the worker that a send failed.

An adapter is a :class:`ChatReplier` that can start and stop (:class:`PlatformAdapter`).

Delivery failures
-----------------
Every ``ChatReplier`` call that sends something (``deliver``, ``send_error``, ``send_status``) maps
the platform library's exceptions (PTB's ``RetryAfter``/``Forbidden``/``TimedOut``…, discord.py's
``RateLimited``/``Forbidden``/``NotFound``/``HTTPException``…) onto this small set, so the worker
decides what to do without knowing the platform. The message of each is for the log (it may quote
the platform's own error text); the worker never shows it to the user verbatim.

=========================== ================ ==================================================
exception                   ``kind``         what the worker does
=========================== ================ ==================================================
:class:`RetryAfterError`    ``retry_after``  waits ``retry_after_s`` (Telegram ``RetryAfter``,
                                             Discord 429 ``retry_after``), then tries again
:class:`TransientError`     ``transient``    tries again with a growing pause (timeouts, lost
                                             connections, HTTP 5xx)
:class:`TooLargeError`      ``too_large``    re-fits the result to a smaller size budget and
                                             sends that (Telegram 413 "Request Entity Too
                                             Large", Discord 413 / error 40005)
:class:`RecipientGoneError` ``gone``         gives up at once, no retries, and does not try to
                                             tell the user (blocked the bot, kicked, chat or
                                             channel deleted, no permission to post): the job
                                             is recorded as failed to deliver and logged
:class:`DeliveryError`      ``refused``      any other refusal (a 400 that retrying cannot
                                             fix): no retry, the user is told it failed
=========================== ================ ==================================================

``DeliveryError`` is the base of all of them (``except DeliveryError`` catches every kind) and
``transient`` says whether trying the same call again may work. The base class lives in
:mod:`bot.replies` for older imports; import all of them from here.
"""

from __future__ import annotations

from typing import Literal, Protocol

from .replies import ChatReplier, DeliveryError

__all__ = ["DeliveryError", "DeliveryErrorKind", "PlatformAdapter", "RecipientGoneError", "RetryAfterError",
           "TooLargeError", "TransientError", "error_kind"]

DeliveryErrorKind = Literal["retry_after", "transient", "too_large", "gone", "refused"]


class TransientError(DeliveryError):
    """The platform did not answer or failed on its side (timeout, connection reset, HTTP 5xx)."""

    kind: DeliveryErrorKind = "transient"

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True)


class RetryAfterError(DeliveryError):
    """The platform asked us to wait ``retry_after_s`` seconds before the next call (flood control)."""

    kind: DeliveryErrorKind = "retry_after"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, transient=True)
        self.retry_after_s = max(0.0, float(retry_after_s))


class TooLargeError(DeliveryError):
    """The platform refused the file as too large, although it was fitted to the announced limit."""

    kind: DeliveryErrorKind = "too_large"

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


class RecipientGoneError(DeliveryError):
    """Nobody can be reached there any more: the user blocked the bot, the bot was removed or may
    not post, or the chat/channel was deleted. Never retried; no failure message is attempted."""

    kind: DeliveryErrorKind = "gone"

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


def error_kind(error: DeliveryError) -> DeliveryErrorKind:
    """The kind of any :class:`DeliveryError`, including base instances raised as ``transient=True``."""
    kind = getattr(error, "kind", None)
    if kind is not None:
        return kind
    return "transient" if error.transient else "refused"


class PlatformAdapter(ChatReplier, Protocol):
    async def start(self) -> None:
        """Connect and begin receiving messages (returns once running)."""

    async def stop(self) -> None:
        """Stop receiving and disconnect; safe to call once after ``start``."""

    async def wait_lost(self) -> None:
        """Returns only if the connection ended for good after ``start`` (no more reconnecting)."""
