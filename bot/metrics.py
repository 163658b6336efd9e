"""Prometheus metrics of one bot process, served on ``SMOOTHBOT_METRICS_PORT`` (off by default).

Two sources feed one dedicated ``CollectorRegistry`` (never the library's global one, so two
``BotMetrics`` in one process, as in tests, do not mix):

- the queue, read every ``SMOOTHBOT_METRICS_INTERVAL_S`` by ``watch_queue`` through the read-only
  ``JobQueue.stats()``: jobs per state, queue depth, the oldest waiting job's age, the registered
  workers by status and each one's last heartbeat (bot/presence.py), idle ones included. Every process that serves metrics reports the whole queue, so
  with several processes on one PostgreSQL queue scrape one of them for these (or ``max`` them).
- the worker of this process, through ``observe_job`` (a job's result is made) and
  ``delivery_failed`` (a send to the chat failed): job duration, rendering time per output frame
  and delivery failures by platform and kind.

The worker holds ``NO_METRICS`` (does nothing) unless ``serving`` gave it a ``BotMetrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from interpolation.options import Progress, Result
from storage import Job, JobQueue, JobState, QueueStats, WorkerStatus

from .config import Settings

log = logging.getLogger(__name__)

#: Seconds from claim to result: a short clip on a GPU takes seconds, a long one on a CPU many minutes.
JOB_SECONDS_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
#: Seconds per output frame: milliseconds on a GPU, around a second for RIFE on a CPU at 1080p.
FRAME_SECONDS_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)


class JobObserver(Protocol):
    """What the worker reports to (``BotMetrics``, or ``NO_METRICS`` when metrics are off)."""

    def observe_job(self, job: Job, result: Result, progress: Progress | None) -> None: ...

    def delivery_failed(self, platform: str, kind: str) -> None: ...


class NoMetrics:
    """Metrics are off: the worker's reports go nowhere."""

    def observe_job(self, job: Job, result: Result, progress: Progress | None) -> None:
        """Nothing to record."""

    def delivery_failed(self, platform: str, kind: str) -> None:
        """Nothing to count."""


NO_METRICS = NoMetrics()


class QueueFigures(Collector):
    """The queue's figures from the latest ``stats()`` read, turned into samples at each scrape.

    One snapshot is swapped in whole, so a scrape never mixes two reads, and a worker that no
    longer runs a job disappears from the per-worker series. Nothing is reported before the first read.
    """

    def __init__(self) -> None:
        self.stats: QueueStats | None = None

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        if stats is None:
            return
        jobs = GaugeMetricFamily("smoothbot_jobs", "Jobs in the queue by state (done, failed and cancelled are "
                                 "kept for history until retention)", labels=["state"])
        for state in JobState:
            jobs.add_metric([state.value], stats.counts.get(state, 0))
        yield jobs
        yield GaugeMetricFamily("smoothbot_queue_depth", "Jobs waiting to be claimed", value=stats.depth)
        yield GaugeMetricFamily("smoothbot_oldest_waiting_job_age_seconds",
                                "How long the job waiting longest had waited at the read (0 when none waits)",
                                value=stats.oldest_queued_age_s or 0.0)
        beats: dict[str, float] = {}
        running: dict[str, int] = {}
        for job in stats.running:  # a worker that never registered (an older process) shows by its leases
            running[job.worker_id] = running.get(job.worker_id, 0) + 1
            if job.last_heartbeat_at is not None:
                beats[job.worker_id] = max(beats.get(job.worker_id, 0.0), job.last_heartbeat_at.timestamp())
        statuses = dict.fromkeys(WorkerStatus, 0)
        for worker in stats.workers:
            statuses[worker.status] += 1
            if worker.status is not WorkerStatus.STOPPED:
                beats[worker.worker_id] = max(beats.get(worker.worker_id, 0.0), worker.last_beat_at.timestamp())
        workers = GaugeMetricFamily("smoothbot_workers", "Registered worker processes by status (gone: no "
                                    "heartbeat for the lease; stopped: shut down cleanly, kept a day)",
                                    labels=["status"])
        for status, count in statuses.items():
            workers.add_metric([status.value], count)
        yield workers
        heartbeat = GaugeMetricFamily("smoothbot_worker_last_heartbeat_timestamp_seconds",
                                      "Unix time of each worker's last heartbeat (busy, idle or gone; stopped "
                                      "workers are left out)", labels=["worker"])
        for worker, beat in sorted(beats.items()):
            heartbeat.add_metric([worker], beat)
        yield heartbeat
        per_worker = GaugeMetricFamily("smoothbot_worker_running_jobs", "Jobs each worker runs now",
                                       labels=["worker"])
        for worker, count in sorted(running.items()):
            per_worker.add_metric([worker], count)
        yield per_worker
        yield GaugeMetricFamily("smoothbot_queue_last_read_timestamp_seconds",
                                "Unix time the queue figures above were read", value=stats.read_at.timestamp())


