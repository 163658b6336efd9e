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
from typing import Literal

from storage import CancelStatus, FileStore, JobQueue, JobState, QueueFullError, is_key

from . import i18n
from .commands import (BEST_QUALITY_MODEL, COMPARE_DISPLAY, CommandError, JobSettings, model_name, parse_caption,
                       parse_compare, parse_cut_mode, parse_fps, parse_language, parse_model, parse_quality,
                       parse_slowmo)
from .config import Settings
from .fetch import FetchRefused
from .i18n import N_, _
from .links import LinkReader, find_link
from .replies import (DOWNLOAD_FAILED_TEXT, ENQUEUE_FAILED_TEXT, FAILED_STATUS_TEXT, OUT_OF_SPACE_TEXT,
                      queued_text)

log = logging.getLogger(__name__)

#: Writes the user's file to the given path (the platform's download).
Download = Callable[[Path], Awaitable[None]]
#: Looks at a downloaded file's content: None when it may be queued, else the refusal for the user.
Check = Callable[[Path], Awaitable[str | None]]
#: The answer in a chat that the allowlist (``allowed_chat_ids``) leaves out.
PRIVATE_CHAT_TEXT = N_("Sorry, this bot is private and not enabled for this chat.")
#: The chat-settings key of a chat's /language choice (absent: each person's app language).
LANGUAGE_SETTING = "language"
#: How the bot answers /cancel, by what the queue did (storage's own sentences are English only).
CANCEL_TEXTS = {
    CancelStatus.CANCELLED: N_("Cancelled. That video was still waiting in the queue."),
    CancelStatus.STOPPING: N_("Stopping. The video being processed will be cancelled in a moment."),
    CancelStatus.ALREADY_STOPPING: N_("That video is already being stopped."),
    CancelStatus.FINISHED: N_("That video is already finished, so there is nothing to cancel."),
    CancelStatus.NOTHING: N_("You have no video in the queue, so there is nothing to cancel."),
    CancelStatus.NOT_FOUND: N_("There is no video of yours with that number in this chat."),
}
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
        """The "Queued" answer, in the current language."""
        return queued_text(self.position)


@dataclass(frozen=True)
class Refused:
    text: str


@dataclass(frozen=True)
class ButtonAnswer:
    """The answer to a press of a status message's button."""

    text: str
    #: True when the press was refused (not the owner, no such job): shown as an alert, not a passing notice.
    alert: bool


#: Which buttons a job's status message offers: Cancel and its place while it waits, Cancel while it runs.
Controls = Literal["waiting", "running"]


