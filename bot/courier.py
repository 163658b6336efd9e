"""The front-end's courier: turns job state changes in the queue into chat, exactly once.

The worker (bot/worker.py) holds no chat platform; it records progress, the stored result with how
to send it (``job.outcome``), failures and cancellations in the queue. The courier follows the
queue's change feed (``changes_since``; woken by ``wait_for_changes``) and sends:

- status edits: "Smoothing… 42% (ETA 0:31)" from the job's progress (the first one at once, then at
  most one per ``progress_edit_interval_s`` per chat, shared by all front-ends), new queue positions when a job is claimed, "Paused…" when
  a running job went back to the queue;
- the result, fitted to this platform's limit, under the queue's delivery lease (``claim_delivery``):
  one front-end sends, a second one finds the lease taken; one that dies loses it after the lease;
- failures (the worker's text, or the queue's own "gave up") and cancellations ("Cancelled.").

The worker fits the result to the upload limit the front-end stored on the job at enqueue
(``options["upload_limit"]``: the limit of that chat, e.g. a boosted Discord server's), so the
common case needs no second encode. The courier re-fits (ffmpeg, no model) only when the platform
still refuses the file as too large (HTTP 413): only the front-end learns that.

Hardening kept from the single-process worker: flood waits (``RetryAfterError``) sat out, transient
failures retried with a growing pause, a chat that is gone given up at once, a 413 re-fitted smaller,
a failure message that could not be sent retried later, and the job re-read before every send: a
cancelled job is never delivered. A shutdown in the middle gives the delivery lease back unsent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

from interpolation.encoding import CHAT_PRESET, resolve
from interpolation.errors import EngineError
from interpolation.fit import fit_video, make_gif
from interpolation.options import Limits
from interpolation.probe import probe
from storage import Delivery as DeliveryLease
from storage import FileMissingError, FileStore, Job, JobQueue, JobState, LeaseLostError, is_key

from . import i18n
from .config import Settings
from .i18n import N_, _
from .metrics import NO_METRICS, JobObserver
from .platform import DeliveryError, RecipientGoneError, RetryAfterError, TooLargeError, error_kind
from .replies import (GENERIC_FAILURE, ChatReplier, Delivery, DeliveryKind, engine_text, job_progress_text,
                      queued_text, stored_failure_text)
from .service import LANGUAGE_SETTING
from .worker import INPUT_GONE_TEXT, while_renewing

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Sends of one result for transient platform errors, and the first pause between them (seconds, doubling).
DELIVERY_ATTEMPTS = 4
DELIVERY_RETRY_PAUSE_S = 2.0
#: The longest flood wait (RetryAfter / 429) sat out for one send; a longer one counts as a failed try.
MAX_RETRY_AFTER_S = 120.0
#: Pause before a failure message that could not be sent is tried again.
REPORT_RETRY_PAUSE_S = 30.0
#: Re-fits of a result the platform refused as too large, each to this share of the last budget.
MAX_REFITS = 2
REFIT_FACTOR = 0.7
#: Status messages of this many waiting jobs are refreshed whenever a job is claimed.
POSITION_UPDATES_PER_CLAIM = 10
#: Seconds after enqueue during which the adapter's own "Queued" message is awaited.
STATUS_MESSAGE_GRACE_S = 10.0
#: What the user is told (message ids: said as ``_(TEXT)`` in the job's language, bot/i18n.py).
SEND_FAILED_TEXT = N_("I made your video but could not send it here. Please try again later.")
TOO_LARGE_TEXT = N_("I made your video but it is larger than this chat accepts, even after shrinking it. "
                    "Try a shorter clip or a lower frame rate.")
GONE_TEXT = N_("I made your video but could not send it: this chat no longer takes messages from me.")
SHUTDOWN_TEXT = N_("Paused: the bot is restarting. Your video will be smoothed when it is back.")
CANCELLED_TEXT = N_("Cancelled.")
DONE_TEXT = N_("Done.")


def refit(result: Path, output: Path, kind: DeliveryKind, max_bytes: int, duration_s: float,
          cancelled: Callable[[], bool]) -> list[str]:
    """Encode ``result`` again to fit ``max_bytes`` (a platform refused it as too large); returns notes."""
    info = probe(result, Limits())
    fps = info.declared_fps or Fraction(30)
    width, height = info.coded_width, info.coded_height
    with tempfile.TemporaryDirectory(prefix=".refit-", dir=output.parent) as workdir:
        if kind == "gif":
            _gif_fps, notes = make_gif(result, output, width, height, fps, max_bytes, Path(workdir),
                                      frames=max(1, round(duration_s * float(fps))), cancelled=cancelled)
            return notes
        return fit_video(result, output, resolve("mp4", None, None, CHAT_PRESET), max_bytes=max_bytes,
                         duration_s=duration_s, width=width, height=height, fps=fps, has_audio=info.has_audio,
                         workdir=Path(workdir), cancelled=cancelled)


def in_language_of(job: Job) -> contextlib.AbstractContextManager[object]:
    """Texts for this job in its user's language, chosen at enqueue (bot/i18n.py)."""
    return i18n.language(job.options.get(LANGUAGE_SETTING))


