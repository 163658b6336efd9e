"""What the worker hands a ChatReplier, for tests that call an adapter's sends directly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.replies import Delivery

#: A finished video as the worker describes it to ``deliver``.
VIDEO = Delivery(kind="video", caption="25 → 50 fps, 1.0 s, blend", width=96, height=64, duration_s=1.0)


@dataclass
class JobStub:
    """The fields of a stored job that repliers read (storage's Job has them all)."""

    chat_id: str
    platform: str
    user_id: str
    id: int = 1
    message_id: str = "1"
    status_message_id: str | None = None


def result_file(directory: Path, size: int) -> Path:
    """A "result" of ``size`` bytes: the fakes take any bytes; only sizes and answers matter."""
    path = directory / "smooth.mp4"
    path.write_bytes(b"\0" * size)
    return path