class ChatService:
    def __init__(self, queue: JobQueue, settings: Settings, on_enqueued: Callable[[], None] | None = None,
                 links: LinkReader | None = None, files: FileStore | None = None) -> None:
        self.queue = queue
        self.settings = settings
        self.on_enqueued = on_enqueued
        self.inbox = settings.data_dir / "inbox"
        #: Where inputs go at enqueue (the workers fetch them there); None: the inbox file is the input.
        self.files = files
        self.links = links or LinkReader(settings)

    async def chat_settings(self, platform: str, chat_id: str | int) -> JobSettings:
        stored = await self.queue.settings.get(platform, chat_id)
        return JobSettings.from_dict(stored, self.settings.default_model)

    async def accept_video(self, *, platform: str, chat_id: str | int, user_id: str | int, message_id: str | int,
                           caption: str | None, file_size: int | None, download_limit: int | None,
                           upload_limit: int | None, suffix: str, download: Download,
                           check: Check | None = None, animations_as_mp4: bool = False) -> Accepted | Refused:
        """Check, download, enqueue. Refusals are texts for the user; nothing is raised for bad input.

        ``check`` (optional) looks at the downloaded file before it is queued (a probe of its content).
        ``upload_limit`` (this chat's largest upload) and ``animations_as_mp4`` (the platform shows a
        GIF best as a silent MP4) go on the job: the worker, which knows no platform, fits to them."""
        if not self.settings.chat_allowed(chat_id):
            return Refused(_(PRIVATE_CHAT_TEXT))
        if file_size is not None and download_limit is not None and file_size > download_limit:
            return Refused(_("That file is {size} MB; I can only fetch files up to {limit} MB here. "
                             "Please send a shorter or smaller clip.").format(size=f"{file_size / 1e6:.1f}",
                                                                             limit=f"{download_limit / 1e6:.0f}"))
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
            return Refused(error.translated())
        except Exception as error:
            partial.unlink(missing_ok=True)
            if out_of_space(error):
                log.error("download of %s message %s failed: the data directory is out of space (%s)",
                          platform, message_id, error)
                return Refused(_(OUT_OF_SPACE_TEXT))
            log.warning("download failed for %s message %s: %s", platform, message_id, error)
            return Refused(_(DOWNLOAD_FAILED_TEXT))
        refusal = await check(target) if check is not None else None
        if refusal is not None:
            target.unlink(missing_ok=True)
            return Refused(refusal)
        try:
            reference = await self.store_input(target)
        except Exception as error:  # the file store is full or unreachable: nothing is queued
            log.error("storing the input of %s message %s failed: %s", platform, message_id, error, exc_info=error)
            return Refused(_(OUT_OF_SPACE_TEXT if out_of_space(error) else ENQUEUE_FAILED_TEXT))
        # The language the job's progress, result and failure are told in (the worker's, the courier's).
        options = job_settings.to_dict() | {"upload_limit": upload_limit, "animations_as_mp4": animations_as_mp4,
                                            LANGUAGE_SETTING: i18n.current()}
        try:
            result = await self.queue.enqueue(platform, chat_id, user_id, message_id, reference, options)
        except QueueFullError as error:
            await self.discard_input(reference)
            return Refused(queue_full_text(error))
        except Exception as error:  # the database is unwritable (disk full, locked, gone): keep no file
            await self.discard_input(reference)
            log.error("enqueue of %s message %s failed: %s", platform, message_id, error, exc_info=error)
            return Refused(_(OUT_OF_SPACE_TEXT if out_of_space(error) else ENQUEUE_FAILED_TEXT))
        if not result.created:
            if result.job.input_path != reference:
                await self.discard_input(reference)
            return Accepted(result.job.id, result.position, new=False)
        # The place read in the enqueue's transaction: the enqueue itself wakes a worker, which may
        # claim the job before a second read could see it waiting.
        if self.on_enqueued is not None:
            self.on_enqueued()
        return Accepted(result.job.id, result.position, new=True)

    async def store_input(self, downloaded: Path) -> str:
        """The reference to put on the job: a key in the file store (the local copy is then removed;
        keys are random, never the file's name), or the downloaded file's path."""
        if self.files is None:
            return str(downloaded)
        try:
            return await self.files.put_input(downloaded)
        finally:
            downloaded.unlink(missing_ok=True)

    async def discard_input(self, reference: str) -> None:
        """Delete an input that did not become a job (best effort: retention would not find it)."""
        try:
            if self.files is not None and is_key(reference):
                await self.files.delete(reference)
            else:
                Path(reference).unlink(missing_ok=True)
        except Exception as error:
            log.warning("could not delete the unqueued input %s: %s", reference, error)

    async def accept_link(self, *, platform: str, chat_id: str | int, user_id: str | int, message_id: str | int,
                          text: str | None, upload_limit: int | None,
                          animations_as_mp4: bool = False) -> Accepted | Refused | None:
        """A message whose text holds a link: fetched and checked like an uploaded video (the rest of the
        text is its caption). None when there is no link in ``text``."""
        link = find_link(text)
        if link is None:
            return None
        if not self.settings.chat_allowed(chat_id):
            return Refused(_(PRIVATE_CHAT_TEXT))
        try:
            self.links.check(link)
        except FetchRefused as error:
            log.info("link of %s message %s refused: %s", platform, message_id, error.detail)
            return Refused(error.translated())

        async def download(target: Path) -> None:
            await asyncio.to_thread(self.links.download, link, target)

        return await self.accept_video(
            platform=platform, chat_id=chat_id, user_id=user_id, message_id=message_id,
            caption=(text or "").replace(link, " "), file_size=None, download_limit=None, upload_limit=upload_limit,
            suffix=self.links.suffix(link), download=download, animations_as_mp4=animations_as_mp4)

    async def set_status_message(self, job_id: int, message_id: str | int) -> None:
        await self.queue.set_status_message(job_id, message_id)

    @answers_bad_arguments
    async def set_fps(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        fps = parse_fps(argument, self.settings)
        await self.queue.settings.update(platform, chat_id, {"fps": fps})
        return _("Videos in this chat will now be smoothed to {fps} fps.").format(fps=f"{fps:g}")

    async def clear_fps(self, platform: str, chat_id: str | int) -> str:
        await self.queue.settings.update(platform, chat_id, {"fps": None})
        return _("Videos in this chat will now be smoothed to twice their frame rate.")

    async def toggle_loop(self, platform: str, chat_id: str | int) -> str:
        current = await self.chat_settings(platform, chat_id)
        await self.queue.settings.update(platform, chat_id, {"loop": not current.loop})
        return (_("Loop is on: the last frame will flow back into the first.") if not current.loop
                else _("Loop is off."))

    async def set_output(self, platform: str, chat_id: str | int, output: str) -> str:
        await self.queue.settings.update(platform, chat_id, {"output": output})
        return _("Results in this chat will be sent as {format}.").format(format=output.upper())

    @answers_bad_arguments
    async def set_model(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        model = parse_model(argument, self.settings)
        await self.queue.settings.update(platform, chat_id, {"model": model})
        return _("This chat now uses {model}.").format(model=model_name(model))

    @answers_bad_arguments
    async def set_slowmo(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        factor = parse_slowmo(argument)
        await self.queue.settings.update(platform, chat_id, {"slowmo": factor})
        if factor is None:
            return _("Slow motion is off: videos keep their real speed.")
        return _("Videos in this chat will now play {factor}× slower, every new frame interpolated "
                 "(sound slowed with its pitch kept).").format(factor=f"{factor:g}")

    @answers_bad_arguments
    async def set_compare(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        mode = parse_compare(argument)
        await self.queue.settings.update(platform, chat_id, {"compare": mode})
        if mode is None:
            return _("Comparison is off: you get the smoothed video alone.")
        return _("You'll now get before/after videos ({layout}): original and smoothed together.").format(
            layout=_(COMPARE_DISPLAY[mode]))

    @answers_bad_arguments
    async def set_cut_mode(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        mode = parse_cut_mode(argument)
        await self.queue.settings.update(platform, chat_id, {"cut_mode": mode})
        return (_("Scene cuts will now get a short cross-fade.") if mode == "fade"
                else _("Scene cuts will now stay hard cuts (never morphed)."))

    @answers_bad_arguments
    async def set_quality(self, platform: str, chat_id: str | int, argument: str | None) -> str:
        quality = parse_quality(argument)
        await self.queue.settings.update(platform, chat_id, {"quality": quality})
        if quality == "fast":
            return _("Videos in this chat will now use the fast quality (one pass per frame).")
        answer = _("Videos in this chat will now use the best quality: sharper, about 4× slower (RIFE).")
        model = (await self.chat_settings(platform, chat_id)).model
        if model != BEST_QUALITY_MODEL:
            answer += " " + _("This chat uses {model}, which has one quality; it applies when you choose "
                              "/model {best}.").format(model=model_name(model), best=BEST_QUALITY_MODEL)
        return answer

    async def settings_text(self, platform: str, chat_id: str | int) -> str:
        return _("Settings for this chat: {settings}").format(
            settings=(await self.chat_settings(platform, chat_id)).describe())

    async def status_text(self, platform: str, chat_id: str | int, user_id: str | int) -> str:
        jobs = await self.queue.jobs_for_user(platform, chat_id, user_id, include_finished=True, limit=5)
        if not jobs:
            return _("You have no videos here yet. Send one!")
        lines = []
        for job in jobs:
            if job.state == JobState.QUEUED:
                state = queued_text(await self.queue.position(job.id))
            elif job.state == JobState.RUNNING:
                state = (_("Stopping…") if job.cancel_requested
                         else _("Smoothing… {percent}%").format(percent=int(job.progress * 100)))
            elif job.state == JobState.DONE:
                state = _("Done")
            elif job.state == JobState.FAILED:
                state = _(FAILED_STATUS_TEXT)  # stored errors may carry details meant for the log
            else:
                state = _("Cancelled")
            lines.append(f"#{job.id}: {state}")
        return _("Your videos:") + "\n" + "\n".join(lines)

    async def cancel(self, platform: str, chat_id: str | int, user_id: str | int, job_id: int | None = None) -> str:
        """Cancel the user's job ``job_id`` in this chat, or else their newest active one."""
        outcome = await self.queue.cancel(platform, chat_id, user_id, job_id)
        if outcome.status == CancelStatus.CANCELLED and outcome.job is not None:
            await self.queue.purge_files(outcome.job.id)
        return _(CANCEL_TEXTS[outcome.status])

    async def cancel_from_button(self, platform: str, chat_id: str | int, user_id: str | int,
                                 job_id: int) -> ButtonAnswer:
        """A status message's Cancel: only the job's owner may press it; anyone else is told so."""
        job = await self.queue.get(job_id)
        if job is None or job.platform != platform or job.chat_id != str(chat_id):
            return ButtonAnswer(_(CANCEL_TEXTS[CancelStatus.NOT_FOUND]), alert=True)
        if job.user_id != str(user_id):
            return ButtonAnswer(_("Only the person who sent this video can cancel it."), alert=True)
        return ButtonAnswer(await self.cancel(platform, chat_id, user_id, job_id), alert=False)

    async def job_state_text(self, job_id: int) -> str | None:
        """Where a job is now ("Queued — position 2", "Smoothing… 40%"); None once it has finished."""
        job = await self.queue.get(job_id)
        if job is None or job.state not in (JobState.QUEUED, JobState.RUNNING):
            return None
        if job.state == JobState.QUEUED:
            return queued_text(await self.queue.position(job_id))
        if job.cancel_requested:
            return _("Stopping…")
        return _("Smoothing… {percent}%").format(percent=int(job.progress * 100))

    async def controls_for(self, job_id: int) -> Controls | None:
        """The buttons a job's status message should offer now (None: the job is over or stopping)."""
        job = await self.queue.get(job_id)
        if job is None or job.cancel_requested:
            return None
        return {JobState.QUEUED: "waiting", JobState.RUNNING: "running"}.get(job.state)

    async def language_for(self, platform: str, chat_id: str | int, app_language: str | None) -> str:
        """The language to answer in: the chat's /language choice, else the person's app language."""
        chosen = (await self.queue.settings.get(platform, chat_id)).get(LANGUAGE_SETTING)
        return i18n.resolve(chosen or app_language)

    async def language_text(self, platform: str, chat_id: str | int) -> str:
        """/language alone: the language in use here, and how to change it."""
        chosen = (await self.queue.settings.get(platform, chat_id)).get(LANGUAGE_SETTING)
        choices = ", ".join(f"/language {code} ({name})" for code, name in i18n.LANGUAGE_NAMES.items())
        if chosen:
            now = _("This chat speaks {language}.").format(language=i18n.LANGUAGE_NAMES[i18n.resolve(chosen)])
        else:
            now = _("This chat follows each person's app language (now {language}).").format(
                language=i18n.LANGUAGE_NAMES[i18n.current()])
        return now + "\n" + _("Choose: {choices}, or /language auto.").format(choices=choices)

    @answers_bad_arguments
    async def set_language(self, platform: str, chat_id: str | int, argument: str | None,
                           app_language: str | None = None) -> str:
        """Store the chat's language (None: follow the app) and answer in it; from now on it is current."""
        if argument is None or not argument.strip():
            return await self.language_text(platform, chat_id)
        language = parse_language(argument)
        await self.queue.settings.update(platform, chat_id, {LANGUAGE_SETTING: language})
        if language is None:
            i18n.use(app_language)
            return _("I'll answer each person in their app's language.")
        i18n.use(language)
        return _("From now on I speak English in this chat.")


def queue_full_text(error: QueueFullError) -> str:
    """The per-user cap's refusal, in the current language."""
    waiting = i18n.ngettext("You already have {count} video waiting in the queue (the limit is {limit}).",
                            "You already have {count} videos waiting in the queue (the limit is {limit}).",
                            error.queued).format(count=error.queued, limit=error.limit)
    return waiting + " " + _("Please wait until one of them is finished, or cancel one, before sending another.")
