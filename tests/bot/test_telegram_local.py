"""A self-hosted Bot API server in --local mode (SMOOTHBOT_TELEGRAM_LOCAL_MODE=true), faked by FakeTelegram's
local mode: getFile answers an absolute path on the server's disk, the bot copies the file from there
(never through memory), and results go back as file:// paths the server reads."""

from __future__ import annotations

import os
import struct
import tracemalloc
from pathlib import Path

from bot.config import MB, TELEGRAM_LOCAL_UPLOAD_LIMIT, Settings
from bot.replies import DOWNLOAD_FAILED_TEXT
from tests.bot.test_telegram import JOB_TIMEOUT, bot_settings, replying_to, running_bot
from tests.fakes import FakeTelegram
from tests.media import make_testsrc, read_video

#: Over Telegram's cloud download limit (20 MB) many times, and over the fetch's memory many times too.
LARGE = 150 * MB


def padded_clip(path: Path, size: int) -> Path:
    """A real MP4 (index first) grown to ``size`` bytes by a trailing ``free`` box, written sparse."""
    path.parent.mkdir(parents=True, exist_ok=True)
    make_testsrc(path, fps="25", seconds=1, codec_args=("-c:v", "libx264", "-pix_fmt", "yuv420p",
                                                         "-movflags", "+faststart"))
    length = path.stat().st_size
    with path.open("ab") as file:
        file.write(struct.pack(">I4s", size - length, b"free"))
    os.truncate(path, size)
    return path


def test_local_mode_raises_the_limits_to_the_local_servers_unless_set():
    cloud = Settings(_env_file=None)
    assert (cloud.telegram_download_cap, cloud.telegram_upload_cap) == (20 * MB, 50 * MB)
    local = Settings(_env_file=None, telegram_local_mode=True)
    assert (local.telegram_download_cap, local.telegram_upload_cap) == (None, TELEGRAM_LOCAL_UPLOAD_LIMIT)
    capped = Settings(_env_file=None, telegram_local_mode=True, telegram_download_limit=500 * MB)
    assert (capped.telegram_download_cap, capped.telegram_upload_cap) == (500 * MB, 2000 * MB)


async def test_a_large_video_is_read_from_the_servers_disk_in_bounded_memory_and_sent_back_by_path(tmp_path):
    server_dir = tmp_path / "telegram-bot-api"
    async with FakeTelegram(local_dir=server_dir) as tg:
        big = padded_clip(server_dir / "123_ABC" / "videos" / "file_0.mp4", LARGE)
        clip = tg.add_local_file(big, width=96, height=64, duration=1)
        settings = bot_settings(tg, tmp_path, telegram_local_mode=True)
        async with running_bot(tg, settings):
            tracemalloc.start()
            try:
                message_id = tg.send_user_message(42, 42, video=clip, caption="/fps 50")
                queued = await tg.wait_for("sendMessage", replying_to(message_id), timeout=JOB_TIMEOUT)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            sent = await tg.wait_for("sendVideo", lambda call: call.ok, timeout=JOB_TIMEOUT)
    assert queued.params["text"].startswith("Queued")
    print(f"local mode: peak Python allocations {peak / MB:.2f} MB while taking a {LARGE / MB:.0f} MB file")
    assert peak < 32 * MB, f"peak Python allocations {peak / MB:.1f} MB while taking a {LARGE / MB:.0f} MB file"
    (got_file,) = tg.calls_to("getFile")
    assert got_file.result["file_path"] == str(big.resolve()) and got_file.result["file_size"] == LARGE
    assert not tg.downloads  # nothing came over HTTP: the file was copied from the server's disk
    uploaded = sent.params["video"]
    assert uploaded.local_path is not None and uploaded.local_path.is_relative_to((tmp_path / "data").resolve())
    result = tmp_path / "result.mp4"
    result.write_bytes(uploaded.content)
    times, _ = read_video(result)
    assert len(times) == 50


async def test_local_mode_can_upload_the_bytes_instead_of_a_path(tmp_path):
    async with FakeTelegram(local_dir=tmp_path / "server") as tg:
        clip = tg.add_file(make_testsrc(tmp_path / "clip.mp4", seconds=0.4).read_bytes(), file_name="clip.mp4",
                           width=96, height=64, duration=1)
        settings = bot_settings(tg, tmp_path, telegram_local_mode=True, telegram_local_upload_by_path=False)
        async with running_bot(tg, settings):
            tg.send_user_message(9, 9, video=clip)
            sent = await tg.wait_for("sendVideo", lambda call: call.ok, timeout=JOB_TIMEOUT)
    assert Path(tg.calls_to("getFile")[0].result["file_path"]).is_absolute()
    assert sent.params["video"].local_path is None and sent.params["video"].content


async def test_a_server_file_the_bot_cannot_read_is_a_failed_download_with_the_reason_in_the_log(tmp_path, caplog):
    async with FakeTelegram(local_dir=tmp_path / "server") as tg:
        elsewhere = make_testsrc(tmp_path / "file_0.mp4", seconds=0.4)
        clip = tg.add_local_file(elsewhere, width=96, height=64, duration=1)
        elsewhere.unlink()  # as if the server's --dir were not mounted on the bot's machine
        async with running_bot(tg, bot_settings(tg, tmp_path, telegram_local_mode=True)):
            message_id = tg.send_user_message(3, 3, video=clip)
            answer = await tg.wait_for("sendMessage", replying_to(message_id), timeout=JOB_TIMEOUT)
    assert answer.params["text"] == DOWNLOAD_FAILED_TEXT
    assert "mount the Bot API server's --dir" in caplog.text and tg.token not in caplog.text
