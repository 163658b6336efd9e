"""The scaled layout end to end, every part a real process or server on loopback: one front-end
(``python -m bot --role frontend`` against the fake Telegram Bot API), two worker processes with no
platform token (``--role worker``, the chat libraries made unimportable), PostgreSQL for the queue and
SeaweedFS for the files. Tiny clips, the blend model and a 3-second lease keep it to a minute or two.

In order, on one deployment: 3 users send 5 videos (each message gets exactly one result with the right
frames); a worker is SIGKILLed mid-job (the other finishes it after the lease); a running job is
cancelled from the chat (it stops within seconds, nothing is sent); the front-end is SIGKILLed mid-job
(after its restart the result is delivered once); PostgreSQL restarts mid-job (the service recovers and
the next video is served too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage import Job, JobState
from storage.postgres import PostgresJobQueue
from tests.bot.test_roles import WORKER_WITHOUT_CHAT_LIBRARIES, s3_environment, stop_process
from tests.bot.test_telegram import add_clip, replying_to
from tests.fakes import FakeTelegram
from tests.media import make_testsrc, read_video

#: Seconds a dead worker keeps its job (and a dead front-end its delivery).
LEASE_S = 3
#: Bound on any one wait: a job on a loaded 2-core machine, a process start, a lease.
WAIT_S = 90
#: A cancel must stop a running job within this (the worker looks every edit interval).
CANCEL_BOUND_S = 10


class Deployment:
    """The processes of one scaled deployment, started and killed by the test."""

    def __init__(self, tg: FakeTelegram, tmp_path: Path, queue_url: str, seaweed) -> None:
        self.tg = tg
        self.tmp_path = tmp_path
        self.queue_url = queue_url
        self.common = {
            "SMOOTHBOT_QUEUE_URL": queue_url, "SMOOTHBOT_DEFAULT_MODEL": "blend",
            "SMOOTHBOT_LEASE_SECONDS": str(LEASE_S), "SMOOTHBOT_PROGRESS_EDIT_INTERVAL_S": "0.3",
            "SMOOTHBOT_MAX_QUEUED_PER_USER": "5", "PYTHONPATH": str(Path.cwd()),
            **s3_environment(seaweed, f"e2e-{secrets.token_hex(4)}"),
        }
        self.frontend: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.logs: list = []

    def env(self, data_dir: str, **extra: str) -> dict[str, str]:
        base = {key: value for key, value in os.environ.items()
                if key not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "SMOOTHBOT_TELEGRAM_TOKEN", "SMOOTHBOT_DISCORD_TOKEN")}
        return base | self.common | {"SMOOTHBOT_DATA_DIR": str(self.tmp_path / data_dir)} | extra

    def start_frontend(self) -> subprocess.Popen:
        env = self.env("frontend", TELEGRAM_TOKEN=self.tg.token, SMOOTHBOT_TELEGRAM_BASE_URL=self.tg.base_url,
                       SMOOTHBOT_TELEGRAM_BASE_FILE_URL=self.tg.base_file_url,
                       SMOOTHBOT_TELEGRAM_STANDBY_RETRY_S="0.5")
        self.frontend = subprocess.Popen([sys.executable, "-m", "bot", "--role", "frontend"], cwd=self.tmp_path,
                                         env=env, stdout=subprocess.DEVNULL, stderr=self.log(f"frontend-{time.time_ns()}"))
        return self.frontend

    def start_worker(self, n: int) -> subprocess.Popen:
        worker = subprocess.Popen([sys.executable, "-c", WORKER_WITHOUT_CHAT_LIBRARIES], cwd=self.tmp_path,
                                  env=self.env(f"worker-{n}"), stdout=subprocess.DEVNULL, stderr=self.log(f"worker-{n}"))
        self.workers.append(worker)
        return worker

    def log(self, name: str):
        """A process's log file (a pipe nobody reads would fill up and stop it)."""
        (self.tmp_path / "logs").mkdir(exist_ok=True)
        handle = open(self.tmp_path / "logs" / f"{name}.log", "wb")  # noqa: SIM115 (closed by stop_all)
        self.logs.append(handle)
        return handle

    def log_tails(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted((self.tmp_path / "logs").glob("*.log")))

    def stop_all(self) -> dict[str, str]:
        """SIGTERM whatever still runs; the stderr tails of processes that failed, for the report."""
        failures = {}
        for name, process in [("frontend", self.frontend), *((f"worker {i}", w) for i, w in enumerate(self.workers))]:
            if process is None:
                continue
            if stop_process(process) not in (0, -signal.SIGKILL):
                failures[name] = f"exit {process.returncode}"
        for handle in self.logs:
            handle.close()
        return failures


