"""What a Discord job's stored ids mean: which message and attachment it answers, and where its status lives.

A job is unique per (platform, chat, message id) in the queue, and a Discord job can come from

* a message with one or several video attachments (one job per video): ``"123"``, ``"123.2"``;
* the "Smooth this video" context menu on a message (anyone's, by this user): ``"123i456"``, ``"123.1i456"``;
* the ``/smooth`` command with an attachment (no message to reply to): ``"i456"``,

where 123 is the message, .2 the video's place among its videos (none for the first) and 456 the
interaction. The ids are text in the queue, so the encoding survives a restart: the adapter knows
after one which jobs a user started through an interaction (they may be DMed where the bot cannot post).

A status message lives in the job's channel (its id alone) or, when the bot had to fall back to a
direct message, in another channel: ``"<channel id>/<message id>"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SOURCE = re.compile(r"(?:(?P<message>[0-9]+)(?:\.(?P<index>[0-9]+))?)?(?:i(?P<interaction>[0-9]+))?")
_STATUS = re.compile(r"(?:(?P<channel>[0-9]+)/)?(?P<message>[0-9]+)")


@dataclass(frozen=True)
class Source:
    """What a job answers: a message's video (``message_id``, ``index``), through an interaction or not."""

    message_id: int | None = None
    index: int = 0
    interaction_id: int | None = None

    def __post_init__(self) -> None:
        if self.message_id is None and self.interaction_id is None:
            raise ValueError("a Discord job comes from a message, an interaction, or both")

    @property
    def from_interaction(self) -> bool:
        return self.interaction_id is not None

    def encode(self) -> str:
        text = "" if self.message_id is None else str(self.message_id)
        if self.index:
            text += f".{self.index}"
        if self.interaction_id is not None:
            text += f"i{self.interaction_id}"
        return text

    @classmethod
    def decode(cls, text: str) -> Source:
        match = _SOURCE.fullmatch(text)
        if match is None or not text:
            raise ValueError(f"not a Discord job source: {text!r}")
        message, index, interaction = match.group("message", "index", "interaction")
        return cls(int(message) if message else None, int(index or 0), int(interaction) if interaction else None)


@dataclass(frozen=True)
class StatusRef:
    """Where a status message is: ``channel_id`` None means the job's own channel."""

    message_id: int
    channel_id: int | None = None

    def encode(self) -> str:
        return str(self.message_id) if self.channel_id is None else f"{self.channel_id}/{self.message_id}"

    @classmethod
    def decode(cls, text: str) -> StatusRef:
        match = _STATUS.fullmatch(text)
        if match is None:
            raise ValueError(f"not a Discord status message: {text!r}")
        channel = match.group("channel")
        return cls(int(match.group("message")), int(channel) if channel else None)
