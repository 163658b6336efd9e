"""Prometheus metrics: the real HTTP server on a free port, real jobs through the real queue and
engine (blend model), scraped over HTTP and parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

import bot.courier
from bot import metrics
from bot.config import Settings
from bot.platform import TransientError
from storage import JobState, SqliteJobQueue, WorkerStatus
from tests.bot.test_telegram import JOB_TIMEOUT, add_clip, bot_settings, running_bot, tg  # noqa: F401 (fixture)
from tests.bot.pipeline import Pipeline
from tests.bot.test_worker import RecordingReplier, enqueue_file
from tests.media import make_testsrc, read_video

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def scrape(port: int) -> Samples:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{port}/metrics")
    answer.raise_for_status()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


async def scrape_until(port: int, ready, timeout_s: float = 10.0) -> Samples:
    """Scrape until ``ready(samples)``: the queue figures are read every metrics_interval_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = await scrape(port)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.05)


class FlakyReplier(RecordingReplier):
    """The first send fails as a platform timeout would; the worker retries."""

    def __init__(self, out_dir: Path) -> None:
        super().__init__(out_dir)
        self.failures_left = 1

    async def deliver(self, job, path, delivery):
        if self.failures_left:
            self.failures_left -= 1
            raise TransientError("timed out")
        return await super().deliver(job, path, delivery)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", default_model="blend", progress_edit_interval_s=0.05,
                    lease_seconds=30, metrics_port=free_port(), metrics_interval_s=0.05)


async def test_real_jobs_show_in_the_scraped_metrics(tmp_path, settings, monkeypatch):
    monkeypatch.setattr(bot.courier, "DELIVERY_RETRY_PAUSE_S", 0.01)
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=1)
    replier = FlakyReplier(tmp_path / "out")
    async with SqliteJobQueue.open(settings.database, lease_seconds=30) as queue, \
            metrics.serving(settings, queue) as observer:
        worker = Pipeline(queue, replier, settings)
        worker.metrics = observer
        started = time.time()
        first = await enqueue_file(queue, settings, clip, 1, "/fps 50", user="u1")
        second = await enqueue_file(queue, settings, clip, 2, "/fps 50", user="u2")
        assert await worker.process_next() and await worker.process_next()
        assert {(await queue.get(job)).state for job in (first, second)} == {JobState.DONE}
        waiting = await enqueue_file(queue, settings, clip, 3, user="u3")  # stays queued
        await enqueue_file(queue, settings, clip, 4, user="u4")
        claimed_at = time.time()
        claim = await queue.claim("gpu-7")  # runs on another (pretend) machine: u3's job
        assert claim.job_id == waiting
        await asyncio.sleep(0.3)  # the oldest waiting job (u4's) ages
        mark = time.time()

        samples = await scrape_until(  # a read of the queue made after this point
            settings.metrics_port, lambda s: s.get(("smoothbot_queue_last_read_timestamp_seconds", ()), 0) >= mark)
        elapsed = time.time() - started

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert {state: value("smoothbot_jobs", state=state) for state in JobState} == {
        "queued": 1, "running": 1, "done": 2, "failed": 0, "cancelled": 0}
    assert value("smoothbot_queue_depth") == 1
    assert 0.3 <= value("smoothbot_oldest_waiting_job_age_seconds") <= elapsed
    # The worker's last heartbeat is its claim (the lease's end less lease_seconds).
    assert value("smoothbot_worker_last_heartbeat_timestamp_seconds", worker="gpu-7") == pytest.approx(claimed_at, abs=1)
    assert value("smoothbot_worker_running_jobs", worker="gpu-7") == 1
    assert value("smoothbot_queue_read_errors_total") == 0

    frames = sum(len(read_video(path)[0]) for path in replier.delivered)
    assert frames == 100  # two 1 s clips at 50 fps
    assert value("smoothbot_output_frames_total", model="blend") == frames
    assert value("smoothbot_job_duration_seconds_count", model="blend") == 2
    assert 0 < value("smoothbot_job_duration_seconds_sum", model="blend") < elapsed
    assert value("smoothbot_job_duration_seconds_bucket", model="blend", le="+Inf") == 2
    assert value("smoothbot_model_seconds_per_frame_count", model="blend") == 2
    assert 0 < value("smoothbot_model_seconds_per_frame_sum", model="blend") < elapsed / 50
    assert value("smoothbot_delivery_failures_total", platform="console", kind="transient") == 1
    assert len(replier.delivered) == 2  # the failed send was retried


async def test_python_m_bot_serves_metrics_of_a_telegram_job(tg, tmp_path):
    """The wiring in serve(): the port setting starts the server and the worker reports into it."""
    settings = bot_settings(tg, tmp_path, metrics_port=free_port(), metrics_interval_s=0.05)
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=1)
    async with running_bot(tg, settings):
        tg.send_user_message(42, 42, video=add_clip(tg, clip), caption="/fps 50")
        await tg.wait_for("sendVideo", lambda call: call.ok, timeout=JOB_TIMEOUT)
        samples = await scrape_until(settings.metrics_port,
                                     lambda s: s.get(("smoothbot_jobs", (("state", "done"),))) == 1)
    assert samples[("smoothbot_jobs", (("state", "done"),))] == 1
    assert samples[("smoothbot_queue_depth", ())] == 0
    assert samples[("smoothbot_job_duration_seconds_count", (("model", "blend"),))] == 1
    assert samples[("smoothbot_output_frames_total", (("model", "blend"),))] == 50
    with pytest.raises(httpx.ConnectError):  # stopped with the service
        await scrape(settings.metrics_port)


