"""Checks and encodings for the values callers hand to storage (platforms, ids, JSON objects, time)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, get_args

Platform = Literal["telegram", "discord", "console"]
PLATFORMS: frozenset[str] = frozenset(get_args(Platform))

PlatformId = str | int
"""Telegram ids are integers, Discord snowflakes are integers too big for some clients, the console
uses names: storage keeps every id as TEXT, so callers may pass either and always get ``str`` back."""

Clock = Callable[[], float]
"""Returns the current time as POSIX seconds (``time.time``); injectable so tests need not sleep."""


def platform_name(value: str) -> str:
    if value not in PLATFORMS:
        raise ValueError(f"unknown platform {value!r}; expected one of {sorted(PLATFORMS)}")
    return value


def id_text(value: PlatformId, what: str) -> str:
    """Normalise a chat/user/message id to its text form (``123`` and ``"123"`` are the same id)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{what} must be a str or int, not {type(value).__name__}")
    text = str(value)
    if not text or text != text.strip():
        raise ValueError(f"{what} must be a non-empty id without surrounding spaces, got {value!r}")
    return text


def optional_id_text(value: PlatformId | None, what: str) -> str | None:
    return None if value is None else id_text(value, what)


def path_text(value: str | os.PathLike[str], what: str) -> str:
    text = os.fspath(value)
    if not isinstance(text, str) or not text:
        raise ValueError(f"{what} must be a non-empty path, got {value!r}")
    return text


def encode_json_object(value: Mapping[str, Any], what: str) -> str:
    """Encode a dict that storage keeps but does not interpret (job options, chat settings)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping, not {type(value).__name__}")
    bad_keys = [key for key in value if not isinstance(key, str)]
    if bad_keys:
        raise TypeError(f"{what} keys must be strings, got {bad_keys!r}")
    try:
        return json.dumps(dict(value), allow_nan=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise TypeError(f"{what} must be JSON-serialisable: {error}") from None


def decode_json_object(text: str) -> dict[str, Any]:
    decoded = json.loads(text)
    if not isinstance(decoded, dict):
        raise ValueError(f"expected a JSON object, found {type(decoded).__name__}")
    return decoded


def fraction(value: float) -> float:
    """A progress value clamped to [0, 1] (engines may overshoot by rounding); NaN is a bug."""
    number = float(value)
    if math.isnan(number):
        raise ValueError("progress must be a number between 0 and 1, got NaN")
    return min(1.0, max(0.0, number))


def to_datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)