def delivery_of(job: Job) -> Delivery:
    """How to send a job's result, as the worker recorded it (a result made before that was
    recorded is sent as a plain video without a caption)."""
    outcome = job.outcome or {}
    kind = outcome.get("kind")
    if kind not in ("video", "animation", "gif"):
        kind = "gif" if (job.result_path or "").endswith(".gif") else "video"
    return Delivery(kind=kind, caption=str(outcome.get("caption", "")), width=int(outcome.get("width", 0)),
                    height=int(outcome.get("height", 0)), duration_s=float(outcome.get("duration_s", 0.0)))


class Courier:
    """Sends what the queue says happened, for the platforms in ``repliers``.

    ``files``: the file store results are fetched from (None: the job's result path is a local file).
    """

    def __init__(self, queue: JobQueue, repliers: Mapping[str, ChatReplier], settings: Settings, *,
                 files: FileStore | None = None, owner: str | None = None, idle_poll_s: float = 1.0) -> None:
        self.queue = queue
        self.repliers = dict(repliers)
        self.settings = settings
        self.files = files
        self.owner = owner or f"front-end-{uuid.uuid4().hex[:8]}"
        self.idle_poll_s = idle_poll_s
        self.work_dir = settings.data_dir / "outbox"
        #: Set when the service shuts down: a delivery in progress gives its lease back unsent.
        self.stopping = asyncio.Event()
        self._cursor: int | None = None
        #: Last status text shown per job, so unchanged text is not sent again.
        self._shown: dict[int, str] = {}
        #: Status messages the courier itself sent (the job snapshots it holds may predate them).
        self._status_ids: dict[int, str] = {}
        #: Jobs seen running: one that goes back to the queue is shown as paused.
        self._running: set[int] = set()
        #: Running jobs whose progress could not be shown yet (their status message is being posted).
        self._unshown: set[int] = set()
        #: Outcomes the platform asked us to hold back (flood wait, outage): job id -> loop time.
        self._not_before: dict[int, float] = {}
        #: Where delivery failures are counted (bot/metrics.py; off by default).
        self.metrics: JobObserver = NO_METRICS

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the queue until ``stop`` is set; unexpected errors are logged and the loop goes on."""
        watcher = asyncio.ensure_future(self._follow(stop))
        try:
            while not self.stopping.is_set():
                try:
                    await self.step()
                except Exception:
                    log.exception("courier loop error; continuing")
                waiters = [asyncio.ensure_future(self.stopping.wait()),
                           asyncio.ensure_future(self.queue.wait_for_changes(self.idle_poll_s))]
                await asyncio.wait(waiters, timeout=self.idle_poll_s, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
            with contextlib.suppress(Exception):  # a last look: a job handed back at shutdown shows as paused
                await self.step()
        finally:
            watcher.cancel()

    async def _follow(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stopping.set()

    async def step(self) -> int:
        """One look at the queue: show the changes since the last look, then send what is due
        (returns how many outcomes were sent)."""
        if self._cursor is None:
            self._cursor = await self.queue.latest_change()
        changes = await self.queue.changes_since(self._cursor)
        self._cursor = changes.cursor
        claimed = False
        for job in changes.jobs:
            if job.platform not in self.repliers:
                continue
            if job.state is JobState.RUNNING:
                claimed = claimed or job.id not in self._running
                self._running.add(job.id)
                if not job.has_result:  # else it is being handed over: the result is next, not "100%"
                    await self.show_progress(job)
            elif job.state is JobState.QUEUED and job.id in self._running:
                self._running.discard(job.id)  # its worker stopped (or died): it waits for the next one
                with in_language_of(job):
                    await self.safe_status(job, _(SHUTDOWN_TEXT))
            elif job.state.is_finished:
                self._running.discard(job.id)
        for job_id in sorted(self._unshown - {job.id for job in changes.jobs}):
            fresh = await self.queue.get(job_id)
            if fresh is not None and fresh.state is JobState.RUNNING and not fresh.has_result:
                await self.show_progress(fresh)
            else:
                self._unshown.discard(job_id)
        if claimed:
            await self.refresh_positions()
        return await self.deliver_pending()

    async def deliver_pending(self) -> int:
        """Send every finished outcome that is due here; returns how many were sent."""
        sent = 0
        loop = asyncio.get_running_loop()
        for job in await self.queue.undelivered(platforms=tuple(self.repliers)):
            if self.stopping.is_set():
                break
            if job.platform not in self.repliers or loop.time() < self._not_before.get(job.id, 0.0):
                continue
            lease = await self.queue.claim_delivery(job.id, self.owner)
            if lease is None:  # another front-end is sending it
                continue
            try:
                with in_language_of(job):
                    if await self.send_outcome(lease):
                        sent += 1
            except LeaseLostError:
                log.warning("job %s: delivery lease lost (another front-end sends it now)", job.id)
            except Exception:
                log.exception("job %s: delivery failed unexpectedly; giving the lease back", job.id)
                await self.queue.release_delivery(lease)
                self._not_before[job.id] = loop.time() + REPORT_RETRY_PAUSE_S
        return sent

    async def send_outcome(self, lease: DeliveryLease) -> bool:
        """Send one finished job's outcome under ``lease``; True when it is recorded as delivered."""
        job = lease.job
        replier = self.repliers[job.platform]
        if job.state is JobState.DONE:
            delivered = await self.deliver(lease, replier)
        elif job.state is JobState.FAILED:
            delivered = await self.tell_failure(lease, replier, job)
        else:
            await self.tell_cancelled(lease, job)
            delivered = True
        if delivered:
            for memory in (self._shown, self._status_ids):
                memory.pop(job.id, None)
            self._running.discard(job.id)
            self._unshown.discard(job.id)
        return delivered

    # --- status -----------------------------------------------------------------------------------

    async def show_progress(self, job: Job) -> None:
        """The running job's progress in its status message, at most once per edit interval per chat
        across every front-end (the throttle's state is in the queue: ``take_edit_slot``)."""
        elapsed = None if job.started_at is None else (datetime.now(UTC) - job.started_at).total_seconds()
        with in_language_of(job):
            text = job_progress_text(job.progress, elapsed)
        if self._shown.get(job.id) == text:
            return
        if job.id in self._shown and not await self.queue.take_edit_slot(
                job.platform, job.chat_id, self.settings.progress_edit_interval_s):
            return
        if not await self.safe_status(job, text) and job.id not in self._shown:
            self._unshown.add(job.id)  # no status message yet (the adapter is posting it): the next look retries
        else:
            self._unshown.discard(job.id)

    async def refresh_positions(self) -> None:
        """The queue moved: show waiting users their new place."""
        positions = sorted((await self.queue.positions()).items(), key=lambda item: item[1])
        shown = 0
        for job_id, position in positions:
            if shown == POSITION_UPDATES_PER_CLAIM:
                break
            job = await self.queue.get(job_id)
            if job is not None and job.platform in self.repliers and job.status_message_id is not None:
                shown += 1
                with in_language_of(job):
                    await self.safe_status(job, queued_text(position))

    def current(self, job: Job) -> Job:
        """``job`` with the status message the courier itself may have sent since the snapshot."""
        status_id = self._status_ids.get(job.id)
        return job if status_id is None else replace(job, status_message_id=status_id)

    async def with_status_message(self, job: Job) -> Job | None:
        """``job`` with its status message id, or None while the adapter may still be posting it.

        The adapter stores the "Queued" message's id just after enqueueing, so a fast claim can
        hold a snapshot without it. Only when none appeared within the grace period (the adapter
        died in between, or a re-delivered update was not answered again) does the courier post
        a status message of its own.
        """
        job = self.current(job)
        if job.status_message_id is not None:
            return job
        fresh = await self.queue.get(job.id)
        if fresh is not None and fresh.status_message_id is not None:
            self._status_ids[job.id] = fresh.status_message_id
            return self.current(job)
        if datetime.now(UTC) - job.created_at < timedelta(seconds=STATUS_MESSAGE_GRACE_S):
            return None
        return job

    async def safe_status(self, job: Job, text: str) -> bool:
        """Status edits are best effort (a failed edit must never fail the job) and never repeat.
        Returns whether the text was shown."""
        if self._shown.get(job.id) == text:
            return False
        replier = self.repliers.get(job.platform)
        if replier is None:
            return False
        try:
            target = await self.with_status_message(job)
            if target is None:
                return False
            new_id = await replier.send_status(target, text)
            self._shown[job.id] = text
            if new_id is not None:
                self._status_ids[job.id] = new_id
                await self.queue.set_status_message(job.id, new_id)
        except Exception as error:
            log.warning("job %s: status update failed (%s: %s)", job.id, type(error).__name__, error)
            return False
        return True

    # --- outcomes ---------------------------------------------------------------------------------

    async def holding(self, lease: DeliveryLease, work: Awaitable[T]) -> T:
        """Await ``work`` (an upload, a re-fit, a wait) while keeping the delivery lease alive."""
        return await while_renewing(work, lambda: self.queue.extend_delivery(lease), self.settings.lease_seconds / 3)

    async def cancelled_since(self, lease: DeliveryLease) -> bool:
        """Read the job again before a send (and keep the lease): True when the user cancelled it."""
        if not await self.queue.extend_delivery(lease):
            raise LeaseLostError(lease.job_id)
        fresh = await self.queue.get(lease.job_id)
        return fresh is None or fresh.state is JobState.CANCELLED

    async def tell_cancelled(self, lease: DeliveryLease, job: Job) -> None:
        await self.safe_status(job, _(CANCELLED_TEXT))
        await self.queue.mark_delivered(lease, None)
        await self.queue.purge_files(job.id)
        log.info("job %s: cancellation shown", job.id)

    async def fetch_result(self, lease: DeliveryLease, folder: Path) -> Path | None:
        """The result as a local file (fetched from the file store); None when it is gone."""
        reference = lease.job.result_path
        if reference is None:
            return None
        if self.files is None or not is_key(reference):  # a local path (no store, or from before it)
            return Path(reference) if Path(reference).is_file() else None
        try:
            return await self.holding(lease, self.files.get(reference, folder / f"result{Path(reference).suffix}"))
        except FileMissingError:
            return None

    async def deliver(self, lease: DeliveryLease, replier: ChatReplier) -> bool:
        job = lease.job
        folder = self.work_dir / f"job-{job.id}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            if await self.cancelled_since(lease):
                await self.tell_cancelled(lease, job)
                return True
            path = await self.fetch_result(lease, folder)
            if path is None:
                failed = await self.queue.fail_delivery(lease, _(INPUT_GONE_TEXT), "result_gone")
                return await self.tell_failure(lease, replier, failed)
            return await self.send_result(lease, replier, path, delivery_of(job), folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    async def send_result(self, lease: DeliveryLease, replier: ChatReplier, path: Path, delivery: Delivery,
                          folder: Path) -> bool:
        """Send the result: flood waits sat out, transient failures retried with a growing pause, a file
        refused as too large re-fitted smaller, a chat that is gone given up at once. The job is read
        again before every send."""
        job = lease.job
        pause = DELIVERY_RETRY_PAUSE_S
        tries = refits = 0
        budget = replier.upload_limit(self.current(job))
        while True:
            if await self.cancelled_since(lease):
                await self.tell_cancelled(lease, job)
                return True
            tries += 1
            try:
                reply_id = await self.holding(lease, replier.deliver(self.current(job), path, delivery))
                break
            except TooLargeError as error:
                log.warning("job %s: %s refused the result as too large (%d bytes): %s", job.id,
                            replier.platform, path.stat().st_size, error)
                self.metrics.delivery_failed(replier.platform, error_kind(error))
                if refits == MAX_REFITS:
                    return await self.give_up(lease, replier, _(TOO_LARGE_TEXT), "too_large")
                refits += 1
                budget = int(min(path.stat().st_size, budget or path.stat().st_size) * REFIT_FACTOR)
                smaller = folder / f"fit{refits}{path.suffix}"
                notes = await self.refitted(lease, path, smaller, delivery, budget)
                if self.stopping.is_set():  # the result is kept: the next start sends (and fits) it
                    await self.queue.release_delivery(lease)
                    return False
                if notes is None:
                    return await self.give_up(lease, replier, _(TOO_LARGE_TEXT), "too_large")
                path = smaller
                delivery = replace(delivery, caption="\n".join([delivery.caption, *map(engine_text, notes)]))
            except RecipientGoneError as error:
                log.warning("job %s: cannot be delivered, %s says the chat is gone: %s", job.id,
                            replier.platform, error)
                self.metrics.delivery_failed(replier.platform, error_kind(error))
                await self.queue.fail_delivery(lease, _(GONE_TEXT), "gone")
                await self.queue.mark_delivered(lease, None)  # nobody there to tell
                await self.queue.purge_files(job.id)
                return True
            except DeliveryError as error:
                wait = pause
                if isinstance(error, RetryAfterError):
                    wait = error.retry_after_s
                retry = error.transient and tries < DELIVERY_ATTEMPTS and wait <= MAX_RETRY_AFTER_S
                log.warning("job %s: delivery try %d failed (%s): %s%s", job.id, tries, error_kind(error),
                            error, f"; retrying in {wait:g} s" if retry else "")
                self.metrics.delivery_failed(replier.platform, error_kind(error))
                if not retry:
                    return await self.give_up(lease, replier, _(SEND_FAILED_TEXT), "send_failed")
                await self.holding(lease, self.sleep_unless_stopping(wait))  # waits can pass a lease
                if self.stopping.is_set():  # sent nothing: the next start delivers it
                    await self.queue.release_delivery(lease)
                    return False
                if not isinstance(error, RetryAfterError):
                    pause *= 2
        await self.queue.mark_delivered(lease, reply_id)
        log.info("job %s: result delivered", job.id)
        await self.safe_status(job, _(DONE_TEXT))
        await self.queue.purge_files(job.id)
        return True

    async def give_up(self, lease: DeliveryLease, replier: ChatReplier, text: str, kind: str) -> bool:
        """The result cannot be sent: record the failure, delete the files, tell the user."""
        failed = await self.queue.fail_delivery(lease, text, kind)
        await self.queue.purge_files(failed.id)
        return await self.tell_failure(lease, replier, failed)

    async def refitted(self, lease: DeliveryLease, path: Path, smaller: Path, delivery: Delivery,
                       budget: int) -> list[str] | None:
        """``path`` encoded again into ``smaller`` within ``budget`` bytes; None when that is impossible
        or the courier is stopping (the re-fit is stopped then)."""
        stop = threading.Event()
        stopping = asyncio.ensure_future(self.stopping.wait())
        stopping.add_done_callback(lambda _: stop.set())
        try:
            work = asyncio.to_thread(refit, path, smaller, delivery.kind, budget, delivery.duration_s, stop.is_set)
            notes = await self.holding(lease, work)
        except EngineError as error:
            if not self.stopping.is_set():
                log.warning("job %s: no smaller re-fit within %d bytes: %s (%s)", lease.job_id, budget, error,
                            getattr(error, "detail", None))
            smaller.unlink(missing_ok=True)
            return None
        finally:
            stopping.cancel()
        return notes or [f"shrunk to fit {budget / 1e6:.1f} MB"]

    async def sleep_unless_stopping(self, seconds: float) -> None:
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait([stopping], timeout=seconds)
        finally:
            stopping.cancel()

    async def tell_failure(self, lease: DeliveryLease, replier: ChatReplier, job: Job) -> bool:
        """Send the failure's text; one that could not be sent is given back and tried again later."""
        loop = asyncio.get_running_loop()
        try:
            await replier.send_error(self.current(job),
                                     stored_failure_text(job.error) if job.error else _(GENERIC_FAILURE))
        except RetryAfterError as error:
            log.warning("job %s: failure message held back %g s (flood wait)", job.id, error.retry_after_s)
            return await self.hold_back(lease, loop.time() + error.retry_after_s)
        except DeliveryError as error:
            if error.transient:
                log.warning("job %s: could not send the failure message (%s); retrying in %g s", job.id, error,
                            REPORT_RETRY_PAUSE_S)
                return await self.hold_back(lease, loop.time() + REPORT_RETRY_PAUSE_S)
            log.warning("job %s: the failure message cannot be sent (%s: %s); giving up on it", job.id,
                        error_kind(error), error)
        except Exception:
            log.exception("job %s: could not send the failure message; will retry", job.id)
            return await self.hold_back(lease, loop.time() + REPORT_RETRY_PAUSE_S)
        self._not_before.pop(job.id, None)
        await self.queue.mark_delivered(lease, None)
        return True

    async def hold_back(self, lease: DeliveryLease, until: float) -> bool:
        self._not_before[lease.job_id] = until
        await self.queue.release_delivery(lease)
        return False
