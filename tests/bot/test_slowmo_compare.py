"""Slow motion, before/after, cut mode and quality through the chat flow: caption or command → stored settings
(JSON in the real SQLite queue) → engine options → real engine (blend model) → reply and caption."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from bot.commands import JobSettings
from bot.config import Settings
from bot.console_adapter import run_console
from bot.service import ChatService
from bot.worker import Worker
from storage import SqliteJobQueue
from tests.bot.test_telegram import JOB_TIMEOUT, add_clip, bot_settings, replying_to, running_bot, tg  # noqa: F401
from tests.media import audio_duration, make_testsrc, read_video, video_rate


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", default_model="blend", progress_edit_interval_s=0.05,
                    lease_seconds=30)


async def test_caption_asks_for_slow_motion_side_by_side_with_fades(tmp_path, settings):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=0.4, audio=True)
    out = io.StringIO()
    code = await run_console(settings, clip, "/slowmo 2 /fps 50 /compare side /cuts fade", tmp_path / "out", stream=out)
    transcript = out.getvalue()
    assert code == 0, transcript
    assert "25 → 50 fps, 0.8 s, blend" in transcript
    assert "2× slow motion, audio slowed 2×, pitch kept" in transcript
    assert "before/after comparison (side by side)" in transcript
    result = tmp_path / "out" / "job-1-smooth.mp4"
    times, images = read_video(result)
    assert len(times) == 40 and video_rate(result) == 50  # 0.4 s × 2 × 50 fps
    assert images[0].shape == (64, 192, 3)  # original and smoothed side by side
    assert audio_duration(result) == pytest.approx(0.8, abs=0.025)


async def test_engine_options_carry_the_new_settings(settings):
    async with SqliteJobQueue.open(settings.database) as queue:
        worker = Worker(queue, settings)
        options = worker.engine_options(JobSettings(fps=60, slowmo=2.5, compare="stack", cut_mode="fade"), "video", None)
        assert (options.fps, options.slowmo, options.compare, options.cut_mode) == (60, 2.5, "stack", "fade")
        old_row = worker.engine_options(JobSettings.from_dict({"fps": 30, "loop": True}), "video", None)
        assert (old_row.slowmo, old_row.compare, old_row.cut_mode, old_row.quality) == (None, None, "cut", "fast")


async def test_a_chats_best_quality_reaches_the_engine_options(settings):
    async with SqliteJobQueue.open(settings.database) as queue:
        service = ChatService(queue, settings)
        answer = await service.set_quality("console", "c", "best")
        assert answer.startswith("Videos in this chat will now use the best quality")
        assert "which has one quality" in answer  # this chat's model is blend
        stored = await service.chat_settings("console", "c")  # through the real SQLite settings row
        assert stored.quality == "best"
        options = Worker(queue, settings).engine_options(replace(stored, model="rife"), "video", None)
        assert (options.model, options.quality) == ("rife", "best")
        assert (await service.set_quality("console", "c", "turbo")).startswith("Choose the quality")
        assert (await service.chat_settings("console", "c")).quality == "best"  # a bad value changes nothing


async def test_best_quality_is_named_in_the_caption_only_when_rife_ran(tmp_path, settings):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=0.2)
    out = io.StringIO()
    assert await run_console(settings, clip, "/quality best", tmp_path / "blend", stream=out) == 0, out.getvalue()
    assert "25 → 50 fps, 0.2 s, blend\n" in out.getvalue()  # blend has one quality: nothing to claim
    no_rife = settings.model_copy(update={"default_model": "rife", "rife_weights": tmp_path / "missing.pkl",
                                          "data_dir": tmp_path / "data-no-rife"})
    out = io.StringIO()
    assert await run_console(no_rife, clip, "/quality best", tmp_path / "flow", stream=out) == 0, out.getvalue()
    assert "0.2 s, optical flow\n" in out.getvalue() and "RIFE weights missing" in out.getvalue()
    assert "best quality" not in out.getvalue()


@pytest.mark.slow
async def test_best_quality_runs_rife_and_says_so(tmp_path, settings):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=0.2)
    out = io.StringIO()
    code = await run_console(settings, clip, "/model rife /quality best", tmp_path / "out", stream=out)
    assert code == 0, out.getvalue()
    assert "25 → 50 fps, 0.2 s, RIFE, best quality" in out.getvalue()
    assert len(read_video(tmp_path / "out" / "job-1-smooth.mp4")[0]) == 10


async def test_chat_commands_set_slowmo_compare_and_cuts_for_the_next_videos(tg, tmp_path):  # noqa: F811
    settings = bot_settings(tg, tmp_path)
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=0.4)
    async with running_bot(tg, settings):
        assert {"slowmo", "compare", "cuts", "quality"} <= {c["command"] for c in tg.bot_commands()}
        for text, answer in [("/slowmo 3", "3× slower"), ("/compare stack", "stacked"), ("/cuts fade", "cross-fade"),
                             ("/slowmo 11", "from 2× to 8×"), ("/quality best", "about 4× slower"),
                             ("/quality ultra", "Choose the quality")]:
            since = len(tg.calls)
            tg.send_user_message(9, 9, text=text)
            reply = await tg.wait_for("sendMessage", lambda c: c.ok, since=since)
            assert answer in reply.params["text"]
        since = len(tg.calls)
        tg.send_user_message(9, 9, text="/settings")
        shown = await tg.wait_for("sendMessage", lambda c: c.ok, since=since)
        assert ("3× slow motion, before/after stacked, cross-fades at cuts, best quality (for RIFE only)"
                in shown.params["text"])
        message_id = tg.send_user_message(9, 9, video=add_clip(tg, clip), caption="/fps 50")
        sent = await tg.wait_for("sendVideo", lambda c: c.ok, timeout=JOB_TIMEOUT)
    assert replying_to(message_id)(sent)
    assert "3× slow motion, no audio" in sent.params["caption"]
    assert "before/after comparison (stacked)" in sent.params["caption"]
    assert "best quality" not in sent.params["caption"]  # blend ran: it has one quality
    assert (sent.params["width"], sent.params["height"]) == (96, 128)
    result = tmp_path / "result.mp4"
    result.write_bytes(sent.params["video"].content)
    times, images = read_video(result)
    assert len(times) == 60 and images[0].shape == (128, 96, 3)  # 0.4 s × 3 × 50 fps, stacked