@contextlib.contextmanager
def deployed(tg: FakeTelegram, tmp_path: Path, queue_url: str, seaweed) -> Iterator[Deployment]:
    deployment = Deployment(tg, tmp_path, queue_url, seaweed)
    try:
        yield deployment
    except BaseException:
        deployment.stop_all()
        print(deployment.log_tails())  # shown by pytest with the failure
        raise
    failures = deployment.stop_all()
    assert not failures, f"{failures}\n{deployment.log_tails()}"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


async def until(condition, what: str, timeout: float = WAIT_S, every: float = 0.1):
    """Poll ``condition`` (a coroutine function) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(every)


def answers(chat: int, message_id: int):
    """A sent result replying to that message (message ids are counted per chat)."""
    return lambda call: call.ok and int(call.params["chat_id"]) == chat and replying_to(message_id)(call)


def results_for(tg: FakeTelegram, chat: int, message_id: int) -> list:
    return [c for c in tg.calls_to("sendVideo") if answers(chat, message_id)(c)]


def frames_of(tg: FakeTelegram, call, tmp_path: Path) -> int:
    path = tmp_path / f"result-{secrets.token_hex(4)}.mp4"
    path.write_bytes(call.params["video"].content)
    return len(read_video(path)[0])


async def job_of(queue: PostgresJobQueue, chat: int, message_id: int) -> Job | None:
    jobs = await queue.jobs_for_user("telegram", chat, chat, include_finished=True, limit=50)
    return next((job for job in jobs if job.message_id == str(message_id)), None)


async def running_job(queue: PostgresJobQueue, chat: int, message_id: int) -> Job | None:
    job = await job_of(queue, chat, message_id)
    return job if job is not None and job.state is JobState.RUNNING and job.progress > 0 else None


@pytest.mark.slow  # about two minutes of four processes and two servers; make test and CI run it
async def test_the_scaled_layout_survives_dead_workers_front_ends_and_database_restarts(
        tg, tmp_path, postgres_url, postgres_server, seaweed):
    clips = {seconds: make_testsrc(tmp_path / f"clip-{seconds}.mp4", fps="25", seconds=seconds)
             for seconds in (0.4, 0.6, 0.8)}
    long_clip = make_testsrc(tmp_path / "long.mp4", size="640x480", fps="25", seconds=4)
    queue = await PostgresJobQueue.open(postgres_url)  # the test's own look at the queue
    try:
        with deployed(tg, tmp_path, postgres_url, seaweed) as deployment:
            deployment.start_frontend()
            first_worker, second_worker = deployment.start_worker(1), deployment.start_worker(2)
            await tg.wait_until_polling(timeout=WAIT_S)

            # --- 3 users, 5 videos: one result each, with the right frames --------------------------
            sent = {}
            for chat, seconds in [(1, 0.4), (2, 0.6), (1, 0.8), (3, 0.4), (2, 0.8)]:
                message_id = tg.send_user_message(chat, chat, video=add_clip(tg, clips[seconds]), caption="/fps 50")
                sent[chat, message_id] = round(seconds * 50)
            await tg.wait_for_all("sendVideo", len(sent), lambda c: c.ok, timeout=WAIT_S)
            for (chat, message_id), frames in sent.items():
                (result,) = results_for(tg, chat, message_id)
                assert frames_of(tg, result, tmp_path) == frames
            assert len(await queue.workers()) == 2 and first_worker.poll() is None and second_worker.poll() is None

            # --- SIGKILL the worker running a job: the other one finishes it after the lease -------------
            killed_at_message = tg.send_user_message(4, 4, video=add_clip(tg, long_clip), caption="/fps 50")
            job = await until(lambda: running_job(queue, 4, killed_at_message), "the long job to run")
            (running,) = [r for r in (await queue.stats()).running if r.job_id == job.id]
            owner = next(w for w in await queue.workers() if w.worker_id == running.worker_id)
            victim = next(w for w in deployment.workers if w.pid == owner.pid)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            await tg.wait_for("sendVideo", answers(4, killed_at_message), timeout=WAIT_S)
            (result,) = results_for(tg, 4, killed_at_message)
            assert frames_of(tg, result, tmp_path) == 200
            finished = await job_of(queue, 4, killed_at_message)
            assert finished.state is JobState.DONE and finished.delivered and finished.attempts == 2
            deployment.start_worker(3)  # two workers again

            # --- cancel a running job from the chat: it stops within seconds, nothing is sent --------------
            cancelled_message = tg.send_user_message(5, 5, video=add_clip(tg, long_clip), caption="/fps 100")
            await until(lambda: running_job(queue, 5, cancelled_message), "the job to cancel to run")
            asked = time.monotonic()
            tg.send_user_message(5, 5, text="/cancel")
            stopped = await until(lambda: _finished(queue, 5, cancelled_message), "the cancel", timeout=CANCEL_BOUND_S)
            took = time.monotonic() - asked
            assert stopped.state is JobState.CANCELLED and took < CANCEL_BOUND_S
            await until(lambda: _delivered(queue, 5, cancelled_message), "the cancellation to be shown")
            assert results_for(tg, 5, cancelled_message) == []

            # --- SIGKILL the front-end mid-job: after its restart the result is delivered once -----------
            orphan_message = tg.send_user_message(6, 6, video=add_clip(tg, long_clip), caption="/fps 50")
            await until(lambda: running_job(queue, 6, orphan_message), "the job to run")
            deployment.frontend.send_signal(signal.SIGKILL)
            deployment.frontend.wait()
            made = await until(lambda: _finished(queue, 6, orphan_message), "the worker to finish without a front-end")
            assert made.state is JobState.DONE and not made.delivered  # made, handed over, nobody to send it
            deployment.start_frontend()
            await tg.wait_for("sendVideo", answers(6, orphan_message), timeout=WAIT_S)
            await until(lambda: _delivered(queue, 6, orphan_message), "the delivery to be recorded")

            # --- restart PostgreSQL mid-job: the service recovers ---------------------------------------
            if postgres_server is not None:  # (a server named by SMOOTHBOT_TEST_POSTGRES_URL is not ours to restart)
                during = tg.send_user_message(7, 7, video=add_clip(tg, long_clip), caption="/fps 50")
                await until(lambda: running_job(queue, 7, during), "the job to run before the restart")
                await asyncio.to_thread(postgres_server.pg_ctl, "restart")
                await tg.wait_for("sendVideo", answers(7, during), timeout=WAIT_S)
                after = tg.send_user_message(8, 8, video=add_clip(tg, clips[0.4]), caption="/fps 50")
                await tg.wait_for("sendVideo", answers(8, after), timeout=WAIT_S)
                assert len(results_for(tg, 7, during)) == 1 and len(results_for(tg, 8, after)) == 1

            # Exactly one result per message that asked for one, none for the cancelled one.
            answered = [(int(c.params["chat_id"]), c.params["reply_parameters"]["message_id"])
                        for c in tg.calls_to("sendVideo") if c.ok]
            assert len(answered) == len(set(answered)) and (5, cancelled_message) not in answered
            assert deployment.frontend.poll() is None and all(
                w.poll() is None for w in deployment.workers if w is not victim)
    finally:
        await queue.close()


async def _finished(queue: PostgresJobQueue, chat: int, message_id: int) -> Job | None:
    job = await job_of(queue, chat, message_id)
    return job if job is not None and job.state.is_finished else None


async def _delivered(queue: PostgresJobQueue, chat: int, message_id: int) -> Job | None:
    job = await job_of(queue, chat, message_id)
    return job if job is not None and job.state.is_finished and job.delivered else None
