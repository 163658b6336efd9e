"""The one protocol between the worker and the chat platforms, and the texts of progress/results.

Telegram, Discord and the console each implement :class:`ChatReplier`; the worker never knows
which platform it is talking to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from interpolation.api import describe_fps
from interpolation.options import Progress, Result

from .commands import BEST_QUALITY_MODEL, MODEL_DISPLAY

#: What the worker hands to ``deliver``: a normal video, a silent looping animation, or a GIF file.
DeliveryKind = Literal["video", "animation", "gif"]


@dataclass(frozen=True)
class Delivery:
    """How to send a finished result: as what, with which caption, and its picture size/length."""

    kind: DeliveryKind
    caption: str
    width: int
    height: int
    duration_s: float


class DeliveryError(Exception):
    """The platform refused or failed to take the result. ``transient`` errors are worth a retry."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class JobView(Protocol):
    """The fields of a stored job that repliers need (storage's ``Job`` has them)."""

    id: int
    platform: str
    chat_id: str
    user_id: str
    message_id: str
    status_message_id: str | None


class ChatReplier(Protocol):
    platform: str
    #: True where a "GIF" is best sent as a silent MP4 animation (Telegram converts GIFs anyway).
    animations_as_mp4: bool

    def upload_limit(self, job: JobView) -> int | None:
        """Largest file, in bytes, this platform accepts for ``job``'s chat (None: no limit)."""

    async def send_status(self, job: JobView, text: str) -> str | None:
        """Show ``text`` in the job's status message (edit it; send one if there is none yet).
        Returns the status message id when a new one was sent."""

    async def deliver(self, job: JobView, path: Path, delivery: Delivery) -> str:
        """Send the result as a reply to the user's message; returns the sent message's id."""

    async def send_error(self, job: JobView, text: str) -> None:
        """Tell the user that their job failed, as a reply to their message."""


#: Fixed sentences for what went wrong on the server side; the details go to the log, never to a chat.
OUT_OF_SPACE_TEXT = "Sorry, the server is out of space right now. Please try again later."
DOWNLOAD_FAILED_TEXT = "I could not download that file. Please send it again."
ENQUEUE_FAILED_TEXT = "Sorry, I could not queue that video right now. Please try again later."
#: How /status shows a failed job: the reason was the reply to the video (stored texts are not repeated).
FAILED_STATUS_TEXT = "Failed (my reply to your video said why)"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def queued_text(position: int | None) -> str:
    return f"Queued — position {position}" if position else "Queued"


def progress_text(progress: Progress | None) -> str:
    if progress is None or progress.frames_done == 0:
        return "Smoothing… 0%"
    eta = progress.eta_s
    suffix = f" (ETA {format_duration(eta)})" if eta is not None else ""
    return f"Smoothing… {int(progress.fraction * 100)}%{suffix}"


def result_caption(result: Result, model_note: str | None = None, quality: str = "fast") -> str:
    """"25 → 60 fps, loop, 3.2 s, RIFE", then what else was done or found, then the engine's notes.

    ``quality`` is the one asked for: "best quality" is said only when the model that ran has that mode.
    """
    parts = [f"{describe_fps(result.input_fps)} → {describe_fps(result.output_fps)} fps"]
    if result.loop:
        parts.append("loop")
    parts.append(f"{result.duration_s:.1f} s")
    parts.append(MODEL_DISPLAY.get(result.model, result.model_display_name))
    if quality == "best" and result.model == BEST_QUALITY_MODEL:
        parts.append("best quality")
    lines = [", ".join(parts)]
    lines.extend(result.highlights())  # slow motion and its sound, comparison, cuts and repeats found
    if model_note:
        lines.append(model_note)
    lines.extend(result.notes)
    return "\n".join(lines)
