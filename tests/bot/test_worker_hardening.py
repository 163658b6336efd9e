"""The hard cases of the worker and the courier, with the real queue and the real engine (blend model): a
late /cancel, the job time limit, errors that must not reach the chat, a full disk, and failed deliveries."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from pathlib import Path

import pytest

from bot import courier as courier_module
from bot import worker as worker_module
from bot.config import Settings
from bot.console_adapter import ConsoleReplier
from bot.platform import RecipientGoneError, RetryAfterError, TooLargeError, TransientError
from bot.replies import OUT_OF_SPACE_TEXT, Delivery
from bot.service import ChatService
from bot.courier import GONE_TEXT, SEND_FAILED_TEXT, TOO_LARGE_TEXT
from bot.worker import time_limit_text
from interpolation.api import run as run_engine
from storage import JobState, SqliteJobQueue
from tests.bot.pipeline import Pipeline
from tests.bot.test_worker import enqueue_file
from tests.media import make_testsrc, read_video


class RecordingReplier(ConsoleReplier):
    """The console replier with its transcript in memory and every delivery attempt recorded."""

    def __init__(self, out_dir: Path, upload_limit: int | None = None) -> None:
        super().__init__(out_dir, io.StringIO())
        self.limit = upload_limit
        self.errors: list[str] = []
        self.attempts: list[tuple[float, int]] = []  # (monotonic time, file size) of each deliver call

    @property
    def transcript(self) -> str:
        return self.stream.getvalue()

    def upload_limit(self, job) -> int | None:
        return self.limit

    async def deliver(self, job, path: Path, delivery: Delivery) -> str:
        self.attempts.append((time.monotonic(), path.stat().st_size))
        return await super().deliver(job, path, delivery)

    async def send_error(self, job, text: str) -> None:
        self.errors.append(text)
        await super().send_error(job, text)


@pytest.fixture
def settings(tmp_path) -> Settings:
    # Status edits (and so the worker's looks at the queue) far apart: a cancel is noticed only by the
    # checks after the engine returns and before each send, which are what these tests are about.
    return Settings(_env_file=None, data_dir=tmp_path / "data", default_model="blend", progress_edit_interval_s=5,
                    lease_seconds=30)


def files_under(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file()) if directory.exists() else []


def cancel_from_engine_thread(loop: asyncio.AbstractEventLoop, queue, settings) -> None:
    """The user's /cancel, sent while the engine thread is somewhere specific; returns once stored."""
    outcome = asyncio.run_coroutine_threadsafe(ChatService(queue, settings).cancel("console", "c", "u1"), loop)
    assert "Stopping" in outcome.result(timeout=10)


# --- defect 1: a cancelled job is never delivered ----------------------------------------------------

async def test_a_cancel_during_the_size_fit_is_never_delivered(tmp_path, settings):
    """/cancel arrives after the last frame, while the encoder drains and the size fit re-encodes."""
    clip = make_testsrc(tmp_path / "clip.mp4", size="320x240", seconds=1,
                        codec_args=("-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"))
    replier = RecordingReplier(tmp_path / "out", upload_limit=20_000)  # forces the fit phase
    loop = asyncio.get_running_loop()
    phases: list[str] = []

    def engine_cancelled_in_finish(*args, progress=None, cancelled=None, **kwargs):
        last_frame = []

        def watch_progress(report):
            if report.frames_done == report.frames_total:
                last_frame.append(True)
            progress(report)

        def cancel_check() -> bool:
            if last_frame and not phases:  # first look after the last frame: the finish phase
                phases.append("cancel sent during finish")
                cancel_from_engine_thread(loop, queue, settings)
            return cancelled()

        return run_engine(*args, progress=watch_progress, cancelled=cancel_check, **kwargs)

    async with SqliteJobQueue.open(settings.database) as queue:
        job_id = await enqueue_file(queue, settings, clip, 1)
        worker = Pipeline(queue, replier, settings, engine_runner=engine_cancelled_in_finish)
        assert await worker.process_next()
        job = await queue.get(job_id)
    assert phases == ["cancel sent during finish"]
    # Its outcome (the cancellation) was shown: delivered, with no reply message carrying a result.
    assert job.state == JobState.CANCELLED and job.delivered and job.reply_message_id is None
    assert replier.attempts == [] and replier.delivered == []
    assert "Cancelled." in replier.transcript
    assert files_under(settings.data_dir / "results") == [] and files_under(settings.data_dir / "inbox") == []


