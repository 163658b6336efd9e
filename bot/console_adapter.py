"""The chat flow on a terminal: same queue, same worker and courier, no network.

``python -m bot --console VIDEO [--fps 60] [--loop] [--gif]`` prints the transcript (queued,
progress, result) and writes the reply file to ``./out/``.
"""

from __future__ import annotations

import asyncio
import getpass
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

from storage import JobState, SqliteJobQueue

from .config import Settings
from .courier import Courier
from .replies import Delivery, JobView
from .service import Accepted, ChatService
from .worker import Worker

PLATFORM = "console"
CHAT_ID = "console"
#: How long the console waits between looks at the queue while another job runs.
POLL_S = 0.2


class ConsoleReplier:
    """Prints what a chat would show; "uploads" by copying the result into ``out_dir``."""

    platform = PLATFORM
    animations_as_mp4 = False

    def __init__(self, out_dir: Path, stream: TextIO = sys.stdout) -> None:
        self.out_dir = out_dir
        self.stream = stream
        self.delivered: list[Path] = []

    def say(self, text: str) -> None:
        for number, line in enumerate(text.splitlines() or [""]):
            self.stream.write(("bot: " if number == 0 else "     ") + line + "\n")
        self.stream.flush()

    def upload_limit(self, job: JobView) -> int | None:
        return None

    async def send_status(self, job: JobView, text: str) -> str | None:
        self.say(text)
        return None

    async def deliver(self, job: JobView, path: Path, delivery: Delivery) -> str:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        target = self.out_dir / f"job-{job.id}-smooth{path.suffix}"
        shutil.copyfile(path, target)
        self.delivered.append(target)
        self.say(f"[{delivery.kind}: {target}]\n{delivery.caption}")
        return str(target)

    async def send_error(self, job: JobView, text: str) -> None:
        self.say(f"⚠ {text}")


def caption_from(fps: float | None, loop: bool, gif: bool, model: str | None) -> str:
    words = ([f"/fps {fps:g}"] if fps else []) + (["/loop"] if loop else []) + (["/gif"] if gif else [])
    return " ".join(words + ([f"/model {model}"] if model else []))


async def run_console(settings: Settings, video: Path, caption: str, out_dir: Path,
                      stream: TextIO = sys.stdout) -> int:
    """Send ``video`` with ``caption`` through queue → worker → reply. Exit code 0 when delivered."""
    replier = ConsoleReplier(out_dir, stream)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with SqliteJobQueue.open(settings.database, lease_seconds=settings.lease_seconds,
                                   max_attempts=settings.max_attempts,
                                   max_queued_per_user=settings.max_queued_per_user) as queue:
        worker = Worker(queue, settings)
        courier = Courier(queue, {PLATFORM: replier}, settings)
        service = ChatService(queue, settings)
        stream.write(f"you: [video: {video.name}] {caption}".rstrip() + "\n")
        if not video.is_file():
            replier.say(f"⚠ {video} does not exist.")
            return 2
        accepted = await service.accept_video(
            platform=PLATFORM, chat_id=CHAT_ID, user_id=getpass.getuser(), message_id=time.time_ns(),
            caption=caption, file_size=video.stat().st_size, download_limit=None, upload_limit=None,
            suffix=video.suffix.lower(), download=lambda target: asyncio.to_thread(shutil.copyfile, video, target))
        if not isinstance(accepted, Accepted):
            replier.say(f"⚠ {accepted.text}")
            return 2
        replier.say(accepted.text)
        await service.set_status_message(accepted.job_id, "console")
        await courier.step()  # follows the queue from here on
        stop = asyncio.Event()
        following = asyncio.create_task(courier.run(stop))
        try:
            while True:
                job = await queue.get(accepted.job_id)
                if job is None or (job.state.is_finished and job.delivered):
                    break
                if not await worker.process_next():
                    await asyncio.sleep(POLL_S)
        finally:
            stop.set()
            await following
        return 0 if job is not None and job.state == JobState.DONE else 1
