"""The worker: claim a job, fetch its input, run the engine in a thread, store the result, record.

It holds no chat platform and no token (``python -m bot --role worker`` runs it alone, on any
machine that reaches the queue and the file store). Everything the user sees is the front-end's
courier (bot/courier.py) reading what the worker records in the queue: progress, the result with
how to send it (``set_result`` + ``hand_over``), a failure with its text and kind, a cancellation.
The event loop stays responsive because the engine runs in a thread; the worker only wakes every
few seconds to heartbeat its lease, store progress and check for /cancel.

A worker that dies after storing the result leaves it on the job (``has_result``): the next claim
only hands it over, without running the engine again.

What stops a running engine (its ``cancelled`` hook, honoured between frames and in every ffmpeg
step): the user's /cancel, the job's time limit (``max_job_seconds``), a lost lease, and the
service shutting down (SIGTERM), which hands the job back to the queue without counting the attempt.
A cancelled job is never handed over: the cancel flag is read again after the engine returns and
after the result is stored (the courier reads it again before every send).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Literal, TypeVar

from interpolation import api as engine
from interpolation.encoding import CHAT_CRF, CHAT_PRESET
from interpolation.errors import BadInputError, CancelledError, EngineError, WeightsError
from interpolation.models import FrameInterpolator, create_model
from interpolation.options import Limits, Options, Progress, Result
from storage import Claim, FileMissingError, FileStore, JobQueue, LeaseLostError, is_key

from . import i18n
from .commands import JobSettings
from .config import Settings
from .i18n import N_, _
from .metrics import NO_METRICS, JobObserver
from .presence import Presence
from .replies import GENERIC_FAILURE, OUT_OF_SPACE_TEXT, Delivery, DeliveryKind, result_caption
from .service import LANGUAGE_SETTING, out_of_space

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a stopped engine may take to notice (one frame, one ffmpeg poll) before its thread is left
#: behind: at shutdown (a supervisor's grace period is short), and otherwise (cancel, time limit).
SHUTDOWN_STOP_GRACE_S = 3.0
STOP_GRACE_S = 30.0
#: What the user is told (message ids: said as ``_(TEXT)`` in the job's language, bot/i18n.py).
INPUT_GONE_TEXT = N_("The video file is gone (it was cleaned up); please send it again.")
FALLBACK_MODEL = "flow"
#: An absolute path of two or more parts ("/srv/data/x.mp4", not a URL's): never shown in a chat.
SERVER_PATH = re.compile(r"(?<![\w.:/])/[\w.-]+/[\w./-]*")

EngineRunner = Callable[..., Result]
#: Why a running engine was stopped by the worker.
StopReason = Literal["cancel", "timeout", "shutdown", "lease"]


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


async def while_renewing(work: Awaitable[T], renew: Callable[[], Awaitable[object]], every_s: float) -> T:
    """Await ``work`` while calling ``renew`` (a lease's heartbeat) every ``every_s`` seconds."""
    async def renewing() -> None:
        while True:
            await asyncio.sleep(every_s)
            await renew()

    renewer = asyncio.ensure_future(renewing())
    try:
        return await work
    finally:
        renewer.cancel()


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


class Worker:
    """Claims jobs and runs them; ``files`` is the file store (None: the job's paths are local files)."""

    def __init__(self, queue: JobQueue, settings: Settings, *, files: FileStore | None = None,
                 worker_id: str | None = None, idle_poll_s: float = 1.0,
                 engine_runner: EngineRunner = engine.run, woken_by_queue: bool = True) -> None:
        self.queue = queue
        self.settings = settings
        self.files = files
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
        self.idle_poll_s = idle_poll_s
        self.engine_runner = engine_runner
        #: Wake on the queue's own signal (PostgreSQL NOTIFY from any process). A worker beside the
        #: adapters is woken by ``notify`` instead, after the adapter has read the new job's position.
        self.woken_by_queue = woken_by_queue
        self.results_dir = settings.data_dir / "results"
        #: Where a worker with a file store keeps a job's input and result while it runs.
        self.work_dir = settings.data_dir / "work"
        self._wakeup = asyncio.Event()
        #: Set when the service shuts down: no new claims, the running engine stops, its job goes back.
        self.stopping = asyncio.Event()
        self._models: dict[tuple[str, Path | None, str], FrameInterpolator] = {}
        #: Where job timings are reported (bot/metrics.py; off by default).
        self.metrics: JobObserver = NO_METRICS

    def notify(self) -> None:
        """Adapters in the same process call this after an enqueue so the worker does not wait for its
        next poll (other processes are woken by the queue: LISTEN/NOTIFY on PostgreSQL)."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve jobs until ``stop`` is set. Unexpected errors are logged; the loop goes on.

        When ``stop`` is set during a job, the engine is stopped at its next safe point and the job
        handed back to the queue (this attempt not counted).
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
                    if await self.process_next():
                        continue
                except Exception:
                    log.exception("worker loop error; continuing")
                self._wakeup.clear()
                waiters = [asyncio.ensure_future(self._wakeup.wait()), asyncio.ensure_future(self.stopping.wait())]
                if self.woken_by_queue:
                    waiters.append(asyncio.ensure_future(self.queue.wait_for_work(self.idle_poll_s)))
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
        try:
            with i18n.language(claim.job.options.get(LANGUAGE_SETTING)):  # the user's, chosen at enqueue
                await self.handle_or_fail(claim)
        finally:
            if self.files is not None:  # the local copies of a stored input and result
                shutil.rmtree(self.job_dir(claim.job_id), ignore_errors=True)
        return True

    async def handle_or_fail(self, claim: Claim) -> None:
        """Handle one job; an unexpected error fails it with an apology (the details go to the log)."""
        try:
            await self.handle(claim)
        except LeaseLostError:
            log.warning("job %s: lease lost (another worker owns it now); dropping our copy", claim.job_id)
        except Exception as error:
            if out_of_space(error):
                log.error("job %s: the server is out of space (%s)", claim.job_id, error)
                await self.fail(claim, _(OUT_OF_SPACE_TEXT), "out_of_space", remove_files=True)
            else:
                log.exception("job %s failed unexpectedly", claim.job_id)
                await self.fail(claim, _(GENERIC_FAILURE), "internal")

    def job_dir(self, job_id: int) -> Path:
        return self.work_dir / f"job-{job_id}"

    async def handle(self, claim: Claim) -> None:
        job = claim.job
        if job.has_result:  # made by an earlier attempt that stopped before handing it over
            log.info("job %s: result already made, handing it over", job.id)
            await self.queue.hand_over(claim)
            return
        source = await self.fetch_input(claim)
        if source is None:
            await self.fail(claim, _(INPUT_GONE_TEXT), "input_gone")
            return
        job_settings = JobSettings.from_dict(job.options, self.settings.default_model)
        kind: DeliveryKind = "video"
        if job_settings.output == "gif":
            # The front-end said at enqueue how its platform shows animations.
            kind = "animation" if job.options.get("animations_as_mp4") else "gif"
        folder = self.results_dir if self.files is None else self.job_dir(job.id)
        output = folder / f"job-{job.id}.{'gif' if kind == 'gif' else 'mp4'}"
        options = self.engine_options(job_settings, kind, job.options.get("upload_limit"))
        outcome = await self.run_engine(claim, source, output, options)
        if outcome is None:
            return
        result, model_note = outcome
        delivery = Delivery(kind=kind, caption=result_caption(result, model_note, options.quality), width=result.width,
                            height=result.height, duration_s=result.duration_s)
        reference = await self.heartbeating(claim, self.store_result(job.id, output))
        await self.queue.set_result(claim, reference, asdict(delivery))
        if await self.cancel_requested(claim):  # a cancel during the upload
            await self.cancelled(claim, output)
            return
        await self.queue.hand_over(claim)
        log.info("job %s: result stored and handed over for delivery", job.id)

    async def fetch_input(self, claim: Claim) -> Path | None:
        """The job's input as a local file: the stored path, or a copy fetched from the file store."""
        reference = claim.job.input_path
        if reference is None:
            return None
        if self.files is None or not is_key(reference):  # a local path (no store, or from before it)
            return Path(reference) if Path(reference).is_file() else None
        target = self.job_dir(claim.job_id) / f"input{Path(reference).suffix}"
        try:
            return await self.heartbeating(claim, self.files.get(reference, target))
        except FileMissingError:
            return None

    async def store_result(self, job_id: int, output: Path) -> str:
        """Put the result where front-ends find it; returns the reference to record on the job."""
        if self.files is None:
            return str(output)
        key = await self.files.put_result(job_id, output)
        output.unlink(missing_ok=True)
        return key

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

    async def run_engine(self, claim: Claim, source: Path, output: Path,
                         options: Options) -> tuple[Result, str | None] | None:
        """Run the engine in a thread while heartbeating and storing progress (the courier shows it).

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
        finally:
            stopping.cancel()
        if reason is not None:
            await self.stop_engine(claim, task, stop_engine, reason, output)
            return await self.stopped(claim, reason, output)
        try:
            result = task.result()
        except CancelledError:  # the engine saw a stop the worker did not ask for
            return await self.stopped(claim, "cancel", output)
        except EngineError as error:
            detail = getattr(error, "detail", None)
            if out_of_space(error) or "No space left on device" in (detail or ""):
                log.error("job %s: the server is out of space writing the result: %s (%s)", job.id, error, detail)
                await self.fail(claim, _(OUT_OF_SPACE_TEXT), "out_of_space", remove_files=True)
                return None
            level = logging.INFO if isinstance(error, BadInputError) else logging.ERROR
            log.log(level, "job %s failed: %s: %s%s", job.id, type(error).__name__, error,
                    f"; detail: {detail}" if detail else "")
            await self.fail(claim, user_message(error, source),
                            "bad_input" if isinstance(error, BadInputError) else "engine")
            return None
        lease = await self.queue.heartbeat(claim)  # a cancel may have come after the last look
        if not lease.lease_ok:
            output.unlink(missing_ok=True)
            raise LeaseLostError(job.id)
        if lease.cancel_requested:
            await self.cancelled(claim, output)
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
                output.unlink(missing_ok=True)  # it finished just as it was stopped: the result is not wanted
            return
        log.error("job %s: the engine did not stop within %.0f s of the %s; leaving its thread behind",
                  claim.job_id, grace, reason)
        task.add_done_callback(lambda _: output.unlink(missing_ok=True))

    async def stopped(self, claim: Claim, reason: StopReason, output: Path) -> None:
        """End a job whose engine the worker stopped, as ``reason`` requires."""
        job = claim.job
        if reason == "lease":
            raise LeaseLostError(job.id)
        if reason == "cancel":
            await self.cancelled(claim, output)
        elif reason == "timeout":
            log.error("job %s: stopped after the %.0f s limit (SMOOTHBOT_MAX_JOB_SECONDS)", job.id,
                      self.settings.max_job_seconds)
            await self.fail(claim, time_limit_text(self.settings.max_job_seconds), "time_limit")
        else:
            await self.release(claim)
        return None

    async def release(self, claim: Claim) -> None:
        """Shutdown: hand the job back without counting this attempt (a cancelled one ends cancelled)."""
        lease = await self.queue.heartbeat(claim)
        if lease.lease_ok and lease.cancel_requested:
            await self.cancelled(claim, None)
            return
        await self.queue.release(claim)
        log.info("job %s: handed back to the queue for the next start", claim.job_id)

    async def cancelled(self, claim: Claim, output: Path | None) -> None:
        """The user asked to stop: record it and keep nothing (the courier says "Cancelled.")."""
        await self.queue.mark_cancelled(claim)
        log.info("job %s: cancelled by the user", claim.job_id)
        if output is not None:
            output.unlink(missing_ok=True)
        await self.queue.purge_files(claim.job_id)

    async def cancel_requested(self, claim: Claim) -> bool:
        """Read the job's cancel flag again (and extend the lease); LeaseLostError when it is gone."""
        lease = await self.queue.heartbeat(claim)
        if not lease.lease_ok:
            raise LeaseLostError(claim.job_id)
        return lease.cancel_requested

    async def heartbeating(self, claim: Claim, work: Awaitable[T]) -> T:
        """Await ``work`` (a download, an upload) while keeping the job's lease alive."""
        return await while_renewing(work, lambda: self.queue.heartbeat(claim), self.settings.lease_seconds / 3)

    async def fail(self, claim: Claim, text: str, kind: str, *, remove_files: bool = False) -> None:
        """Record the failure with its text for the user and its kind; the courier tells the user.

        ``remove_files``: delete the job's input and any partial result now (a full disk needs the room)."""
        job = await self.queue.fail(claim, text, kind)
        if remove_files:
            (self.results_dir / f"job-{job.id}.mp4").unlink(missing_ok=True)
            (self.results_dir / f"job-{job.id}.gif").unlink(missing_ok=True)
            await self.queue.purge_files(job.id)