async def test_a_cancel_between_engine_return_and_delivery_is_never_delivered(tmp_path, settings):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    replier = RecordingReplier(tmp_path / "out")
    loop = asyncio.get_running_loop()

    def engine_then_cancel(*args, **kwargs):
        result = run_engine(*args, **kwargs)
        cancel_from_engine_thread(loop, queue, settings)  # lands after the engine's last look
        return result

    async with SqliteJobQueue.open(settings.database) as queue:
        job_id = await enqueue_file(queue, settings, clip, 1)
        worker = Pipeline(queue, replier, settings, engine_runner=engine_then_cancel)
        assert await worker.process_next()
        job = await queue.get(job_id)
    assert job.state == JobState.CANCELLED and not replier.delivered
    assert "Cancelled." in replier.transcript
    assert files_under(settings.data_dir / "results") == [] and files_under(settings.data_dir / "inbox") == []


async def test_a_cancel_between_refit_retries_stops_the_next_send(tmp_path, settings):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)

    class TooLargeThenCancelled(RecordingReplier):
        async def deliver(self, job, path, delivery):
            self.attempts.append((time.monotonic(), path.stat().st_size))
            await ChatService(queue, settings).cancel("console", "c", "u1")
            raise TooLargeError("413 Payload Too Large")

    replier = TooLargeThenCancelled(tmp_path / "out")
    async with SqliteJobQueue.open(settings.database) as queue:
        job_id = await enqueue_file(queue, settings, clip, 1)
        assert await Pipeline(queue, replier, settings).process_next()
        job = await queue.get(job_id)
    assert job.state == JobState.CANCELLED
    assert len(replier.attempts) == 1  # the re-fitted copy was not sent
    assert files_under(settings.data_dir / "results") == []


# --- defect 2: the job time limit ------------------------------------------------------------------

async def test_a_job_past_the_time_limit_is_stopped_and_the_worker_goes_on(tmp_path, settings):
    slow_clip = make_testsrc(tmp_path / "slow.mp4", seconds=2)
    quick_clip = make_testsrc(tmp_path / "quick.mp4", seconds=0.4)
    settings = settings.model_copy(update={"max_job_seconds": 1.0, "progress_edit_interval_s": 0.05})
    replier = RecordingReplier(tmp_path / "out")
    frames_seen: list[int] = []

    def slow_engine(*args, progress=None, **kwargs):
        def slow_progress(report):
            frames_seen.append(report.frames_done)
            time.sleep(0.1)  # 50 frames: 5 s, far past the 1 s limit
            progress(report)
        return run_engine(*args, progress=slow_progress, **kwargs)

    async with SqliteJobQueue.open(settings.database) as queue:
        slow = await enqueue_file(queue, settings, slow_clip, 1)
        quick = await enqueue_file(queue, settings, quick_clip, 2)
        worker = Pipeline(queue, replier, settings, engine_runner=slow_engine)
        assert await worker.process_next()
        stopped = await queue.get(slow)
        worker.engine_runner = run_engine
        assert await worker.process_next()
        assert (await queue.get(quick)).state == JobState.DONE
    assert stopped.state == JobState.FAILED and stopped.error == time_limit_text(1.0)
    assert "took longer than the 1-second limit" in replier.errors[0]
    assert len(frames_seen) < 50  # stopped before the end (the scan before the first frame may take the second)
    assert len(replier.delivered) == 1


