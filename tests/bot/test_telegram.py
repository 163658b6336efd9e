"""The real bot service (python -m bot's serve) and the real python-telegram-bot client, talking
over HTTP on 127.0.0.1 to a fake Telegram Bot API server. The engine runs for real (blend model)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.__main__ import serve
from bot.config import Settings
from bot.replies import FAILED_STATUS_TEXT, OUT_OF_SPACE_TEXT
from bot.service import PRIVATE_CHAT_TEXT
from storage import SqliteJobQueue
from tests.fakes import FakeTelegram
from tests.media import make_testsrc, read_video, video_rate

#: Seconds to wait for a whole job (download, engine, upload) in these tests.
JOB_TIMEOUT = 60


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def bot_settings(tg: FakeTelegram, tmp_path: Path, **changes) -> Settings:
    values = dict(TELEGRAM_TOKEN=tg.token, telegram_base_url=tg.base_url, telegram_base_file_url=tg.base_file_url,
                  data_dir=tmp_path / "data", default_model="blend", progress_edit_interval_s=0.1, lease_seconds=30)
    return Settings(_env_file=None, **(values | changes))


@contextlib.asynccontextmanager
async def running_bot(tg: FakeTelegram, settings: Settings, role: str = "all") -> AsyncIterator[None]:
    stop = asyncio.Event()
    service = asyncio.create_task(serve(settings, stop, role=role))
    await tg.wait_until_polling(timeout=15)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)


def add_clip(tg: FakeTelegram, path: Path, *, mime: str = "video/mp4"):
    return tg.add_file(path.read_bytes(), mime_type=mime, file_name=path.name, width=96, height=64, duration=1)


def replying_to(message_id: int):
    return lambda call: (call.params.get("reply_parameters") or {}).get("message_id") == message_id


async def test_video_with_caption_is_queued_smoothed_and_sent_back(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=1, audio=True)
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        assert {c["command"] for c in tg.bot_commands()} >= {"start", "help", "fps", "loop", "gif", "mp4",
                                                              "settings", "status", "cancel"}
        message_id = tg.send_user_message(42, 42, video=add_clip(tg, clip), caption="/fps 50 /loop")
        queued = await tg.wait_for("sendMessage", replying_to(message_id), timeout=10)
        assert queued.params["text"] == "Queued — position 1"
        sent = await tg.wait_for("sendVideo", lambda c: c.ok, timeout=JOB_TIMEOUT)
    assert replying_to(message_id)(sent)
    assert sent.params["supports_streaming"] is True
    assert sent.params["caption"].startswith("25 → 50 fps, loop, 1.0 s, blend")
    result = tmp_path / "result.mp4"
    result.write_bytes(sent.params["video"].content)
    times, _ = read_video(result)
    assert len(times) == 50 and video_rate(result) == 50
    status = tg.messages[42][queued.result["message_id"]]["text"]
    assert status == "Done."
    edits = [c.params["text"] for c in tg.calls_to("editMessageText")]
    assert any(text.startswith("Smoothing…") for text in edits)


async def test_settings_persist_and_the_keyboard_changes_them(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=1)
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        tg.send_user_message(7, 7, text="/fps 30")
        assert "30 fps" in (await tg.wait_for("sendMessage", lambda c: c.ok)).params["text"]
        since = len(tg.calls)
        tg.send_user_message(7, 7, text="/settings")
        shown = await tg.wait_for("sendMessage", lambda c: c.ok, since=since)
        assert "30 fps, loop off, MP4" in shown.params["text"]
        tg.press_button(7, 7, shown.result["message_id"], "output:gif")
        answer = await tg.wait_for("answerCallbackQuery")
        assert "GIF" in answer.params["text"]
        await tg.wait_for("editMessageText", lambda c: "GIF" in c.params["text"])
        tg.send_user_message(7, 7, video=add_clip(tg, clip))
        animation = await tg.wait_for("sendAnimation", lambda c: c.ok, timeout=JOB_TIMEOUT)
    result = tmp_path / "anim.mp4"
    result.write_bytes(animation.params["animation"].content)
    times, _ = read_video(result)
    assert len(times) == 30 and video_rate(result) == 30  # the chat's /fps 30 applied


async def test_bad_file_gets_a_clear_message_and_the_bot_keeps_working(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    junk = tg.add_file(b"this is text, not a video" * 40, mime_type="video/mp4", file_name="junk.mp4")
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        bad = tg.send_user_message(5, 5, video=junk)
        error = await tg.wait_for("sendMessage", lambda c: replying_to(bad)(c) and "Queued" not in c.params["text"],
                                  timeout=JOB_TIMEOUT)
        assert error.params["text"] == "Not a video file that can be read (unknown, damaged or disallowed format)"
        good = tg.send_user_message(5, 5, video=add_clip(tg, clip))
        sent = await tg.wait_for("sendVideo", lambda c: c.ok, timeout=JOB_TIMEOUT)
        assert replying_to(good)(sent)


async def test_too_big_download_is_refused_before_queueing(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    huge = tg.add_file(clip.read_bytes(), mime_type="video/mp4", file_name="huge.mp4", file_size=25_000_000)
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        message_id = tg.send_user_message(5, 5, video=huge)
        refusal = await tg.wait_for("sendMessage", replying_to(message_id), timeout=10)
    assert "25.0 MB" in refusal.params["text"] and "20 MB" in refusal.params["text"]
    assert not tg.calls_to("getFile")


async def test_result_is_fitted_to_the_upload_limit(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", size="320x240", seconds=1,
                        codec_args=("-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"))
    limit = 20_000
    async with running_bot(tg, bot_settings(tg, tmp_path, telegram_upload_limit=limit)):
        tg.send_user_message(9, 9, video=add_clip(tg, clip))
        sent = await tg.wait_for("sendVideo", lambda c: c.ok, timeout=JOB_TIMEOUT)
    assert len(sent.params["video"].content) <= limit
    assert "fit" in sent.params["caption"]


async def test_cancel_stops_the_running_job(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", size="640x480", fps="25", seconds=6)
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        message_id = tg.send_user_message(3, 3, video=add_clip(tg, clip), caption="/fps 100")
        queued = await tg.wait_for("sendMessage", replying_to(message_id), timeout=10)
        await tg.wait_for("editMessageText", lambda c: c.params["text"].startswith("Smoothing… ")
                          and c.params["text"] != "Smoothing… 0%", timeout=JOB_TIMEOUT)
        since = len(tg.calls)
        tg.send_user_message(3, 3, text="/cancel")
        reply = await tg.wait_for("sendMessage", lambda c: c.ok, since=since)
        assert reply.params["text"].startswith("Stopping")
        await tg.wait_for("editMessageText", lambda c: c.params["text"] == "Cancelled.", timeout=JOB_TIMEOUT)
    assert tg.messages[3][queued.result["message_id"]]["text"] == "Cancelled."
    assert not tg.calls_to("sendVideo")


async def test_two_users_are_served_fairly(tg, tmp_path):
    slow = make_testsrc(tmp_path / "slow.mp4", size="320x240", seconds=3)
    quick = make_testsrc(tmp_path / "quick.mp4", seconds=0.4)
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        first = tg.send_user_message(1, 1, video=add_clip(tg, slow))
        await tg.wait_for("sendMessage", replying_to(first), timeout=10)
        a2 = tg.send_user_message(1, 1, video=add_clip(tg, quick))
        a3 = tg.send_user_message(1, 1, video=add_clip(tg, quick))
        b1 = tg.send_user_message(2, 2, video=add_clip(tg, quick))
        queued_b = await tg.wait_for("sendMessage", replying_to(b1), timeout=10)
        assert queued_b.params["text"] == "Queued — position 1"  # ahead of user 1's two waiting videos
        sent = await tg.wait_for_all("sendVideo", 4, lambda c: c.ok, timeout=JOB_TIMEOUT)
    order = [c.params["reply_parameters"]["message_id"] for c in sent]
    assert order == [first, b1, a2, a3]


def start_bot_process(tg: FakeTelegram, tmp_path: Path) -> subprocess.Popen:
    env = os.environ | {
        "TELEGRAM_TOKEN": tg.token, "SMOOTHBOT_TELEGRAM_BASE_URL": tg.base_url,
        "SMOOTHBOT_TELEGRAM_BASE_FILE_URL": tg.base_file_url, "SMOOTHBOT_DATA_DIR": str(tmp_path / "data"),
        "SMOOTHBOT_DEFAULT_MODEL": "blend", "SMOOTHBOT_PROGRESS_EDIT_INTERVAL_S": "0.2",
        "SMOOTHBOT_LEASE_SECONDS": "3",
    }
    return subprocess.Popen([sys.executable, "-m", "bot"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def test_killed_service_restarts_and_delivers_exactly_once(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", size="640x480", fps="25", seconds=4)
    first = start_bot_process(tg, tmp_path)
    try:
        message_id = tg.send_user_message(8, 8, video=add_clip(tg, clip), caption="/fps 50")
        # Includes the process's start: its imports alone take 20 s on a machine loaded 7× over its cores.
        await tg.wait_for("sendMessage", replying_to(message_id), timeout=JOB_TIMEOUT)
        await tg.wait_for("editMessageText", lambda c: c.params["text"].startswith("Smoothing… ")
                          and c.params["text"] != "Smoothing… 0%", timeout=JOB_TIMEOUT)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not tg.calls_to("sendVideo")
    second = start_bot_process(tg, tmp_path)
    try:
        sent = await tg.wait_for("sendVideo", lambda c: c.ok, timeout=JOB_TIMEOUT)
        await wait_queue_idle(tmp_path / "data" / "smoothbot.sqlite3")
        await tg.wait_quiet(quiet_s=1.0)  # a duplicate would be sent now, not later
    finally:
        second.send_signal(signal.SIGTERM)
        _, stderr = second.communicate(timeout=30)
    assert len(tg.calls_to("sendVideo")) == 1 and replying_to(message_id)(sent)
    assert len([c for c in tg.calls_to("sendMessage") if replying_to(message_id)(c)]) == 1  # one "Queued"
    assert tg.token not in stderr.decode()  # the token never reaches the logs


async def test_a_chats_updates_keep_their_order_while_chats_run_concurrently(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=0.4)
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        for user in (11, 12, 13):
            tg.send_user_message(user, user, text="/fps 30")
            tg.send_user_message(user, user, video=add_clip(tg, clip))  # right after: must see /fps 30
        sent = await tg.wait_for_all("sendVideo", 3, lambda c: c.ok, timeout=JOB_TIMEOUT)
    for call in sent:
        assert call.params["caption"].startswith("25 → 30 fps")


async def wait_queue_idle(database: Path, timeout: float = JOB_TIMEOUT) -> None:
    """Until no job waits or runs and every finished job is delivered (read from the database)."""
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.closing(sqlite3.connect(database)) as db:
                busy = db.execute("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running') "
                                  "OR (state = 'done' AND NOT delivered)").fetchone()[0]
            if not busy:
                return
            await asyncio.sleep(0.1)


def stored_rows(database: Path) -> dict[str, int]:
    """Rows in each table the bot writes for chats and users (read with plain sqlite3)."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed names)
                for table in ("jobs", "chat_settings", "user_turns")}


