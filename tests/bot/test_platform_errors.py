"""The delivery error set the adapters raise and the worker acts on (bot/platform.py)."""

from __future__ import annotations

import pytest

from bot import replies
from bot.platform import (DeliveryError, RecipientGoneError, RetryAfterError, TooLargeError, TransientError,
                          error_kind)


@pytest.mark.parametrize(("error", "kind", "transient"), [
    (RetryAfterError("flood", 3), "retry_after", True),
    (TransientError("timed out"), "transient", True),
    (TooLargeError("413"), "too_large", False),
    (RecipientGoneError("blocked"), "gone", False),
    (DeliveryError("400 bad", transient=False), "refused", False),
    (DeliveryError("5xx", transient=True), "transient", True),
])
def test_every_kind_is_a_delivery_error_with_its_kind(error: DeliveryError, kind: str, transient: bool) -> None:
    assert isinstance(error, replies.DeliveryError)  # one base: older `except DeliveryError` still catches all
    assert error_kind(error) == kind
    assert error.transient is transient


def test_retry_after_keeps_the_wait_and_never_a_negative_one() -> None:
    assert RetryAfterError("flood", 2.5).retry_after_s == 2.5
    assert RetryAfterError("clock skew", -1).retry_after_s == 0.0
