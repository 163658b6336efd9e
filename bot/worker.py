"""The single worker: claim a job, run the engine in a thread, report progress, deliver, record.

One coroutine serves every platform (the design: one GPU worker). The event loop stays responsive
because the engine runs in a thread; the worker only wakes every few seconds to heartbeat its
lease, store progress, edit the status message and check for /cancel.

Delivery is recorded in the same queue step that marks the job done (``queue.complete``): a crash
before that step re-delivers once on restart (the result is kept), after it never.

What stops a running engine (its ``cancelled`` hook, honoured between frames and in every ffmpeg
step): the user's /cancel, the job's time limit (``max_job_seconds``), a lost lease, and the
service shutting down (SIGTERM), which hands the job back to the queue without counting the attempt.
A cancelled job is never delivered: the cancel flag is read again after the engine returns and
before every send of the result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Literal, TypeVar

from interpolation import api as engine
from interpolation.encoding import CHAT_CRF, CHAT_PRESET, resolve
from interpolation.errors import BadInputError, CancelledError, EngineError, WeightsError
from interpolation.fit import fit_video, make_gif
from interpolation.models import FrameInterpolator, create_model
from interpolation.options import Limits, Options, Progress, Result
from interpolation.probe import probe
from storage import Claim, Job, JobQueue, LeaseLostError

from . import i18n
from .commands import JobSettings
from .config import Settings
from .i18n import N_, _
from .metrics import NO_METRICS, JobObserver
from .presence import Presence
from .platform import DeliveryError, RecipientGoneError, RetryAfterError, TooLargeError, error_kind
from .replies import (OUT_OF_SPACE_TEXT, ChatReplier, Delivery, DeliveryKind, engine_text, progress_text,
                      queued_text, result_caption, stored_failure_text)
from .service import LANGUAGE_SETTING, out_of_space

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Sends of one result for transient platform errors, and the first pause between them (seconds, doubling).
DELIVERY_ATTEMPTS = 4
DELIVERY_RETRY_PAUSE_S = 2.0
#: The longest flood wait (RetryAfter / 429) sat out for one send; a longer one counts as a failed try.
MAX_RETRY_AFTER_S = 120.0
#: Pause before a failure message that could not be sent is tried again (the loop runs every second).
REPORT_RETRY_PAUSE_S = 30.0
#: Re-fits of a result the platform refused as too large, each to this share of the last budget.
MAX_REFITS = 2
REFIT_FACTOR = 0.7
#: Status messages of this many waiting jobs are refreshed whenever the queue moves.
POSITION_UPDATES_PER_CLAIM = 10
#: Seconds after enqueue during which the adapter's own "Queued" message is awaited.
STATUS_MESSAGE_GRACE_S = 10.0
#: How long a stopped engine may take to notice (one frame, one ffmpeg poll) before its thread is left
#: behind: at shutdown (a supervisor's grace period is short), and otherwise (cancel, time limit).
SHUTDOWN_STOP_GRACE_S = 3.0
STOP_GRACE_S = 30.0
#: What the user is told (message ids: said as ``_(TEXT)`` in the job's language, bot/i18n.py).
GENERIC_FAILURE = N_("Sorry, something went wrong on my side while smoothing this video. "
                     "Please try again later.")
SEND_FAILED_TEXT = N_("I made your video but could not send it here. Please try again later.")
TOO_LARGE_TEXT = N_("I made your video but it is larger than this chat accepts, even after shrinking it. "
                    "Try a shorter clip or a lower frame rate.")
GONE_TEXT = N_("I made your video but could not send it: this chat no longer takes messages from me.")
SHUTDOWN_TEXT = N_("Paused: the bot is restarting. Your video will be smoothed when it is back.")
CANCELLED_TEXT = N_("Cancelled.")
DONE_TEXT = N_("Done.")
INPUT_GONE_TEXT = N_("The video file is gone (it was cleaned up); please send it again.")
FALLBACK_MODEL = "flow"
#: An absolute path of two or more parts ("/srv/data/x.mp4", not a URL's): never shown in a chat.
SERVER_PATH = re.compile(r"(?<![\w.:/])/[\w.-]+/[\w./-]*")

EngineRunner = Callable[..., Result]
#: Why a running engine was stopped by the worker.
StopReason = Literal["cancel", "timeout", "shutdown", "lease"]


def delivery_record(result: Path) -> Path:
    """Where the :class:`Delivery` of a result is kept, so a restart can re-deliver it."""
    return result.with_name(result.name + ".json")


def save_delivery(result: Path, delivery: Delivery) -> None:
    delivery_record(result).write_text(json.dumps(asdict(delivery)))


def load_delivery(result: Path) -> Delivery | None:
    try:
        return Delivery(**json.loads(delivery_record(result).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def remove_result(result: Path) -> None:
    """Delete a result file and its delivery record (missing ones are fine)."""
    result.unlink(missing_ok=True)
    delivery_record(result).unlink(missing_ok=True)


def time_limit_text(seconds: float) -> str:
    """ "took longer than the 30-minute limit" for the user, in whole minutes where it is one."""
    if seconds >= 60 and seconds % 60 == 0:
        return _("Sorry, smoothing this video took longer than the {minutes}-minute limit, so I stopped it. "
                 "Try a shorter clip or a lower frame rate.").format(minutes=f"{seconds / 60:g}")
    return _("Sorry, smoothing this video took longer than the {seconds}-second limit, so I stopped it. "
             "Try a shorter clip or a lower frame rate.").format(seconds=f"{seconds:g}")


def start_thread(work: Callable[[], T], name: str) -> asyncio.Future[T]:
    """Run ``work`` in a daemon thread. Unlike ``asyncio.to_thread``, a thread that does not stop
    when asked (a stuck native call) cannot keep the process from exiting at shutdown."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as error:  # handed to the awaiting coroutine, which decides
            future.set_exception(error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return asyncio.wrap_future(future)


class LatestProgress:
    """Progress callback for the engine thread: keeps only the newest report (one reference swap)."""

    def __init__(self) -> None:
        self.value: Progress | None = None

    def __call__(self, progress: Progress) -> None:
        self.value = progress


def user_message(error: EngineError, input_path: Path) -> str:
    """The engine's one-line message for the chat: without the stored file's name, and never a server path."""
    text = _(error.template).format(**error.values) if error.template else str(error)  # in the job's language
    prefix = f"{input_path.name}: "
    text = text.removeprefix(prefix)
    if not text.strip() or SERVER_PATH.search(text) or str(input_path.parent) in text:
        return _(GENERIC_FAILURE)
    return text[:1].upper() + text[1:]


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


class Worker:
    def __init__(self, queue: JobQueue, repliers: Mapping[str, ChatReplier], settings: Settings, *,
                 worker_id: str | None = None, idle_poll_s: float = 1.0,
                 engine_runner: EngineRunner = engine.run) -> None:
        self.queue = queue
        self.repliers = dict(repliers)
        self.settings = settings
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
        self.idle_poll_s = idle_poll_s
        self.engine_runner = engine_runner
        self.results_dir = settings.data_dir / "results"
        self._wakeup = asyncio.Event()
        #: Set when the service shuts down: no new claims, the running engine stops, its job goes back.
        self.stopping = asyncio.Event()
        self._models: dict[tuple[str, Path | None], FrameInterpolator] = {}
        #: Last status text shown per job, so unchanged text is not sent again.
        self._shown: dict[int, str] = {}
        #: Status messages sent by the worker (the job snapshots it holds predate them).
        self._status_ids: dict[int, str] = {}
        #: Failure messages the platform asked us to hold back (flood wait): job id -> loop time.
        self._report_not_before: dict[int, float] = {}
        #: Where job timings and delivery failures are reported (bot/metrics.py; off by default).
        self.metrics: JobObserver = NO_METRICS

    def notify(self) -> None:
        """Adapters call this after an enqueue so the worker does not wait for its next poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve jobs until ``stop`` is set. Unexpected errors are logged; the loop goes on.

        When ``stop`` is set during a job, the engine is stopped at its next safe point and the job
        handed back to the queue (this attempt not counted); a result being sent is sent first.
        """
        watcher = asyncio.ensure_future(self._follow(stop))
        presence = await Presence.start(self.queue, self.worker_id)  # for operators: status, metrics
        try:
            report = await self.queue.recover(self.worker_id)
            if report.total:
                log.info("recovered jobs after restart: requeued=%s failed=%s cancelled=%s",
                         report.requeued, report.failed, report.cancelled)
            while not self.stopping.is_set():
                try:
                    await self.report_failures()
                    if await self.process_next():
                        continue
                except Exception:
                    log.exception("worker loop error; continuing")
                self._wakeup.clear()
                waiters = [asyncio.ensure_future(self._wakeup.wait()), asyncio.ensure_future(self.stopping.wait())]
                await asyncio.wait(waiters, timeout=self.idle_poll_s, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
        finally:
            watcher.cancel()
            await presence.stop()

    async def _follow(self, stop: asyncio.Event) -> None:
        await stop.wait()
        log.info("stopping: no new jobs; a running job goes back to the queue")
        self.stopping.set()

    async def process_next(self) -> bool:
        """Claim and finish one job; False when the queue is empty (or the worker is stopping)."""
        if self.stopping.is_set():
            return False
        claim = await self.queue.claim(self.worker_id)
        if claim is None:
            return False
        await self.refresh_positions()
        replier = self.repliers.get(claim.job.platform)
        if replier is None:
            log.error("job %s is for %s, which this service does not run", claim.job_id, claim.job.platform)
            await self.queue.fail(claim, f"The {claim.job.platform} service is not running.")
            return True
        try:
            with i18n.language(claim.job.options.get(LANGUAGE_SETTING)):  # the user's, chosen at enqueue
                await self.handle_and_answer(claim, replier)
        finally:
            self._shown.pop(claim.job_id, None)
            self._status_ids.pop(claim.job_id, None)
        return True

    async def handle_and_answer(self, claim: Claim, replier: ChatReplier) -> None:
        """Handle one job; an unexpected error fails it with an apology (the details go to the log)."""
        try:
            await self.handle(claim, replier)
        except LeaseLostError:
            log.warning("job %s: lease lost (another worker owns it now); dropping our copy", claim.job_id)
        except Exception as error:
            if out_of_space(error):
                log.error("job %s: the server is out of space (%s)", claim.job_id, error)
                await self.fail_and_tell(claim, replier, _(OUT_OF_SPACE_TEXT), remove_files=True)
            else:
                log.exception("job %s failed unexpectedly", claim.job_id)
                await self.fail_and_tell(claim, replier, _(GENERIC_FAILURE))

    async def handle(self, claim: Claim, replier: ChatReplier) -> None:
        job = claim.job
        if job.has_result and Path(job.result_path).is_file():
            delivery = load_delivery(Path(job.result_path))
            if delivery is not None:
                log.info("job %s: result already made, delivering it again", job.id)
                await self.deliver(claim, replier, Path(job.result_path), delivery)
                return
        if job.input_path is None or not Path(job.input_path).is_file():
            await self.fail_and_tell(claim, replier, _(INPUT_GONE_TEXT))
            return
        job_settings = JobSettings.from_dict(job.options, self.settings.default_model)
        kind: DeliveryKind = "video"
        if job_settings.output == "gif":
            kind = "animation" if replier.animations_as_mp4 else "gif"
        output = self.results_dir / f"job-{job.id}.{'gif' if kind == 'gif' else 'mp4'}"
        options = self.engine_options(job_settings, kind, job.options.get("upload_limit") or replier.upload_limit(job))
        await self.safe_status(replier, job, progress_text(None))
        outcome = await self.run_engine(claim, replier, Path(job.input_path), output, options)
        if outcome is None:
            return
        result, model_note = outcome
        delivery = Delivery(kind=kind, caption=result_caption(result, model_note, options.quality), width=result.width,
                            height=result.height, duration_s=result.duration_s)
        try:
            save_delivery(output, delivery)
        except OSError as error:
            if not out_of_space(error):
                raise
            log.error("job %s: the server is out of space for the result's record (%s)", job.id, error)
            await self.fail_and_tell(claim, replier, _(OUT_OF_SPACE_TEXT), remove_files=True)
            return
        await self.queue.set_result(claim, output)
        if self.stopping.is_set():  # made, not sent yet: the next start delivers it without recomputing
            await self.release(claim, replier, output)
            return
        await self.deliver(claim, replier, output, delivery)

    def engine_options(self, job_settings: JobSettings, kind: DeliveryKind, max_bytes: int | None) -> Options:
        """The one place where chat settings become engine options."""
        return Options(
            fps=job_settings.fps,
            loop=job_settings.loop,
            output="gif" if kind == "gif" else "mp4",
            preset=CHAT_PRESET, crf=None if kind == "gif" else CHAT_CRF,  # the platform re-encodes it anyway
            keep_audio=kind == "video",
            slowmo=job_settings.slowmo,
            compare=job_settings.compare,
            cut_mode=job_settings.cut_mode,
            model=job_settings.model,
            quality=job_settings.quality,
            weights={"rife": self.settings.rife_weights, "dain": self.settings.dain_weights}.get(job_settings.model),
            device=self.settings.device,
            max_bytes=max_bytes,
            limits=Limits(max_pixels=self.settings.max_input_pixels, max_duration_s=self.settings.max_input_duration_s,
                          max_output_frames=self.settings.max_output_frames),
        )

    def model_for(self, options: Options) -> tuple[FrameInterpolator, str | None]:
        """A cached model; RIFE without weights falls back to optical flow with a note."""
        key = (options.model, options.weights, options.quality)
        if key not in self._models:
            try:
                self._models[key] = create_model(options.model, options.weights, options.device, options.quality)
            except WeightsError as error:
                if options.model != "rife":
                    raise
                log.warning("RIFE weights unusable (%s); falling back to %s", error, FALLBACK_MODEL)
                fallback, _note = self.model_for(Options(model=FALLBACK_MODEL))
                return fallback, _("RIFE weights missing: used optical flow")
        return self._models[key], None

    async def run_engine(self, claim: Claim, replier: ChatReplier, source: Path, output: Path,
                         options: Options) -> tuple[Result, str | None] | None:
        """Run the engine in a thread while heartbeating, storing progress and editing the status.

        Returns None when the job ended here (cancelled, failed and told, timed out, handed back at
        shutdown, or lease lost).
        """
        job = claim.job
        output.parent.mkdir(parents=True, exist_ok=True)
        stop_engine = threading.Event()
        latest = LatestProgress()

        def run_in_thread() -> tuple[Result, str | None]:
            notes: list[str | None] = []

            def model() -> FrameInterpolator:  # called by the engine beside its scan of the clip
                loaded, note = self.model_for(options)
                notes.append(note)
                return loaded

            result = self.engine_runner(source, output, options, progress=latest, cancelled=stop_engine.is_set,
                                        model=model)
            return result, notes[0] if notes else None

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.max_job_seconds
        task = start_thread(run_in_thread, f"engine-job-{job.id}")
        tick = min(self.settings.progress_edit_interval_s, self.settings.lease_seconds / 3)
        stopping = asyncio.ensure_future(self.stopping.wait())
        reason: StopReason | None = None
        try:
            while not task.done():
                await asyncio.wait([task, stopping], timeout=max(0.0, min(tick, deadline - loop.time())),
                                   return_when=asyncio.FIRST_COMPLETED)
                if task.done():
                    break
                if self.stopping.is_set():
                    reason = "shutdown"
                elif loop.time() >= deadline:
                    reason = "timeout"
                else:
                    lease = await self.queue.heartbeat(claim)
                    reason = "lease" if not lease.lease_ok else "cancel" if lease.cancel_requested else None
                if reason is not None:
                    break
                if latest.value is not None:
                    await self.queue.progress(claim, latest.value.fraction)
                    await self.safe_status(replier, job, progress_text(latest.value))
        finally:
            stopping.cancel()
        if reason is not None:
            await self.stop_engine(claim, task, stop_engine, reason, output)
            return await self.stopped(claim, replier, reason, output)
        try:
            result = task.result()
        except CancelledError:  # the engine saw a stop the worker did not ask for
            return await self.stopped(claim, replier, "cancel", output)
        except EngineError as error:
            detail = getattr(error, "detail", None)
            if out_of_space(error) or "No space left on device" in (detail or ""):
                log.error("job %s: the server is out of space writing the result: %s (%s)", job.id, error, detail)
                await self.fail_and_tell(claim, replier, _(OUT_OF_SPACE_TEXT), remove_files=True)
                return None
            level = logging.INFO if isinstance(error, BadInputError) else logging.ERROR
            log.log(level, "job %s failed: %s: %s%s", job.id, type(error).__name__, error,
                    f"; detail: {detail}" if detail else "")
            await self.fail_and_tell(claim, replier, user_message(error, source))
            return None
        lease = await self.queue.heartbeat(claim)  # a cancel may have come after the last look
        if not lease.lease_ok:
            remove_result(output)
            raise LeaseLostError(job.id)
        if lease.cancel_requested:
            await self.cancelled(claim, replier, output)
            return None
        self.metrics.observe_job(claim.job, result[0], latest.value)
        return result

    async def stop_engine(self, claim: Claim, task: asyncio.Future[T], stop_engine: threading.Event,
                          reason: StopReason, output: Path) -> None:
        """Ask the engine to stop and wait a little for it; a thread that does not stop is left behind."""
        stop_engine.set()
        grace = SHUTDOWN_STOP_GRACE_S if reason == "shutdown" else STOP_GRACE_S
        await asyncio.wait([task], timeout=grace)
        if task.done():
            if not task.cancelled() and task.exception() is None:
                remove_result(output)  # it finished just as it was stopped: the result is not wanted
            return
        log.error("job %s: the engine did not stop within %.0f s of the %s; leaving its thread behind",
                  claim.job_id, grace, reason)
        task.add_done_callback(lambda _: remove_result(output))

    async def stopped(self, claim: Claim, replier: ChatReplier, reason: StopReason, output: Path) -> None:
        """End a job whose engine the worker stopped, as ``reason`` requires."""
        job = claim.job
        if reason == "lease":
            raise LeaseLostError(job.id)
        if reason == "cancel":
            await self.cancelled(claim, replier, output)
        elif reason == "timeout":
            log.error("job %s: stopped after the %.0f s limit (SMOOTHBOT_MAX_JOB_SECONDS)", job.id,
                      self.settings.max_job_seconds)
            await self.fail_and_tell(claim, replier, time_limit_text(self.settings.max_job_seconds))
        else:
            await self.release(claim, replier)
        return None

    async def release(self, claim: Claim, replier: ChatReplier, result: Path | None = None) -> None:
        """Shutdown: hand the job back without counting this attempt (a cancelled one ends cancelled)."""
        lease = await self.queue.heartbeat(claim)
        if lease.lease_ok and lease.cancel_requested:
            await self.cancelled(claim, replier, result or self.result_path(claim))
            return
        await self.queue.release(claim)
        log.info("job %s: handed back to the queue for the next start", claim.job_id)
        await self.safe_status(replier, claim.job, _(SHUTDOWN_TEXT))

    def result_path(self, claim: Claim) -> Path | None:
        return Path(claim.job.result_path) if claim.job.result_path else None

    async def cancelled(self, claim: Claim, replier: ChatReplier, output: Path | None) -> None:
        """The user asked to stop: record it, say so, and keep nothing (never deliver a cancelled job)."""
        await self.queue.mark_cancelled(claim)
        log.info("job %s: cancelled by the user", claim.job_id)
        if output is not None:
            remove_result(output)
        await self.queue.purge_files(claim.job_id)
        await self.safe_status(replier, claim.job, _(CANCELLED_TEXT))

    async def cancel_requested(self, claim: Claim) -> bool:
        """Read the job's cancel flag again (and extend the lease); LeaseLostError when it is gone."""
        lease = await self.queue.heartbeat(claim)
        if not lease.lease_ok:
            raise LeaseLostError(claim.job_id)
        return lease.cancel_requested

    async def heartbeating(self, claim: Claim, work: Awaitable[T]) -> T:
        """Await ``work`` (an upload, a re-fit) while keeping the job's lease alive."""
        async def beat() -> None:
            while True:
                await asyncio.sleep(self.settings.lease_seconds / 3)
                await self.queue.heartbeat(claim)

        beater = asyncio.ensure_future(beat())
        try:
            return await work
        finally:
            beater.cancel()

    async def deliver(self, claim: Claim, replier: ChatReplier, path: Path, delivery: Delivery) -> None:
        """Send the result: flood waits sat out, transient failures retried with a growing pause, a file
        refused as too large re-fitted smaller, a chat that is gone given up at once. The cancel flag
        is read again before every send."""
        job = claim.job
        original = path
        pause = DELIVERY_RETRY_PAUSE_S
        tries = refits = 0
        budget = replier.upload_limit(self.current(job))
        try:
            while True:
                if await self.cancel_requested(claim):
                    await self.cancelled(claim, replier, original)
                    return
                tries += 1
                try:
                    reply_id = await self.heartbeating(claim, replier.deliver(self.current(job), path, delivery))
                    break
                except TooLargeError as error:
                    log.warning("job %s: %s refused the result as too large (%d bytes): %s", job.id,
                                replier.platform, path.stat().st_size, error)
                    self.metrics.delivery_failed(replier.platform, error_kind(error))
                    if refits == MAX_REFITS:
                        await self.fail_and_tell(claim, replier, _(TOO_LARGE_TEXT), remove_files=True)
                        return
                    refits += 1
                    budget = int(min(path.stat().st_size, budget or path.stat().st_size) * REFIT_FACTOR)
                    smaller = path.with_name(f"{original.stem}-fit{refits}{original.suffix}")
                    notes = await self.refitted(claim, path, smaller, delivery, budget)
                    if self.stopping.is_set():  # the result is kept: the next start sends (and fits) it
                        await self.release(claim, replier, original)
                        return
                    if notes is None:
                        await self.fail_and_tell(claim, replier, _(TOO_LARGE_TEXT), remove_files=True)
                        return
                    if path != original:
                        path.unlink(missing_ok=True)
                    path = smaller
                    delivery = replace(delivery, caption="\n".join([delivery.caption, *map(engine_text, notes)]))
                except RecipientGoneError as error:
                    log.warning("job %s: cannot be delivered, %s says the chat is gone: %s", job.id,
                                replier.platform, error)
                    self.metrics.delivery_failed(replier.platform, error_kind(error))
                    failed = await self.queue.fail(claim, _(GONE_TEXT))
                    await self.queue.mark_reported(failed.id, None)  # nobody there to tell
                    await self.queue.purge_files(job.id)
                    remove_result(original)
                    return
                except DeliveryError as error:
                    wait = pause
                    if isinstance(error, RetryAfterError):
                        wait = error.retry_after_s
                    retry = error.transient and tries < DELIVERY_ATTEMPTS and wait <= MAX_RETRY_AFTER_S
                    log.warning("job %s: delivery try %d failed (%s): %s%s", job.id, tries, error_kind(error),
                                error, f"; retrying in {wait:g} s" if retry else "")
                    self.metrics.delivery_failed(replier.platform, error_kind(error))
                    if not retry:
                        await self.fail_and_tell(claim, replier, _(SEND_FAILED_TEXT), remove_files=True)
                        return
                    await self.heartbeating(claim, self.sleep_unless_stopping(wait))  # waits can pass a lease
                    if self.stopping.is_set():  # sent nothing: the next start delivers it
                        await self.release(claim, replier, original)
                        return
                    if not isinstance(error, RetryAfterError):
                        pause *= 2
        finally:
            if path != original:
                path.unlink(missing_ok=True)
        await self.queue.complete(claim, reply_id)
        await self.safe_status(replier, job, _(DONE_TEXT))
        await self.queue.purge_files(claim.job_id)
        delivery_record(original).unlink(missing_ok=True)

    async def refitted(self, claim: Claim, path: Path, smaller: Path, delivery: Delivery,
                       budget: int) -> list[str] | None:
        """``path`` encoded again into ``smaller`` within ``budget`` bytes; None when that is impossible
        or the worker is stopping (the re-fit is stopped then, like the engine)."""
        stop = threading.Event()
        stopping = asyncio.ensure_future(self.stopping.wait())
        stopping.add_done_callback(lambda _: stop.set())
        try:
            work = asyncio.to_thread(refit, path, smaller, delivery.kind, budget, delivery.duration_s, stop.is_set)
            notes = await self.heartbeating(claim, work)
        except EngineError as error:
            if not self.stopping.is_set():
                log.warning("job %s: no smaller re-fit within %d bytes: %s (%s)", claim.job_id, budget, error,
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

    async def fail_and_tell(self, claim: Claim, replier: ChatReplier, text: str, *, remove_files: bool = False) -> None:
        """Record the failure first, then tell the user; ``report_failures`` retries the telling.

        ``remove_files``: delete the job's input and any partial result now (a full disk needs the room)."""
        job = await self.queue.fail(claim, text)
        if remove_files:
            remove_result(self.results_dir / f"job-{job.id}.mp4")
            remove_result(self.results_dir / f"job-{job.id}.gif")
            await self.queue.purge_files(job.id)
        await self.tell_failure(replier, job)

    async def tell_failure(self, replier: ChatReplier, job: Job) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._report_not_before.get(job.id, 0.0):
            return
        try:
            with i18n.language(job.options.get(LANGUAGE_SETTING)):
                await replier.send_error(self.current(job),
                                         stored_failure_text(job.error) if job.error else _(GENERIC_FAILURE))
        except RetryAfterError as error:
            log.warning("job %s: failure message held back %g s (flood wait)", job.id, error.retry_after_s)
            self._report_not_before[job.id] = loop.time() + error.retry_after_s
            return
        except DeliveryError as error:
            if error.transient:
                log.warning("job %s: could not send the failure message (%s); retrying in %g s", job.id, error,
                            REPORT_RETRY_PAUSE_S)
                self._report_not_before[job.id] = loop.time() + REPORT_RETRY_PAUSE_S
                return
            log.warning("job %s: the failure message cannot be sent (%s: %s); giving up on it", job.id,
                        error_kind(error), error)
        except Exception:
            log.exception("job %s: could not send the failure message; will retry", job.id)
            return
        self._report_not_before.pop(job.id, None)
        await self.queue.mark_reported(job.id, None)

    async def report_failures(self) -> None:
        """Tell users about jobs that failed while nobody could (e.g. out of attempts after crashes)."""
        for job in await self.queue.unreported_failures():
            replier = self.repliers.get(job.platform)
            if replier is not None:
                await self.tell_failure(replier, job)

    async def refresh_positions(self) -> None:
        """The queue moved: show waiting users their new place."""
        positions = sorted((await self.queue.positions()).items(), key=lambda item: item[1])
        for job_id, position in positions[:POSITION_UPDATES_PER_CLAIM]:
            job = await self.queue.get(job_id)
            replier = self.repliers.get(job.platform) if job else None
            if job is not None and replier is not None and job.status_message_id is not None:
                with i18n.language(job.options.get(LANGUAGE_SETTING)):
                    await self.safe_status(replier, job, queued_text(position))

    def current(self, job: Job) -> Job:
        """``job`` with the status message the worker itself may have sent since the snapshot."""
        status_id = self._status_ids.get(job.id)
        return job if status_id is None else replace(job, status_message_id=status_id)

    async def with_status_message(self, job: Job) -> Job | None:
        """``job`` with its status message id, or None while the adapter may still be posting it.

        The adapter stores the "Queued" message's id just after enqueueing, so a fast claim can
        hold a snapshot without it. Only when none appeared within the grace period (the adapter
        died in between, or a re-delivered update was not answered again) does the worker post
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

    async def safe_status(self, replier: ChatReplier, job: Job, text: str) -> None:
        """Status edits are best effort (a failed edit must never fail the job) and never repeat."""
        if self._shown.get(job.id) == text:
            return
        try:
            target = await self.with_status_message(job)
            if target is None:
                return
            new_id = await replier.send_status(target, text)
            self._shown[job.id] = text
            if new_id is not None:
                self._status_ids[job.id] = new_id
                await self.queue.set_status_message(job.id, new_id)
        except Exception as error:
            log.warning("job %s: status update failed (%s: %s)", job.id, type(error).__name__, error)
