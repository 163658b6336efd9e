"""What every platform does the same way: accept a video into the queue, and answer the commands.

Adapters translate platform events into these calls and send the returned text; they hold no
business logic of their own, so Telegram, Discord and the console behave alike.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from storage import CancelStatus, JobQueue, JobState, QueueFullError

from .commands import (BEST_QUALITY_MODEL, COMPARE_DISPLAY, MODEL_DISPLAY, CommandError, JobSettings, parse_caption,
                       parse_compare, parse_cut_mode, parse_fps, parse_model, parse_quality, parse_slowmo)
from .config import Settings
from .fetch import FetchRefused
from .links import LinkReader, find_link
from .replies import (DOWNLOAD_FAILED_TEXT, ENQUEUE_FAILED_TEXT, FAILED_STATUS_TEXT, OUT_OF_SPACE_TEXT,
                      queued_text)

log = logging.getLogger(__name__)

#: Writes the user's file to the given path (the platform's download).
Download = Callable[[Path], Awaitable[None]]
#: Looks at a downloaded file's content: None when it may be queued, else the refusal for the user.
Check = Callable[[Path], Awaitable[str | None]]
#: The answer in a chat that the allowlist (``allowed_chat_ids``) leaves out.
PRIVATE_CHAT_TEXT = "Sorry, this bot is private and not enabled for this chat."
#: OS errors that mean "no room to write" (disk full, quota, file size limit).
OUT_OF_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def out_of_space(error: BaseException) -> bool:
    """A full disk, as the OS says it (``OSError``) or as SQLite does ("database or disk is full")."""
    if isinstance(error, OSError):
        return error.errno in OUT_OF_SPACE_ERRNOS
    return "disk is full" in str(error).lower()


def answers_bad_arguments(command: Callable[..., Awaitable[str]]) -> Callable[..., Awaitable[str]]:
    """A settings command whose parser's :class:`CommandError` becomes the answer (nothing is stored)."""
    @functools.wraps(command)
    async def answered(*args: object, **kwargs: object) -> str:
        try:
            return await command(*args, **kwargs)
        except CommandError as error:
            return str(error)
    return answered


@dataclass(frozen=True)
class Accepted:
    job_id: int
    position: int | None
    #: False when this platform message had been enqueued before (a re-delivered update): no reply.
    new: bool

    @property
    def text(self) -> str:
        return queued_text(self.position)


@dataclass(frozen=True)
class Refused:
    text: str