async def test_a_stranger_changes_nothing_and_gets_a_polite_refusal_at_most(tg, tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    settings = bot_settings(tg, tmp_path, allowed_chat_ids=[1])
    stranger = 666
    # A keyboard the bot posted there before the chat was left out of the allowlist.
    keyboard = tg.add_bot_message(stranger, stranger, "Settings for this chat: …",
                                  [[("60 fps", "fps:60"), ("Loop on/off", "loop:toggle"), ("GIF", "output:gif")]])
    async with running_bot(tg, settings):
        commands = ["/fps 30", "/loop", "/gif", "/slowmo 4", "/compare side", "/cuts fade", "/quality best",
                    "/model flow", "/settings", "/status", "/cancel", "/start", "/help"]
        asked = [tg.send_user_message(stranger, stranger, text=text) for text in commands]
        asked.append(tg.send_user_message(stranger, stranger, video=add_clip(tg, clip), caption="/fps 60"))
        pressed = [tg.press_button(stranger, stranger, keyboard, data) for data in ("fps:60", "loop:toggle",
                                                                                   "output:gif")]
        tg.send_user_message(stranger, stranger, text="just chatting")  # ignored
        answers = await tg.wait_for_all("sendMessage", len(asked), lambda c: c.ok, timeout=10)
        button_answers = await tg.wait_for_all("answerCallbackQuery", len(pressed), timeout=10)
        await tg.wait_updates_confirmed()
        await tg.wait_quiet()
        # The allowed chat is served as before.
        tg.send_user_message(1, 1, text="/fps 30")
        allowed = await tg.wait_for("sendMessage", replying_to_chat(1), timeout=10)
    assert [a.params["reply_parameters"]["message_id"] for a in answers] == asked
    assert {a.params["text"] for a in answers} == {PRIVATE_CHAT_TEXT}
    assert {a.params["text"] for a in button_answers} == {PRIVATE_CHAT_TEXT}
    assert not tg.calls_to("getFile") and not tg.calls_to("editMessageText")
    assert allowed.params["text"] == "Videos in this chat will now be smoothed to 30 fps."
    assert stored_rows(settings.database) == {"jobs": 0, "chat_settings": 1, "user_turns": 0}  # chat 1's only
    with contextlib.closing(sqlite3.connect(settings.database)) as db:
        assert db.execute("SELECT platform, chat_id FROM chat_settings").fetchall() == [("telegram", "1")]
    assert not [path for path in settings.data_dir.rglob("*") if path.is_file()
                and not path.name.startswith(settings.database.name)]


def replying_to_chat(chat_id: int):
    return lambda call: call.ok and int(call.params["chat_id"]) == chat_id


async def test_user_text_comes_back_as_plain_text(tg, tmp_path):
    """Answers that quote the user are sent without a parse mode: markup characters stay characters."""
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    typed = "<b>&amp;*b* _i_ [x](tg://user?id=1) `c`"
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        command = tg.send_user_message(4, 4, text=f"/fps {typed}")
        answer = await tg.wait_for("sendMessage", replying_to(command), timeout=10)
        video = tg.send_user_message(4, 4, video=add_clip(tg, clip), caption="/slowmo <i>&lt;</i>")
        refusal = await tg.wait_for("sendMessage", replying_to(video), timeout=10)
    assert answer.params["text"] == f"“{typed}” is not a frame rate. Try /fps 60."
    assert refusal.params["text"] == "“<i>&lt;</i>” is not a slow-motion factor. Try /slowmo 4."
    for call in (answer, refusal):
        assert "parse_mode" not in call.params and "entities" not in call.params
        shown = tg.messages[4][call.result["message_id"]]
        assert shown["text"] == call.params["text"] and not shown.get("entities")  # no formatting applied


async def test_status_shows_a_fixed_sentence_not_the_stored_error(tg, tmp_path):
    settings = bot_settings(tg, tmp_path)
    settings.data_dir.mkdir(parents=True)
    detail = "ffmpeg: /srv/smoothbot/data/inbox/telegram-5-1.mp4: Invalid data found (SMOOTHBOT_DAIN_WEIGHTS)"
    async with SqliteJobQueue.open(settings.database) as queue:
        await queue.enqueue("telegram", 5, 5, 99, settings.data_dir / "inbox" / "telegram-5-1.mp4", {})
        claim = await queue.claim("test")
        job = await queue.fail(claim, detail)
        await queue.mark_reported(job.id, None)  # the user was told at the time
    async with running_bot(tg, settings):
        asked = tg.send_user_message(5, 5, text="/status")
        status = await tg.wait_for("sendMessage", replying_to(asked), timeout=10)
    assert status.params["text"] == f"Your videos:\n#1: {FAILED_STATUS_TEXT}"
    assert "/srv" not in status.params["text"] and "SMOOTHBOT" not in status.params["text"]


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A real, tiny filesystem (tmpfs) mounted at ``path``: writes past ``size`` fail with ENOSPC."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"needs permission to mount a tmpfs (root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(directory: Path) -> Path:
    """Writes a file until the filesystem is full; returns it (delete it to free the space)."""
    filler = directory / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


async def test_a_full_disk_during_download_says_so_and_leaves_no_partial_file(tg, tmp_path, caplog):
    with small_disk(tmp_path / "disk", "1m") as disk:
        settings = bot_settings(tg, tmp_path, data_dir=disk / "data", database_path=tmp_path / "db.sqlite3")
        video = tg.add_file(os.urandom(3_000_000), mime_type="video/mp4", file_name="big.mp4")  # > the disk
        async with running_bot(tg, settings):
            message_id = tg.send_user_message(6, 6, video=video)
            refusal = await tg.wait_for("sendMessage", replying_to(message_id), timeout=10)
        left = [path for path in disk.rglob("*") if path.is_file()]
    assert refusal.params["text"] == OUT_OF_SPACE_TEXT
    assert left == []  # the partial download was removed
    assert stored_rows(settings.database)["jobs"] == 0
    assert any(record.levelno >= logging.ERROR and "out of space" in record.getMessage() for record in caplog.records)


async def test_an_enqueue_that_fails_removes_the_downloaded_file(tg, tmp_path, caplog):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    with small_disk(tmp_path / "disk", "4m") as disk:
        settings = bot_settings(tg, tmp_path, database_path=disk / "db.sqlite3")
        async with running_bot(tg, settings):
            filler = fill(disk)  # the database's disk is full: the download (elsewhere) works, the insert not
            try:
                message_id = tg.send_user_message(6, 6, video=add_clip(tg, clip))
                refusal = await tg.wait_for("sendMessage", replying_to(message_id), timeout=10)
            finally:
                filler.unlink()
        assert tg.downloads  # it was fetched, then removed
        assert not [path for path in settings.data_dir.rglob("*") if path.is_file()]
        assert stored_rows(settings.database)["jobs"] == 0
    assert refusal.params["text"] == OUT_OF_SPACE_TEXT
    assert any(record.levelno >= logging.ERROR and "enqueue" in record.getMessage() for record in caplog.records)
