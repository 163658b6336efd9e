"""The one protocol between the worker and the chat platforms, and the texts of progress/results.

Telegram, Discord and the console each implement :class:`ChatReplier`; the worker never knows
which platform it is talking to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from interpolation.api import describe_fps
from interpolation.options import Progress, Result
from interpolation.texts import Note
from storage.queue import GAVE_UP_MESSAGE

from .commands import BEST_QUALITY_MODEL, COMPARE_DISPLAY, MODEL_DISPLAY, model_name
from .i18n import N_, _, ngettext

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
#: These are message ids: send them as ``_(OUT_OF_SPACE_TEXT)``.
GENERIC_FAILURE = N_("Sorry, something went wrong on my side while smoothing this video. "
                     "Please try again later.")
OUT_OF_SPACE_TEXT = N_("Sorry, the server is out of space right now. Please try again later.")
DOWNLOAD_FAILED_TEXT = N_("I could not download that file. Please send it again.")
ENQUEUE_FAILED_TEXT = N_("Sorry, I could not queue that video right now. Please try again later.")
#: How /status shows a failed job: the reason was the reply to the video (stored texts are not repeated).
FAILED_STATUS_TEXT = N_("Failed (my reply to your video said why)")


#: storage's sentence for a job it gave up on after interrupted attempts (GAVE_UP_MESSAGE, "%d" the count).
GAVE_UP_PATTERN = re.compile(re.escape(GAVE_UP_MESSAGE).replace("%d", r"(?P<count>\d+)"))


def stored_failure_text(error: str) -> str:
    """A failure as the queue stored it, for the user in the current language: the bot's own texts were
    stored in that language already; storage's gave-up sentence is said again through the catalogues."""
    gave_up = GAVE_UP_PATTERN.fullmatch(error)
    if gave_up is None:
        return error
    count = int(gave_up["count"])
    return ngettext("Sorry, I could not finish this video: processing was interrupted {count} time, so I gave up "
                    "on it. A shorter or smaller clip may work.",
                    "Sorry, I could not finish this video: processing was interrupted {count} times, so I gave up "
                    "on it. A shorter or smaller clip may work.", count).format(count=count)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def queued_text(position: int | None) -> str:
    return _("Queued — position {position}").format(position=position) if position else _("Queued")


def progress_text(progress: Progress | None) -> str:
    if progress is not None and progress.stage == "adapting":
        return _("Adapting the model to this clip… {percent}%").format(percent=int(progress.fraction * 100))
    if progress is None or progress.frames_done == 0:
        return _("Smoothing… {percent}%").format(percent=0)
    percent = int(progress.fraction * 100)
    if progress.eta_s is None:
        return _("Smoothing… {percent}%").format(percent=percent)
    return _("Smoothing… {percent}% (ETA {eta})").format(percent=percent, eta=format_duration(progress.eta_s))


def engine_text(text: str) -> str:
    """A sentence of the engine in the current language: a :class:`Note` through the catalogues, any
    other text as it is (English)."""
    return _(text.template).format(**text.values) if isinstance(text, Note) else text


#: How slow motion's sound is described, by what the engine did with it (message ids; ``factor`` is "4×").
SLOWMO_SOUND_TEXTS = {
    "slowed": N_("{factor} slow motion, audio slowed {factor}, pitch kept"),
    "dropped": N_("{factor} slow motion, audio dropped"),
    "kept": N_("{factor} slow motion, audio kept"),
    "none": N_("{factor} slow motion, no audio"),
}


def result_highlights(result: Result) -> list[str]:
    """The engine's ``Result.highlights()`` in the current language: slow motion and its sound, the
    comparison, the scene cuts and repeated frames found."""
    lines = []
    if result.slowmo is not None:
        lines.append(_(SLOWMO_SOUND_TEXTS[result.audio]).format(factor=f"{float(result.slowmo):g}×"))
    if result.compare is not None:
        lines.append(_("before/after comparison ({layout})").format(layout=_(COMPARE_DISPLAY[result.compare])))
    found = []
    if result.scene_cuts:
        if result.cut_mode == "fade":
            text = ngettext("{count} scene cut cross-faded", "{count} scene cuts cross-faded", result.scene_cuts)
        else:
            text = ngettext("{count} scene cut kept as a hard cut", "{count} scene cuts kept as hard cuts",
                            result.scene_cuts)
        found.append(text.format(count=result.scene_cuts))
    if result.duplicates:
        found.append(ngettext("{count} duplicate frame found", "{count} duplicate frames found",
                              result.duplicates).format(count=result.duplicates))
    if found:
        lines.append(", ".join(found))
    return lines


def job_progress_text(fraction: float, elapsed_s: float | None) -> str:
    """``progress_text`` from what the queue holds: the job's progress and the time since it started."""
    done = round(max(0.0, min(1.0, fraction)) * 1000)
    return progress_text(Progress(frames_done=done, frames_total=1000, elapsed_s=max(0.0, elapsed_s or 0.0)))


def result_caption(result: Result, model_note: str | None = None, quality: str = "fast") -> str:
    """"25 → 60 fps, loop, 3.2 s, RIFE", then what else was done or found, then the engine's notes.

    ``quality`` is the one asked for: "best quality" is said only when the model that ran has that mode.
    """
    parts = [_("{input} → {output} fps").format(input=describe_fps(result.input_fps),
                                                output=describe_fps(result.output_fps))]
    if result.loop:
        parts.append(_("loop"))
    parts.append(_("{seconds} s").format(seconds=f"{result.duration_s:.1f}"))
    parts.append(model_name(result.model) if result.model in MODEL_DISPLAY else result.model_display_name)
    if quality == "best" and result.model == BEST_QUALITY_MODEL:
        parts.append(_("best quality"))
    lines = [", ".join(parts)]
    lines.extend(result_highlights(result))  # slow motion and its sound, comparison, cuts and repeats found
    if model_note:
        lines.append(model_note)
    lines.extend(engine_text(note) for note in result.notes)
    return "\n".join(lines)
