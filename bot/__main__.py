"""``python -m bot``: start every platform whose token is set, plus the worker, in one process.

``python -m bot --role frontend`` runs the platforms and the courier (bot/courier.py) without a
model; ``python -m bot --role worker`` runs only the worker, without any platform token (it imports
no chat library). Run any number of each against one queue (SMOOTHBOT_QUEUE_URL) and file store.

``python -m bot --console VIDEO [--fps N] [--loop] [--gif] [--model NAME]`` runs the same flow
on the terminal without any network. ``python -m bot status`` shows the queue and the workers
(bot/status.py); ``python -m bot migrate TARGET_URL`` moves the queue to another (bot/migrate.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

import storage
from storage import JobQueue

from . import logsafe, metrics, status
from .config import Settings, setting_error
from .console_adapter import caption_from, run_console
from .courier import Courier
from .platform import PlatformAdapter
from .service import ChatService
from .worker import Worker

log = logging.getLogger("bot")

NO_TOKEN_MESSAGE = (
    "No chat platform is configured: set TELEGRAM_TOKEN and/or DISCORD_TOKEN in the environment or in .env "
    "(see .env.example), or try the bot locally with: python -m bot --console VIDEO"
)
Role = Literal["all", "frontend", "worker"]
ROLES: tuple[Role, ...] = ("all", "frontend", "worker")
#: Seconds between retention sweeps of old input/result files.
HOUSEKEEPING_INTERVAL_S = 3600.0


class PlatformStartError(RuntimeError):
    """A configured chat platform could not connect (token rejected, no network)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="smoothbot chat service",
                                     epilog="python -m bot status: the queue and the workers; "
                                            "python -m bot migrate TARGET_URL: move the queue (e.g. to PostgreSQL)")
    parser.add_argument("--role", choices=ROLES, default="all",
                        help="all: everything in one process (default); frontend: the chat platforms and the "
                             "delivery of results, no model; worker: runs jobs, needs no platform token")
    parser.add_argument("--console", type=Path, metavar="VIDEO", help="run one video through the chat flow locally")
    parser.add_argument("--fps", type=float, help="(console) target frame rate")
    parser.add_argument("--loop", action="store_true", help="(console) seamless loop")
    parser.add_argument("--gif", action="store_true", help="(console) reply with a GIF")
    parser.add_argument("--model", help="(console) rife, flow, blend or dain")
    parser.add_argument("--out-dir", type=Path, default=Path("out"), help="(console) where replies are written")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def open_queue(settings: Settings, files: storage.FileStore | None = None) -> storage.OpeningQueue:
    """The queue at SMOOTHBOT_QUEUE_URL (SQLite in the data directory by default, or PostgreSQL);
    with ``files``, job files are keys in that store and retention deletes through it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return storage.open_queue(settings.queue_location, lease_seconds=settings.lease_seconds,
                              max_attempts=settings.max_attempts, max_queued_per_user=settings.max_queued_per_user,
                              files=files)


def open_files(settings: Settings) -> storage.FileStore:
    """The file store at SMOOTHBOT_FILES_URL (the data directory by default, or an S3 bucket)."""
    return storage.open_files(settings.files_location, endpoint_url=settings.s3_endpoint_url)


def configured_adapters(settings: Settings, service: ChatService) -> list[PlatformAdapter]:
    adapters: list[PlatformAdapter] = []
    if settings.telegram_token is not None:
        from .telegram_failover import telegram_adapter

        adapters.append(telegram_adapter(settings, service))  # polling, polling with standbys, or webhook
    if settings.discord_token is not None:
        from .discord_adapter import DiscordAdapter

        adapters.append(DiscordAdapter(settings, service))
    return adapters


async def housekeeping(queue: JobQueue, settings: Settings, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            removed = await queue.cleanup(timedelta(hours=settings.retention_hours))
            if removed:
                log.info("retention: removed files of %d old jobs", removed)
        except Exception:
            log.exception("retention sweep failed; will retry")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), HOUSEKEEPING_INTERVAL_S)


async def serve(settings: Settings, stop: asyncio.Event | None = None, role: Role = "all") -> int:
    """Run ``role`` until ``stop`` is set (or SIGINT/SIGTERM): the configured platforms with the courier
    (``frontend``), the worker (``worker``), or both in this one event loop (``all``)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    files = open_files(settings)
    async with contextlib.AsyncExitStack() as resources:
        resources.push_async_callback(files.close)
        queue = await resources.enter_async_context(open_queue(settings, files))
        observer = await resources.enter_async_context(metrics.serving(settings, queue))
        return await serve_roles(settings, queue, files, observer, stop, role)