async def test_an_engine_that_ignores_the_stop_is_left_behind_and_the_worker_goes_on(tmp_path, settings, caplog,
                                                                                     monkeypatch):
    """A step that cannot be interrupted (here: the stop request never reaches the engine) must not
    hold the one worker: past the limit and a short grace, the job fails and the next one runs."""
    monkeypatch.setattr(worker_module, "STOP_GRACE_S", 0.5)
    stuck_clip = make_testsrc(tmp_path / "stuck.mp4", seconds=2)
    quick_clip = make_testsrc(tmp_path / "quick.mp4", seconds=0.4)
    settings = settings.model_copy(update={"max_job_seconds": 1.0, "progress_edit_interval_s": 0.05})
    replier = RecordingReplier(tmp_path / "out")

    def deaf_engine(*args, progress=None, cancelled=None, **kwargs):
        def slow_progress(report):
            time.sleep(0.06)  # 50 frames: 3 s
            progress(report)
        return run_engine(*args, progress=slow_progress, cancelled=None, **kwargs)

    async with SqliteJobQueue.open(settings.database) as queue:
        stuck = await enqueue_file(queue, settings, stuck_clip, 1)
        quick = await enqueue_file(queue, settings, quick_clip, 2)
        worker = Pipeline(queue, replier, settings, engine_runner=deaf_engine)
        assert await worker.process_next()
        abandoned = [t for t in threading.enumerate() if t.name == f"engine-job-{stuck}"]
        assert abandoned and abandoned[0].is_alive()  # still running, and the worker is free
        worker.engine_runner = run_engine
        assert await worker.process_next()
        assert (await queue.get(stuck)).error == time_limit_text(1.0)
        assert (await queue.get(quick)).state == JobState.DONE
        await asyncio.to_thread(abandoned[0].join, 30)
        late = settings.data_dir / "results" / f"job-{stuck}.mp4"
        deadline = time.monotonic() + 5
        while late.exists():  # its late result is removed as soon as the loop hears the thread ended
            assert time.monotonic() < deadline, "the abandoned engine's result was left behind"
            await asyncio.sleep(0.02)
    assert len(replier.delivered) == 1
    assert any(r.levelno == logging.ERROR and "did not stop" in r.getMessage() for r in caplog.records)


def test_the_time_limit_reads_in_minutes():
    assert "the 30-minute limit" in time_limit_text(1800)
    assert "the 90-second limit" in time_limit_text(90)


# --- defect 5: the user gets a sentence; the log gets the detail -----------------------------------

async def test_engine_error_detail_goes_to_the_log_not_the_chat(tmp_path, settings, caplog):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    missing = tmp_path / "srv" / "weights" / "best.pth"
    settings = settings.model_copy(update={"dain_weights": missing})
    replier = RecordingReplier(tmp_path / "out")
    async with SqliteJobQueue.open(settings.database) as queue:
        job_id = await enqueue_file(queue, settings, clip, 1, caption="/model dain")
        with caplog.at_level(logging.INFO):
            assert await Pipeline(queue, replier, settings).process_next()
        job = await queue.get(job_id)
    assert job.state == JobState.FAILED
    (told,) = replier.errors
    assert "DAIN" in told and str(tmp_path) not in told and "best.pth" in told and "SMOOTHBOT" not in told
    logged = [r for r in caplog.records if r.levelno == logging.ERROR and f"job {job_id}" in r.getMessage()]
    assert logged and str(missing) in logged[0].getMessage()


def test_a_message_with_a_server_path_is_never_shown():
    from interpolation.errors import EncoderError

    shown = worker_module.user_message(EncoderError("could not write /srv/data/results/job-1.mp4"), Path("/x/in.mp4"))
    assert shown == worker_module.GENERIC_FAILURE
    assert worker_module.user_message(EncoderError("in.mp4: the video is 25/1 fps"), Path("/x/in.mp4")) == \
        "The video is 25/1 fps"
    linked = EncoderError("see https://github.com/baowenbo/DAIN for the weights")
    shown = worker_module.user_message(linked, Path("/x/in.mp4"))
    assert shown == "See https://github.com/baowenbo/DAIN for the weights"


# --- defect 8: a full disk while writing the result -------------------------------------------------

