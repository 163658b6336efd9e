"""The worker and the courier with the real queue, the real engine (blend model) and a recording chat platform."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from pathlib import Path

import pytest

from bot.config import Settings
from bot.console_adapter import ConsoleReplier, run_console
from bot.replies import Delivery
from bot.service import Accepted, ChatService
from bot.worker import GENERIC_FAILURE
from interpolation.api import run as run_engine
from storage import JobState, SqliteJobQueue
from tests.bot.pipeline import Pipeline
from tests.media import make_testsrc, read_video, video_rate


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class RecordingReplier(ConsoleReplier):
    """The console replier, with a transcript kept in memory."""

    def __init__(self, out_dir: Path) -> None:
        super().__init__(out_dir, io.StringIO())

    @property
    def transcript(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", default_model="blend", progress_edit_interval_s=0.05,
                    lease_seconds=30)


async def enqueue_file(queue, settings, path: Path, message_id: int, caption: str = "", user: str = "u1") -> int:
    service = ChatService(queue, settings)

    async def copy(target: Path) -> None:
        target.write_bytes(path.read_bytes())

    accepted = await service.accept_video(platform="console", chat_id="c", user_id=user, message_id=message_id,
                                          caption=caption, file_size=path.stat().st_size, download_limit=None,
                                          upload_limit=None, suffix=path.suffix, download=copy)
    assert isinstance(accepted, Accepted), accepted
    await service.set_status_message(accepted.job_id, f"status-{message_id}")  # as an adapter does
    return accepted.job_id


async def test_console_transcript_and_result(tmp_path, settings):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=1, audio=True)
    out = io.StringIO()
    code = await run_console(settings, clip, "/fps 50 /loop", tmp_path / "out", stream=out)
    transcript = out.getvalue()
    assert code == 0, transcript
    lines = transcript.splitlines()
    assert lines[:2] == ["you: [video: clip.mp4] /fps 50 /loop", "bot: Queued — position 1"]
    # The courier shows the progress it finds when it looks (how many edits, and at which percent,
    # depends on how fast the worker is); then the result with its caption, then "Done."
    progress = lines[2:-3]
    assert all(re.fullmatch(r"bot: Smoothing… \d+%( \(ETA \d+:\d\d\))?", line) for line in progress), transcript
    assert re.fullmatch(r"bot: \[video: .*job-1-smooth\.mp4\]", lines[-3]), transcript
    assert lines[-2:] == ["     25 → 50 fps, loop, 1.0 s, blend", "bot: Done."], transcript
    result = tmp_path / "out" / "job-1-smooth.mp4"
    times, _ = read_video(result)
    assert len(times) == 50 and video_rate(result) == 50
    inbox = settings.data_dir / "inbox"
    assert not any(inbox.iterdir())  # input purged after delivery


async def test_bad_file_is_answered_and_the_worker_goes_on(tmp_path, settings):
    broken = tmp_path / "broken.mp4"
    broken.write_text("definitely not a video")
    good = make_testsrc(tmp_path / "good.mp4", seconds=0.4)
    replier = RecordingReplier(tmp_path / "out")
    async with SqliteJobQueue.open(settings.database) as queue:
        bad_id = await enqueue_file(queue, settings, broken, 1)
        good_id = await enqueue_file(queue, settings, good, 2)
        worker = Pipeline(queue, replier, settings)
        assert await worker.process_next() and await worker.process_next()
        assert (await queue.get(bad_id)).state == JobState.FAILED
        assert (await queue.get(good_id)).state == JobState.DONE
    assert "⚠ Not a video file that can be read" in replier.transcript
    assert "Traceback" not in replier.transcript and len(replier.delivered) == 1


async def test_unexpected_engine_crash_gets_an_apology_and_the_worker_survives(tmp_path, settings, caplog):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    replier = RecordingReplier(tmp_path / "out")

    def exploding_engine(*args, **kwargs):
        raise RuntimeError("a bug in /srv/smoothbot/interpolation/api.py")

    async with SqliteJobQueue.open(settings.database) as queue:
        first = await enqueue_file(queue, settings, clip, 1)
        second = await enqueue_file(queue, settings, clip, 2)
        worker = Pipeline(queue, replier, settings, engine_runner=exploding_engine)
        await worker.process_next()
        worker.engine_runner = run_engine
        await worker.process_next()
        assert (await queue.get(first)).error == GENERIC_FAILURE
        assert (await queue.get(second)).state == JobState.DONE
    assert GENERIC_FAILURE in replier.transcript
    assert "a bug" not in replier.transcript and "/srv" not in replier.transcript
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]  # the details are in the log
    assert f"job {first}" in record.getMessage()
    assert record.exc_info is not None or "RuntimeError" in (record.exc_text or "")  # (the secrets filter: text)


async def test_crash_after_the_result_was_made_redelivers_exactly_once(tmp_path, settings):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    clock = Clock()
    replier = RecordingReplier(tmp_path / "out")

    class CrashOnDelivery(RecordingReplier):
        async def deliver(self, job, path: Path, delivery: Delivery) -> str:
            raise KeyboardInterrupt  # the process dies between "result ready" and "reply sent"

    async with SqliteJobQueue.open(settings.database, clock=clock, lease_seconds=30) as queue:
        job_id = await enqueue_file(queue, settings, clip, 1)
        crashing = Pipeline(queue, CrashOnDelivery(tmp_path / "never"), settings, worker_id="w1")
        with pytest.raises(KeyboardInterrupt):
            await crashing.process_next()
        assert (await queue.get(job_id)).result_path is not None

        def engine_must_not_run(*args, **kwargs):
            raise AssertionError("the result exists; the engine must not run again")

        clock.now += 31  # the dead worker's lease expires
        restarted = Pipeline(queue, replier, settings, worker_id="w2", engine_runner=engine_must_not_run)
        assert await restarted.process_next()
        assert not await restarted.process_next()  # and never again
        job = await queue.get(job_id)
        assert job.state == JobState.DONE and job.delivered
    assert len(replier.delivered) == 1
    times, _ = read_video(replier.delivered[0])
    assert len(times) == 20


async def test_cancel_stops_a_running_job_between_frames(tmp_path, settings):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=2)
    replier = RecordingReplier(tmp_path / "out")
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_engine(*args, progress=None, cancelled=None, **kwargs):
        def slow_progress(report):
            loop.call_soon_threadsafe(started.set)
            time.sleep(0.01)
            progress(report)
        return run_engine(*args, progress=slow_progress, cancelled=cancelled, **kwargs)

    async with SqliteJobQueue.open(settings.database) as queue:
        job_id = await enqueue_file(queue, settings, clip, 1)
        worker = Pipeline(queue, replier, settings, engine_runner=slow_engine)
        task = asyncio.create_task(worker.process_next())
        await started.wait()
        outcome = await ChatService(queue, settings).cancel("console", "c", "u1")
        assert "Stopping" in outcome
        await task
        assert (await queue.get(job_id)).state == JobState.CANCELLED
    assert "Cancelled." in replier.transcript and not replier.delivered