async def serve_roles(settings: Settings, queue: JobQueue, files: storage.FileStore, observer: metrics.JobObserver,
                      stop: asyncio.Event, role: Role) -> int:
    """The processes' loops of ``role`` on an open queue and file store."""
    worker = (Worker(queue, settings, files=files, woken_by_queue=role == "worker")
              if role in ("all", "worker") else None)
    if worker is not None:
        worker.metrics = observer
    if role == "worker":
        log.info("worker %s started (no chat platform in this process)", worker.worker_id)
        await worker.run(stop)
        return 0
    courier = Courier(queue, {}, settings, files=files)
    courier.metrics = observer
    service = ChatService(queue, settings, on_enqueued=worker.notify if worker is not None else None,
                          files=files)
    adapters = configured_adapters(settings, service)
    started: list[PlatformAdapter] = []
    try:
        for adapter in adapters:
            try:
                await adapter.start()
            except Exception as error:
                raise PlatformStartError(f"{adapter.platform} did not start: {error}") from error
            started.append(adapter)
            courier.repliers[adapter.platform] = adapter
            log.info("%s adapter started", adapter.platform)
        watch = asyncio.create_task(first_lost(started, stop))
        try:
            await asyncio.gather(run_loops(worker, courier, stop), housekeeping(queue, settings, stop))
        finally:
            watch.cancel()
            (lost,) = await asyncio.gather(watch, return_exceptions=True)
    finally:
        for adapter in reversed(started):
            await adapter.stop()
    return 1 if isinstance(lost, str) else 0


async def run_loops(worker: Worker | None, courier: Courier, stop: asyncio.Event) -> None:
    """The courier, and the worker when this process has one: the courier stops after the worker, so
    a job the worker hands back at shutdown is still shown as paused."""
    if worker is None:
        await courier.run(stop)
        return
    worker_done = asyncio.Event()

    async def work() -> None:
        try:
            await worker.run(stop)
        finally:
            worker_done.set()

    await asyncio.gather(work(), courier.run(worker_done))


async def first_lost(adapters: list[PlatformAdapter], stop: asyncio.Event) -> str | None:
    """Waits until a platform's connection ends for good; then logs it and sets ``stop``, so the
    process exits non-zero and its supervisor restarts it (no platform goes silently deaf)."""
    watchers = {asyncio.ensure_future(adapter.wait_lost()): adapter for adapter in adapters}
    if not watchers:
        return None
    try:
        done, _ = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for watcher in watchers:
            watcher.cancel()
    platform = watchers[done.pop()].platform
    log.error("%s connection lost for good: stopping with exit code 1 so that the supervisor restarts the bot",
              platform)
    stop.set()
    return platform


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["status"]:
        return status.main(argv[1:])
    if argv[:1] == ["migrate"]:
        from . import migrate

        return migrate.main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: {setting_error(error)}", file=sys.stderr)
        return 2
    redactor = logsafe.install(
        token.get_secret_value() for token in (settings.telegram_token, settings.discord_token) if token)
    if args.console is not None:
        if not args.verbose:
            logging.getLogger().setLevel(logging.WARNING)
        caption = caption_from(args.fps, args.loop, args.gif, args.model)
        return asyncio.run(run_console(settings, args.console, caption, args.out_dir))
    if args.role != "worker" and settings.telegram_token is None and settings.discord_token is None:
        print(f"error: {NO_TOKEN_MESSAGE}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(settings, role=args.role))
    except (PlatformStartError, metrics.MetricsPortError) as error:
        print(f"error: {redactor.redact(str(error))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