async def test_a_full_disk_while_writing_the_result_says_so_and_removes_the_partial_files(tmp_path, caplog):
    from tests.bot.test_telegram import fill, small_disk

    clip = make_testsrc(tmp_path / "clip.mp4", size="320x240", seconds=2,
                        codec_args=("-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"))
    with small_disk(tmp_path / "disk", "2m") as disk:
        settings = Settings(_env_file=None, data_dir=disk / "data", database_path=tmp_path / "db.sqlite3",
                            default_model="blend", progress_edit_interval_s=0.2, lease_seconds=30)
        replier = RecordingReplier(tmp_path / "out")
        async with SqliteJobQueue.open(settings.database) as queue:
            job_id = await enqueue_file(queue, settings, clip, 1, caption="/fps 50")
            filler = fill(disk)
            filler.write_bytes(filler.read_bytes()[:-16_384])  # room to start writing, not to finish
            with caplog.at_level(logging.INFO):
                assert await Pipeline(queue, replier, settings).process_next()
            job = await queue.get(job_id)
            left = [path for path in files_under(disk) if path != filler]
    assert job.state == JobState.FAILED and replier.errors == [OUT_OF_SPACE_TEXT]
    assert left == []  # no partial result, no temporary files, and the input is gone too
    assert any(r.levelno == logging.ERROR and f"job {job_id}" in r.getMessage() and "out of space" in r.getMessage()
               for r in caplog.records)


async def test_a_failed_status_edit_is_logged_as_a_warning(tmp_path, settings, caplog):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)

    class EditsFail(RecordingReplier):
        async def send_status(self, job, text):
            raise TransientError("editMessageText timed out")

    async with SqliteJobQueue.open(settings.database) as queue:
        job_id = await enqueue_file(queue, settings, clip, 1)
        assert await Pipeline(queue, EditsFail(tmp_path / "out"), settings).process_next()
        assert (await queue.get(job_id)).state == JobState.DONE  # a failed edit never fails the job
    warned = [r for r in caplog.records if "status update failed" in r.getMessage()]
    assert warned and all(r.levelno == logging.WARNING for r in warned)


# --- failure paths of delivery ----------------------------------------------------------------------

class ScriptedReplier(RecordingReplier):
    """Each deliver call raises the next scripted error, then the calls succeed."""

    def __init__(self, out_dir: Path, script: list[Exception], upload_limit: int | None = None) -> None:
        super().__init__(out_dir, upload_limit)
        self.script = list(script)

    async def deliver(self, job, path, delivery):
        if self.script:
            self.attempts.append((time.monotonic(), path.stat().st_size))
            raise self.script.pop(0)
        return await super().deliver(job, path, delivery)


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(courier_module, "DELIVERY_RETRY_PAUSE_S", 0.05)


class CountedFailures(list):
    """The worker's metrics hook for failed sends: (platform, kind) of each."""

    def observe_job(self, job, result, progress) -> None:
        pass

    def delivery_failed(self, platform: str, kind: str) -> None:
        self.append((platform, kind))


async def deliver_one(tmp_path, settings, replier, caption: str = "", failures: CountedFailures | None = None):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    async with SqliteJobQueue.open(settings.database) as queue:
        job_id = await enqueue_file(queue, settings, clip, 1, caption)
        worker = Pipeline(queue, replier, settings)
        if failures is not None:
            worker.metrics = failures
        assert await worker.process_next()
        return await queue.get(job_id)


async def test_a_flood_wait_is_sat_out_then_the_result_is_sent(tmp_path, settings, quick_retries):
    replier = ScriptedReplier(tmp_path / "out", [RetryAfterError("429 retry after 0.4", 0.4)])
    job = await deliver_one(tmp_path, settings, replier)
    assert job.state == JobState.DONE and job.delivered and len(replier.delivered) == 1
    (refused_at, _), (sent_at, _) = replier.attempts
    assert sent_at - refused_at >= 0.4  # waited as long as the platform asked


async def test_transient_failures_are_retried_with_a_growing_pause(tmp_path, settings, quick_retries):
    replier = ScriptedReplier(tmp_path / "out", [TransientError("timed out"), TransientError("502 Bad Gateway")])
    job = await deliver_one(tmp_path, settings, replier)
    assert job.state == JobState.DONE and len(replier.delivered) == 1
    times = [at for at, _ in replier.attempts]
    assert len(times) == 3 and times[2] - times[1] >= 2 * 0.05 and times[1] - times[0] >= 0.05