class ChatService:
    def __init__(self, queue: JobQueue, settings: Settings, on_enqueued: Callable[[], None] | None = None,
                 links: LinkReader | None = None) -> None:
        self.queue = queue
        self.settings = settings
        self.on_enqueued = on_enqueued
        self.inbox = settings.data_dir / "inbox"
        self.links = links or LinkReader(settings)

    async def chat_settings(self, platform: str, chat_id: str | int) -> JobSettings:
        stored = await self.queue.settings.get(platform, chat_id)
        return JobSettings.from_dict(stored, self.settings.default_model)

    async def accept_video(self, *, platform: str, chat_id: str | int, user_id: str | int, message_id: str | int,
                           caption: str | None, file_size: int | None, download_limit: int | None,
                           upload_limit: int | None, suffix: str, download: Download,
                           check: Check | None = None) -> Accepted | Refused:
        """Check, download, enqueue. Refusals are texts for the user; nothing is raised for bad input.

        ``check`` (optional) looks at the downloaded file before it is queued (a probe of its content)."""
        if not self.settings.chat_allowed(chat_id):
            return Refused(PRIVATE_CHAT_TEXT)
        if file_size is not None and download_limit is not None and file_size > download_limit:
            return Refused(f"That file is {file_size / 1e6:.1f} MB; I can only fetch files up to "
                           f"{download_limit / 1e6:.0f} MB here. Please send a shorter or smaller clip.")
        try:
            job_settings = parse_caption(caption, await self.chat_settings(platform, chat_id), self.settings)
        except CommandError as error:
            return Refused(str(error))
        self.inbox.mkdir(parents=True, exist_ok=True)
        safe_suffix = suffix if suffix.startswith(".") and suffix[1:].isalnum() and len(suffix) <= 6 else ".bin"
        target = self.inbox / f"{platform}-{chat_id}-{message_id}{safe_suffix}"
        partial = target.with_name(target.name + ".part")
        try:
            await download(partial)
            os.replace(partial, target)
        except FetchRefused as error:  # a link that was not fetched, or did not hold a usable video
            partial.unlink(missing_ok=True)
            log.info("link of %s message %s refused: %s", platform, message_id, error.detail)
            return Refused(str(error))
        except Exception as error:
            partial.unlink(missing_ok=True)
            if out_of_space(error):
                log.error("download of %s message %s failed: the data directory is out of space (%s)",
                          platform, message_id, error)
                return Refused(OUT_OF_SPACE_TEXT)
            log.warning("download failed for %s message %s: %s", platform, message_id, error)
            return Refused(DOWNLOAD_FAILED_TEXT)
        refusal = await check(target) if check is not None else None
        if refusal is not None:
            target.unlink(missing_ok=True)
            return Refused(refusal)
        options = job_settings.to_dict() | {"upload_limit": upload_limit}
        try:
            result = await self.queue.enqueue(platform, chat_id, user_id, message_id, target, options)
        except QueueFullError as error:
            target.unlink(missing_ok=True)
            return Refused(str(error))
        except Exception as error:  # the database is unwritable (disk full, locked, gone): keep no file
            target.unlink(missing_ok=True)
            log.error("enqueue of %s message %s failed: %s", platform, message_id, error, exc_info=error)
            return Refused(OUT_OF_SPACE_TEXT if out_of_space(error) else ENQUEUE_FAILED_TEXT)
        if not result.created:
            if result.job.input_path != str(target):
                target.unlink(missing_ok=True)
            return Accepted(result.job.id, await self.queue.position(result.job.id), new=False)
        position = await self.queue.position(result.job.id)  # before the worker is woken and claims it
        if self.on_enqueued is not None:
            self.on_enqueued()
        return Accepted(result.job.id, position, new=True)

    async def accept_link(self, *, platform: str, chat_id: str | int, user_id: str | int, message_id: str | int,
                          text: str | None, upload_limit: int | None) -> Accepted | Refused | None:
        """A message whose text holds a link: fetched and checked like an uploaded video (the rest of the
        text is its caption). None when there is no link in ``text``."""
        link = find_link(text)
        if link is None:
            return None
        if not self.settings.chat_allowed(chat_id):
            return Refused(PRIVATE_CHAT_TEXT)
        try:
            self.links.check(link)
        except FetchRefused as error:
            log.info("link of %s message %s refused: %s", platform, message_id, error.detail)
            return Refused(str(error))

        async def download(target: Path) -> None:
            await asyncio.to_thread(self.links.download, link, target)

        return await self.accept_video(
            platform=platform, chat_id=chat_id, user_id=user_id, message_id=message_id,
            caption=(text or "").replace(link, " "), file_size=None, download_limit=None, upload_limit=upload_limit,
            suffix=self.links.suffix(link), download=download)

    async def set_status_message(self, job_id: int, message_id: str | int) -> None:
        await self.queue.set_status_message(job_id, message_id)

    @answers_bad_arguments
    async def set_fps(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        fps = parse_fps(argument, self.settings)
        await self.queue.settings.update(platform, chat_id, {"fps": fps})
        return f"Videos in this chat will now be smoothed to {fps:g} fps."

    async def clear_fps(self, platform: str, chat_id: str | int) -> str:
        await self.queue.settings.update(platform, chat_id, {"fps": None})
        return "Videos in this chat will now be smoothed to twice their frame rate."

    async def toggle_loop(self, platform: str, chat_id: str | int) -> str:
        current = await self.chat_settings(platform, chat_id)
        await self.queue.settings.update(platform, chat_id, {"loop": not current.loop})
        return ("Loop is on: the last frame will flow back into the first." if not current.loop
                else "Loop is off.")

    async def set_output(self, platform: str, chat_id: str | int, output: str) -> str:
        await self.queue.settings.update(platform, chat_id, {"output": output})
        return f"Results in this chat will be sent as {output.upper()}."

    @answers_bad_arguments
    async def set_model(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        model = parse_model(argument, self.settings)
        await self.queue.settings.update(platform, chat_id, {"model": model})
        return f"This chat now uses {MODEL_DISPLAY[model]}."

    @answers_bad_arguments
    async def set_slowmo(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        factor = parse_slowmo(argument)
        await self.queue.settings.update(platform, chat_id, {"slowmo": factor})
        if factor is None:
            return "Slow motion is off: videos keep their real speed."
        return (f"Videos in this chat will now play {factor:g}× slower, every new frame interpolated "
                "(sound slowed with its pitch kept).")

    @answers_bad_arguments
    async def set_compare(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        mode = parse_compare(argument)
        await self.queue.settings.update(platform, chat_id, {"compare": mode})
        if mode is None:
            return "Comparison is off: you get the smoothed video alone."
        return f"You'll now get before/after videos ({COMPARE_DISPLAY[mode]}): original and smoothed together."

    @answers_bad_arguments
    async def set_cut_mode(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        mode = parse_cut_mode(argument)
        await self.queue.settings.update(platform, chat_id, {"cut_mode": mode})
        return ("Scene cuts will now get a short cross-fade." if mode == "fade"
                else "Scene cuts will now stay hard cuts (never morphed).")

    @answers_bad_arguments
    async def set_quality(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        quality = parse_quality(argument)
        await self.queue.settings.update(platform, chat_id, {"quality": quality})
        if quality == "fast":
            return "Videos in this chat will now use the fast quality (one pass per frame)."
        answer = "Videos in this chat will now use the best quality: sharper, about 4× slower (RIFE)."
        model = (await self.chat_settings(platform, chat_id)).model
        if model != BEST_QUALITY_MODEL:
            answer += (f" This chat uses {MODEL_DISPLAY.get(model, model)}, which has one quality; "
                       f"it applies when you choose /model {BEST_QUALITY_MODEL}.")
        return answer

    async def settings_text(self, platform: str, chat_id: str | int) -> str:
        return "Settings for this chat: " + (await self.chat_settings(platform, chat_id)).describe()

    async def status_text(self, platform: str, chat_id: str | int, user_id: str | int) -> str:
        jobs = await self.queue.jobs_for_user(platform, chat_id, user_id, include_finished=True, limit=5)
        if not jobs:
            return "You have no videos here yet. Send one!"
        lines = []
        for job in jobs:
            if job.state == JobState.QUEUED:
                state = queued_text(await self.queue.position(job.id))
            elif job.state == JobState.RUNNING:
                state = "Stopping…" if job.cancel_requested else f"Smoothing… {int(job.progress * 100)}%"
            elif job.state == JobState.DONE:
                state = "Done"
            elif job.state == JobState.FAILED:
                state = FAILED_STATUS_TEXT  # stored errors may carry details meant for the log
            else:
                state = "Cancelled"
            lines.append(f"#{job.id}: {state}")
        return "Your videos:\n" + "\n".join(lines)

    async def cancel(self, platform: str, chat_id: str | int, user_id: str | int, job_id: int | None = None) -> str:
        """Cancel the user's job ``job_id`` in this chat, or else their newest active one."""
        outcome = await self.queue.cancel(platform, chat_id, user_id, job_id)
        if outcome.status == CancelStatus.CANCELLED and outcome.job is not None:
            await self.queue.purge_files(outcome.job.id)
        return outcome.message