@dataclass
class BotMetrics:
    """The process's metrics in their own registry."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        registry = self.registry
        self.queue = QueueFigures()
        registry.register(self.queue)
        self.queue_read_errors = Counter("smoothbot_queue_read_errors",
                                         "Failed reads of the queue figures", registry=registry)
        self.job_seconds = Histogram("smoothbot_job_duration_seconds",
                                     "Seconds from a worker's claim of a job to its result being made",
                                     ["model"], buckets=JOB_SECONDS_BUCKETS, registry=registry)
        self.frame_seconds = Histogram("smoothbot_model_seconds_per_frame",
                                       "The engine's rendering seconds per output frame (model inference with "
                                       "that frame's decoding and encoding), one observation per job",
                                       ["model"], buckets=FRAME_SECONDS_BUCKETS, registry=registry)
        self.frames = Counter("smoothbot_output_frames", "Frames written into results", ["model"],
                              registry=registry)
        self.delivery_failures = Counter("smoothbot_delivery_failures",
                                         "Failed sends of a result to the chat, by platform and kind "
                                         "(transient, retry_after, refused, ...)", ["platform", "kind"],
                                         registry=registry)

    def record_stats(self, stats: QueueStats) -> None:
        self.queue.stats = stats

    def observe_job(self, job: Job, result: Result, progress: Progress | None) -> None:
        """A worker made ``job``'s result; ``progress`` is the engine's last report (its timing)."""
        model = result.model
        if job.started_at is not None:
            self.job_seconds.labels(model=model).observe(max(0.0, self.clock() - job.started_at.timestamp()))
        self.frames.labels(model=model).inc(result.frames_out)
        if progress is not None and progress.frames_done > 0:
            self.frame_seconds.labels(model=model).observe(progress.elapsed_s / progress.frames_done)

    def delivery_failed(self, platform: str, kind: str) -> None:
        self.delivery_failures.labels(platform=platform, kind=kind).inc()


async def watch_queue(queue: JobQueue, metrics: BotMetrics, interval_s: float, stop: asyncio.Event) -> None:
    """Read the queue's figures into ``metrics`` now and every ``interval_s`` until ``stop``."""
    while not stop.is_set():
        try:
            metrics.record_stats(await queue.stats())
        except Exception as error:  # a queue outage must not end the process; the counter shows it
            metrics.queue_read_errors.inc()
            log.warning("metrics: could not read the queue (%s: %s); will retry", type(error).__name__, error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


@dataclass
class MetricsServer:
    """``/metrics`` over HTTP for one registry, in prometheus_client's server thread."""

    server: WSGIServer
    thread: threading.Thread

    @classmethod
    def start(cls, registry: CollectorRegistry, port: int, address: str) -> MetricsServer:
        server, thread = start_http_server(port, addr=address, registry=registry)
        return cls(server, thread)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class MetricsPortError(RuntimeError):
    """The metrics port could not be opened (taken, or a bad address)."""


@contextlib.asynccontextmanager
async def serving(settings: Settings, queue: JobQueue) -> AsyncIterator[JobObserver]:
    """While inside: ``/metrics`` on ``settings.metrics_port`` and the queue read periodically.
    Yields what the worker reports to (``NO_METRICS`` when no port is set)."""
    if settings.metrics_port is None:
        yield NO_METRICS
        return
    metrics = BotMetrics()
    try:
        server = MetricsServer.start(metrics.registry, settings.metrics_port, settings.metrics_address)
    except OSError as error:
        raise MetricsPortError(f"cannot serve metrics on {settings.metrics_address}:{settings.metrics_port}: "
                               f"{error.strerror or error}") from error
    log.info("metrics on http://%s:%d/metrics", settings.metrics_address, server.port)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_queue(queue, metrics, settings.metrics_interval_s, stop))
    try:
        yield metrics
    finally:
        stop.set()
        await watcher
        server.stop()
