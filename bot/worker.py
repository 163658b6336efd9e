"""The single worker: claim a job, run the engine in a thread, report progress, deliver, record.

One coroutine serves every platform (the design: one GPU worker). The event loop stays responsive
because the engine runs in a thread; the worker only wakes every few seconds to heartbeat its
lease, store progress, edit the status message and check for /cancel.

Delivery is recorded in the same queue step that marks the job done (``queue.complete``): a crash
before that step re-delivers once on restart (the result is kept), after it never.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from interpolation import api as engine
from interpolation.errors import CancelledError, EngineError, WeightsError
from interpolation.models import FrameInterpolator, create_model
from interpolation.options import Limits, Options, Progress, Result
from storage import Claim, Job, JobQueue, LeaseLostError

from .commands import JobSettings
from .config import Settings
from .replies import (ChatReplier, Delivery, DeliveryError, DeliveryKind, progress_text, queued_text,
                      result_caption)

log = logging.getLogger(__name__)

#: Delivery attempts for transient platform errors, and the pause between them (seconds, doubling).
DELIVERY_ATTEMPTS = 3
DELIVERY_RETRY_PAUSE_S = 2.0
#: Status messages of this many waiting jobs are refreshed whenever the queue moves.
POSITION_UPDATES_PER_CLAIM = 10
#: Seconds after enqueue during which the adapter's own "Queued" message is awaited.
STATUS_MESSAGE_GRACE_S = 10.0
GENERIC_FAILURE = ("Sorry, something went wrong on my side while smoothing this video. "
                   "Please try again later.")
FALLBACK_MODEL = "flow"

EngineRunner = Callable[..., Result]


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


class LatestProgress:
    """Progress callback for the engine thread: keeps only the newest report (one reference swap)."""

    def __init__(self) -> None:
        self.value: Progress | None = None

    def __call__(self, progress: Progress) -> None:
        self.value = progress


def user_message(error: EngineError, input_path: Path) -> str:
    """The engine names files; in chat the stored file name means nothing, so drop that prefix."""
    text = str(error)
    prefix = f"{input_path.name}: "
    text = text.removeprefix(prefix)
    return text[:1].upper() + text[1:]


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
        self._models: dict[tuple[str, Path | None], FrameInterpolator] = {}
        #: Last status text shown per job, so unchanged text is not sent again.
        self._shown: dict[int, str] = {}
        #: Status messages sent by the worker (the job snapshots it holds predate them).
        self._status_ids: dict[int, str] = {}

    def notify(self) -> None:
        """Adapters call this after an enqueue so the worker does not wait for its next poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve jobs until ``stop`` is set. Unexpected errors are logged; the loop goes on."""
        report = await self.queue.recover(self.worker_id)
        if report.total:
            log.info("recovered jobs after restart: requeued=%s failed=%s cancelled=%s",
                     report.requeued, report.failed, report.cancelled)
        while not stop.is_set():
            try:
                await self.report_failures()
                if await self.process_next():
                    continue
            except Exception:
                log.exception("worker loop error; continuing")
            self._wakeup.clear()
            waiters = [asyncio.ensure_future(self._wakeup.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=self.idle_poll_s, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def process_next(self) -> bool:
        """Claim and finish one job; False when the queue is empty."""
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
            await self.handle(claim, replier)
        except LeaseLostError:
            log.warning("job %s: lease lost (another worker owns it now); dropping our copy", claim.job_id)
        except Exception:
            log.exception("job %s failed unexpectedly", claim.job_id)
            await self.fail_and_tell(claim, replier, GENERIC_FAILURE)
        finally:
            self._shown.pop(claim.job_id, None)
            self._status_ids.pop(claim.job_id, None)
        return True

    async def handle(self, claim: Claim, replier: ChatReplier) -> None:
        job = claim.job
        if job.has_result and Path(job.result_path).is_file():
            delivery = load_delivery(Path(job.result_path))
            if delivery is not None:
                log.info("job %s: result already made, delivering it again", job.id)
                await self.deliver(claim, replier, Path(job.result_path), delivery)
                return
        if job.input_path is None or not Path(job.input_path).is_file():
            await self.fail_and_tell(claim, replier, "The video file is gone (it was cleaned up); please send it again.")
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
        save_delivery(output, delivery)
        await self.queue.set_result(claim, output)
        await self.deliver(claim, replier, output, delivery)

    def engine_options(self, job_settings: JobSettings, kind: DeliveryKind, max_bytes: int | None) -> Options:
        """The one place where chat settings become engine options."""
        return Options(
            fps=job_settings.fps,
            loop=job_settings.loop,
            output="gif" if kind == "gif" else "mp4",
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
                fallback, _ = self.model_for(Options(model=FALLBACK_MODEL))
                return fallback, "RIFE weights missing: used optical flow"
        return self._models[key], None

    async def run_engine(self, claim: Claim, replier: ChatReplier, source: Path, output: Path,
                         options: Options) -> tuple[Result, str | None] | None:
        """Run the engine in a thread while heartbeating, storing progress and editing the status.

        Returns None when the job ended here (cancelled, failed and told, or lease lost).
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

        task = asyncio.ensure_future(asyncio.to_thread(run_in_thread))
        tick = min(self.settings.progress_edit_interval_s, self.settings.lease_seconds / 3)
        lease_lost = False
        while not task.done():
            await asyncio.wait([task], timeout=tick)
            lease = await self.queue.heartbeat(claim)
            if not lease.lease_ok:
                lease_lost = True
                stop_engine.set()
            elif lease.cancel_requested:
                stop_engine.set()
            if latest.value is not None and not stop_engine.is_set():
                await self.queue.progress(claim, latest.value.fraction)
                await self.safe_status(replier, job, progress_text(latest.value))
        try:
            return task.result()
        except CancelledError:
            if lease_lost:
                raise LeaseLostError(job.id) from None
            await self.queue.mark_cancelled(claim)
            await self.safe_status(replier, job, "Cancelled.")
            return None
        except EngineError as error:
            await self.fail_and_tell(claim, replier, user_message(error, source))
            return None

    async def deliver(self, claim: Claim, replier: ChatReplier, path: Path, delivery: Delivery) -> None:
        pause = DELIVERY_RETRY_PAUSE_S
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            try:
                reply_id = await replier.deliver(self.current(claim.job), path, delivery)
                break
            except DeliveryError as error:
                if not error.transient or attempt == DELIVERY_ATTEMPTS:
                    log.warning("job %s: delivery failed: %s", claim.job_id, error)
                    await self.fail_and_tell(claim, replier, f"I made your video but could not send it: {error}")
                    return
                await asyncio.sleep(pause)
                pause *= 2
        await self.queue.complete(claim, reply_id)
        await self.safe_status(replier, claim.job, "Done.")
        await self.queue.purge_files(claim.job_id)
        delivery_record(path).unlink(missing_ok=True)

    async def fail_and_tell(self, claim: Claim, replier: ChatReplier, text: str) -> None:
        """Record the failure first, then tell the user; ``report_failures`` retries the telling."""
        job = await self.queue.fail(claim, text)
        await self.tell_failure(replier, job)

    async def tell_failure(self, replier: ChatReplier, job: Job) -> None:
        try:
            await replier.send_error(self.current(job), job.error or GENERIC_FAILURE)
        except Exception:
            log.exception("job %s: could not send the failure message; will retry", job.id)
            return
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
            log.info("job %s: status update skipped (%s)", job.id, error)