async def test_a_platform_that_keeps_failing_gets_a_clear_message(tmp_path, settings, quick_retries):
    replier = ScriptedReplier(tmp_path / "out", [TransientError("timed out")] * 10)
    job = await deliver_one(tmp_path, settings, replier)
    assert job.state == JobState.FAILED and job.error == SEND_FAILED_TEXT
    assert len(replier.attempts) == courier_module.DELIVERY_ATTEMPTS and replier.errors == [SEND_FAILED_TEXT]


async def test_a_chat_that_is_gone_is_given_up_at_once(tmp_path, settings, quick_retries):
    replier = ScriptedReplier(tmp_path / "out", [RecipientGoneError("403 Forbidden: bot was blocked by the user")])
    failures = CountedFailures()
    job = await deliver_one(tmp_path, settings, replier, failures=failures)
    assert failures == [("console", "gone")]
    assert job.state == JobState.FAILED and job.error == GONE_TEXT
    assert job.delivered  # recorded as reported: nobody is there to tell, and nothing retries it
    assert len(replier.attempts) == 1 and replier.errors == []
    assert files_under(settings.data_dir / "results") == []


async def test_too_large_after_fitting_is_refitted_smaller_and_sent(tmp_path, settings):
    class RefusesLargeFiles(RecordingReplier):
        async def deliver(self, job, path, delivery):
            size = path.stat().st_size
            if not self.attempts:
                self.first_size = size
            self.attempts.append((time.monotonic(), size))
            if size > self.first_size * 0.8:
                raise TooLargeError("413 Request Entity Too Large")
            return await ConsoleReplier.deliver(self, job, path, delivery)

    replier = RefusesLargeFiles(tmp_path / "out")
    job = await deliver_one(tmp_path, settings, replier)
    assert job.state == JobState.DONE
    sizes = [size for _, size in replier.attempts]
    assert len(sizes) == 2 and sizes[1] <= sizes[0] * courier_module.REFIT_FACTOR
    assert len(read_video(replier.delivered[0])[0]) == 20  # the whole clip, smaller
    assert "fit" in replier.transcript
    assert files_under(settings.data_dir / "results") == []


async def test_too_large_even_after_refits_gets_a_clear_message(tmp_path, settings):
    replier = ScriptedReplier(tmp_path / "out", [TooLargeError("413")] * 5)
    failures = CountedFailures()
    job = await deliver_one(tmp_path, settings, replier, caption="/gif", failures=failures)
    assert failures == [("console", "too_large")] * (1 + courier_module.MAX_REFITS)
    assert job.state == JobState.FAILED and replier.errors == [TOO_LARGE_TEXT]
    assert len(replier.attempts) == 1 + courier_module.MAX_REFITS
    sizes = [size for _, size in replier.attempts]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0]
    assert files_under(settings.data_dir / "results") == []


async def test_a_failure_message_to_a_blocked_user_is_not_retried_forever(tmp_path, settings):
    class Blocked(RecordingReplier):
        async def send_error(self, job, text):
            self.errors.append(text)
            raise RecipientGoneError("403 Forbidden: bot was blocked by the user")

    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    replier = Blocked(tmp_path / "out")
    async with SqliteJobQueue.open(settings.database) as queue:
        job_id = await enqueue_file(queue, settings, broken, 1)
        worker = Pipeline(queue, replier, settings)
        assert await worker.process_next()
        assert await worker.courier.deliver_pending() == 0
        assert await worker.courier.deliver_pending() == 0
        assert (await queue.get(job_id)).delivered
    assert len(replier.errors) == 1