async def test_the_server_stops_with_the_service(settings, tmp_path):
    async with SqliteJobQueue.open(settings.database) as queue:
        async with metrics.serving(settings, queue):
            assert await scrape(settings.metrics_port)
        with pytest.raises(httpx.ConnectError):
            await scrape(settings.metrics_port)


async def test_without_a_port_nothing_is_served(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    assert settings.metrics_port is None
    async with SqliteJobQueue.open(settings.database) as queue:
        async with metrics.serving(settings, queue) as observer:
            assert observer is metrics.NO_METRICS


async def test_a_taken_port_is_a_readable_error(settings, tmp_path):
    with socket.socket() as taken:
        taken.bind((settings.metrics_address, settings.metrics_port))
        taken.listen()
        async with SqliteJobQueue.open(settings.database) as queue:
            with pytest.raises(metrics.MetricsPortError, match=f"cannot serve metrics on 127.0.0.1:{settings.metrics_port}"):
                async with metrics.serving(settings, queue):
                    pass


async def test_an_unreadable_queue_is_counted_and_the_watch_goes_on(tmp_path):
    queue = await SqliteJobQueue.open(tmp_path / "q.sqlite3")
    await queue.close()  # every read now fails
    recorded = metrics.BotMetrics()
    stop = asyncio.Event()
    watch = asyncio.create_task(metrics.watch_queue(queue, recorded, 0.01, stop))
    await asyncio.sleep(0.2)
    assert not watch.done()
    stop.set()
    await watch
    assert recorded.registry.get_sample_value("smoothbot_queue_read_errors_total") >= 2


async def test_a_worker_leaves_the_per_worker_series_when_its_job_ends(tmp_path):
    recorded = metrics.BotMetrics()
    heartbeat = "smoothbot_worker_last_heartbeat_timestamp_seconds"
    assert recorded.registry.get_sample_value("smoothbot_queue_depth") is None  # nothing before the first read
    async with SqliteJobQueue.open(tmp_path / "q.sqlite3") as queue:
        await queue.enqueue("telegram", 1, 1, 1, tmp_path / "in.mp4", {})
        claim = await queue.claim("gpu-a")
        recorded.record_stats(await queue.stats())
        assert recorded.registry.get_sample_value(heartbeat, {"worker": "gpu-a"}) == pytest.approx(time.time(), abs=5)
        await queue.set_result(claim, tmp_path / "out.mp4")
        await queue.complete(claim, 2)
        recorded.record_stats(await queue.stats())
    assert recorded.registry.get_sample_value(heartbeat, {"worker": "gpu-a"}) is None
    assert recorded.registry.get_sample_value("smoothbot_worker_running_jobs", {"worker": "gpu-a"}) is None
    assert recorded.registry.get_sample_value("smoothbot_jobs", {"state": "done"}) == 1


def test_each_metrics_object_has_its_own_registry():
    one, other = metrics.BotMetrics(), metrics.BotMetrics()
    one.delivery_failed("telegram", "refused")
    assert one.registry.get_sample_value("smoothbot_delivery_failures_total",
                                         {"platform": "telegram", "kind": "refused"}) == 1
    assert other.registry.get_sample_value("smoothbot_delivery_failures_total",
                                           {"platform": "telegram", "kind": "refused"}) is None


@pytest.mark.parametrize("text", ["0", "70000", "port"])
def test_a_bad_port_setting_is_refused(text, monkeypatch):
    monkeypatch.setenv("SMOOTHBOT_METRICS_PORT", text)
    with pytest.raises(ValidationError, match="metrics_port"):
        Settings(_env_file=None)


def test_a_blank_port_setting_means_off(monkeypatch):
    monkeypatch.setenv("SMOOTHBOT_METRICS_PORT", " ")
    assert Settings(_env_file=None).metrics_port is None


async def test_registered_workers_show_by_status_with_their_heartbeats(tmp_path):
    """Idle workers are visible too (the workers table); a silent one counts as gone, a stopped one
    drops out of the heartbeat series."""
    recorded = metrics.BotMetrics()
    heartbeat = "smoothbot_worker_last_heartbeat_timestamp_seconds"
    now = [1_000_000.0]
    async with SqliteJobQueue.open(tmp_path / "q.sqlite3", lease_seconds=30, clock=lambda: now[0]) as queue:
        for worker in ("gpu-busy", "gpu-idle", "gpu-silent", "gpu-stopped"):
            await queue.register_worker(worker, host="box", pid=1)
        await queue.enqueue("telegram", 1, 1, 1, tmp_path / "in.mp4", {})
        await queue.claim("gpu-busy")
        await queue.unregister_worker("gpu-stopped")
        now[0] += 31
        await queue.worker_heartbeat("gpu-busy")
        await queue.worker_heartbeat("gpu-idle")
        recorded.record_stats(await queue.stats())
    assert {status.value: recorded.registry.get_sample_value("smoothbot_workers", {"status": status.value})
            for status in WorkerStatus} == {"busy": 1, "idle": 1, "gone": 1, "stopped": 1}
    assert recorded.registry.get_sample_value(heartbeat, {"worker": "gpu-idle"}) == now[0]
    assert recorded.registry.get_sample_value(heartbeat, {"worker": "gpu-busy"}) == now[0]
    assert recorded.registry.get_sample_value(heartbeat, {"worker": "gpu-silent"}) == now[0] - 31
    assert recorded.registry.get_sample_value(heartbeat, {"worker": "gpu-stopped"}) is None
    assert recorded.registry.get_sample_value("smoothbot_worker_running_jobs", {"worker": "gpu-busy"}) == 1