async def test_a_shutdown_during_a_flood_wait_hands_the_result_back_and_a_restart_sends_it_once(tmp_path, settings):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    waiting = ScriptedReplier(tmp_path / "never", [RetryAfterError("429", 60)])
    async with SqliteJobQueue.open(settings.database) as queue:
        job_id = await enqueue_file(queue, settings, clip, 1)
        first = Pipeline(queue, waiting, settings, worker_id="w1")
        stop = asyncio.Event()
        running = asyncio.create_task(first.run(stop))
        while not waiting.attempts:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(running, 5)
        held = await queue.get(job_id)  # made and handed over; its delivery lease given back unsent
        assert held.state == JobState.DONE and not held.delivered and held.attempts == 1
        assert Path(held.result_path).is_file() and held.outcome["kind"] == "video"
        assert not waiting.delivered and [job.id for job in await queue.undelivered()] == [job_id]

        def engine_must_not_run(*args, **kwargs):
            raise AssertionError("the result exists; the engine must not run again")

        replier = RecordingReplier(tmp_path / "out")
        second = Pipeline(queue, replier, settings, worker_id="w2", engine_runner=engine_must_not_run)
        assert await second.process_next()
        assert not await second.process_next()
        done = await queue.get(job_id)
    assert done.state == JobState.DONE and done.delivered and len(replier.delivered) == 1
    assert done.attempts == 1  # the engine ran once



async def test_the_lease_stays_alive_through_a_long_flood_wait(tmp_path, settings):
    """A second front-end must not take over a result that is waiting out a flood limit."""
    settings = settings.model_copy(update={"lease_seconds": 0.6})
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    replier = ScriptedReplier(tmp_path / "out", [RetryAfterError("429", 1.5)])
    async with SqliteJobQueue.open(settings.database, lease_seconds=0.6) as queue:
        job_id = await enqueue_file(queue, settings, clip, 1)
        sending = asyncio.create_task(Pipeline(queue, replier, settings, worker_id="w1").process_next())
        while not replier.attempts:
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.0)  # past the lease, inside the wait
        assert await queue.claim_delivery(job_id, "another-front-end") is None
        await sending
        assert (await queue.get(job_id)).state == JobState.DONE
    assert len(replier.delivered) == 1


async def test_a_shutdown_during_a_refit_gives_the_delivery_back(tmp_path, settings):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    stop = asyncio.Event()

    class RefusedThenStopping(RecordingReplier):
        async def deliver(self, job, path, delivery):
            self.attempts.append((time.monotonic(), path.stat().st_size))
            stop.set()  # SIGTERM arrives as the platform refuses the file
            raise TooLargeError("413")

    replier = RefusedThenStopping(tmp_path / "out")
    async with SqliteJobQueue.open(settings.database) as queue:
        job_id = await enqueue_file(queue, settings, clip, 1)
        await asyncio.wait_for(Pipeline(queue, replier, settings).run(stop), 10)
        held = await queue.get(job_id)
        assert [job.id for job in await queue.undelivered()] == [job_id]  # due again for the next start
    assert held.state == JobState.DONE and not held.delivered and Path(held.result_path).is_file()
    assert len(replier.attempts) == 1
    assert [p.name for p in files_under(settings.data_dir / "results")] == ["job-1.mp4"]
    assert files_under(settings.data_dir / "outbox") == []  # no half-made re-fit


async def test_a_failure_nobody_could_be_told_of_is_told_once_after_a_restart(tmp_path, settings):
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")

    class PlatformDown(RecordingReplier):
        async def send_error(self, job, text):
            self.errors.append(text)
            raise TransientError("502 Bad Gateway")

    async with SqliteJobQueue.open(settings.database) as queue:
        job_id = await enqueue_file(queue, settings, broken, 1)
        down = PlatformDown(tmp_path / "out")
        first = Pipeline(queue, down, settings, worker_id="w1")
        assert await first.process_next()
        assert [job.id for job in await queue.unreported_failures()] == [job_id]  # kept for later
        assert await first.courier.deliver_pending() == 0  # its next loop: not hammered again at once
        replier = RecordingReplier(tmp_path / "out")
        restarted = Pipeline(queue, replier, settings, worker_id="w2")
        assert await restarted.courier.deliver_pending() == 1
        assert await restarted.courier.deliver_pending() == 0
        assert (await queue.get(job_id)).delivered
    assert len(down.errors) == 1 and len(replier.errors) == 1
    assert replier.errors[0].startswith("Not a video file")
