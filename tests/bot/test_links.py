"""A link instead of a file, end to end: the real service with PTB against the fake Bot API, and discord.py
on dpytest, fetching from a real web server on 127.0.0.1 (tests/fakes/video_site.py).

The only way to reach that server is the fetcher's test-only allowance of its exact address and port,
given here by replacing the Fetcher the service builds (monkeypatch): no setting, variable or chat text
can set it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import bot.links
from bot.fetch import NOT_ALLOWED_TEXT, SCHEME_TEXT, Fetcher
from bot.links import DOMAIN_TEXT, LINKS_OFF_TEXT, WEB_PAGE_TEXT, find_link
from storage import SqliteJobQueue
from tests.bot.test_discord import running_bot as running_discord_bot
from tests.bot.test_discord import settings  # noqa: F401 (fixture)
from tests.bot.test_telegram import JOB_TIMEOUT, bot_settings, replying_to, running_bot, tg  # noqa: F401 (fixture)
from tests.fakes.video_site import VideoSite
from tests.media import make_testsrc, read_video, video_rate


@pytest.fixture
async def site(tmp_path) -> AsyncIterator[VideoSite]:
    clip = make_testsrc(tmp_path / "served.mp4", fps="25", seconds=1)
    async with VideoSite(clip.read_bytes()) as served:
        yield served


@pytest.fixture
def reachable(site, monkeypatch) -> VideoSite:
    """The service's fetcher may reach the test site (and nothing else on loopback)."""
    monkeypatch.setattr(bot.links, "Fetcher", lambda limits: Fetcher(limits, allow_test_servers=[site.address]))
    return site


def jobs_in(tmp_path) -> int:
    import sqlite3

    database = tmp_path / "data" / "smoothbot.sqlite3"
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT count(*) FROM jobs").fetchone()[0]


def test_the_first_link_of_a_message_is_found_with_its_scheme():
    assert find_link("https://example.com/a.mp4 /fps 60") == "https://example.com/a.mp4"
    assert find_link("look: (http://example.com/cat.gif).") == "http://example.com/cat.gif"
    assert find_link("/fps 60 file:///etc/passwd") == "file:///etc/passwd"
    assert find_link("no link here, example.com") is None


async def test_a_link_to_a_video_becomes_a_job_with_the_caption_options(tg, reachable, tmp_path):
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        message_id = tg.send_user_message(42, 42, text=f"{reachable.url('/clip.mp4')} /fps 50")
        queued = await tg.wait_for("sendMessage", replying_to(message_id), timeout=10)
        assert queued.params["text"] == "Queued — position 1"
        sent = await tg.wait_for("sendVideo", lambda call: call.ok, timeout=JOB_TIMEOUT)
    assert replying_to(message_id)(sent)
    assert sent.params["caption"].startswith("25 → 50 fps, 1.0 s, blend")
    result = tmp_path / "result.mp4"
    result.write_bytes(sent.params["video"].content)
    times, _ = read_video(result)
    assert len(times) == 50 and video_rate(result) == 50


async def test_refused_links_get_a_clear_answer_and_leave_nothing_behind(tg, reachable, tmp_path):
    other = reachable.raw_port  # a second live server on 127.0.0.1, outside the allowance
    cases = {
        f"http://localhost:{other}/clip.mp4": NOT_ALLOWED_TEXT,
        f"http://2130706433:{other}/clip.mp4 /fps 60": NOT_ALLOWED_TEXT,
        f"http://[::ffff:127.0.0.1]:{other}/clip.mp4": NOT_ALLOWED_TEXT,
        "http://169.254.169.254/latest/meta-data/": NOT_ALLOWED_TEXT,
        reachable.url(f"/redirect?to=http://127.0.0.1:{other}/clip.mp4"): NOT_ALLOWED_TEXT,
        "file:///etc/passwd": SCHEME_TEXT,
        "ftp://example.com/clip.mp4": SCHEME_TEXT,
        reachable.url("/page.html"): WEB_PAGE_TEXT,
        reachable.url("/text.mp4"): "Not a video file that can be read (unknown, damaged or disallowed format)",
        reachable.url("/clip.mp4 /fps 0"): None,  # the caption's own error, before anything is fetched
    }
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        for chat, (text, expected) in enumerate(cases.items(), start=100):
            message_id = tg.send_user_message(chat, chat, text=text)
            answer = await tg.wait_for("sendMessage", lambda call: replying_to(message_id)(call)
                                       and int(call.params["chat_id"]) == chat, timeout=JOB_TIMEOUT)
            reply = answer.params["text"]
            assert expected is None or reply == expected, (text, reply)
            assert "Queued" not in reply and "Traceback" not in reply and "127.0.0.1" not in reply
            assert str(tmp_path) not in reply
        quiet = tg.send_user_message(7, 7, text="just chatting, no link")
        await tg.wait_quiet(0.5)
        assert not [call for call in tg.calls_to("sendMessage") if int(call.params["chat_id"]) == 7]
    assert jobs_in(tmp_path) == 0
    assert not [path for path in (tmp_path / "data" / "inbox").iterdir()]
    assert [seen.path for seen in reachable.requests if seen.path == "/clip.mp4"] == []  # /fps 0: not fetched


async def test_operators_can_turn_links_off_or_restrict_them_to_domains(tg, reachable, tmp_path):
    off = bot_settings(tg, tmp_path, links_enabled=False)
    async with running_bot(tg, off):
        message_id = tg.send_user_message(5, 5, text=reachable.url("/clip.mp4"))
        assert (await tg.wait_for("sendMessage", replying_to(message_id))).params["text"] == LINKS_OFF_TEXT
    listed = bot_settings(tg, tmp_path, link_domains="videos.example.com, example.org")
    assert listed.link_domains == ["videos.example.com", "example.org"]
    async with running_bot(tg, listed):
        since = len(tg.calls)
        message_id = tg.send_user_message(6, 6, text=reachable.url("/clip.mp4"))
        assert (await tg.wait_for("sendMessage", replying_to(message_id), since=since)).params["text"] == DOMAIN_TEXT
    assert not reachable.requests  # neither bot connected to the site


async def test_a_link_in_a_discord_message_becomes_a_job(settings, reachable, monkeypatch, tmp_path):  # noqa: F811
    async with running_discord_bot(settings, monkeypatch, tmp_path) as discord_:
        message = await discord_.post(discord_.mention(f"smooth {reachable.url('/clip.mp4')} /fps 50"))
        queued = await discord_.wait_for_reply(message.id)
        assert queued.content == "Queued — position 1"
        result = await discord_.wait_for_reply(message.id, lambda sent: bool(sent.files), timeout=JOB_TIMEOUT)
        refused = await discord_.post(discord_.mention(f"http://localhost:{reachable.raw_port}/clip.mp4"))
        answer = await discord_.wait_for_reply(refused.id)
    assert result.content.startswith("25 → 50 fps")
    assert answer.content == NOT_ALLOWED_TEXT
    async with SqliteJobQueue.open(settings.database) as queue:
        assert len(await queue.jobs_for_user("discord", message.channel.id, message.author.id,
                                             include_finished=True)) == 1


async def test_with_pages_on_yt_dlp_finds_the_video_in_a_page_and_every_request_stays_guarded(tg, reachable, tmp_path):
    pytest.importorskip("yt_dlp")
    from bot.pages import NO_VIDEO_TEXT

    other = reachable.raw_port
    refused_pages = {
        # the page's video is on loopback: the fetcher refuses the URL yt-dlp found
        reachable.url(f"/page.html?src=http://127.0.0.1:{other}/clip.mp4"): NOT_ALLOWED_TEXT,
        # the page sends yt-dlp on to loopback: yt-dlp's own request goes through the guard and is refused
        reachable.url(f"/refresh.html?to=http://localhost:{other}/page.html"): NOT_ALLOWED_TEXT,
        reachable.url("/page.html?src="): NO_VIDEO_TEXT,
    }
    async with running_bot(tg, bot_settings(tg, tmp_path, link_pages=True)):
        for chat, (text, expected) in enumerate(refused_pages.items(), start=200):
            message_id = tg.send_user_message(chat, chat, text=text)
            answer = await tg.wait_for("sendMessage", lambda call: replying_to(message_id)(call)
                                       and int(call.params["chat_id"]) == chat, timeout=JOB_TIMEOUT)
            assert answer.params["text"] == expected, text
        message_id = tg.send_user_message(42, 42, text=f"{reachable.url('/page.html')} /fps 50")
        queued = await tg.wait_for("sendMessage", lambda call: replying_to(message_id)(call)
                                   and int(call.params["chat_id"]) == 42, timeout=JOB_TIMEOUT)
        assert queued.params["text"] == "Queued — position 1"
        sent = await tg.wait_for("sendVideo", lambda call: call.ok, timeout=JOB_TIMEOUT)
    assert sent.params["caption"].startswith("25 → 50 fps")
    assert jobs_in(tmp_path) == 1


async def test_a_link_from_a_chat_outside_the_allowlist_is_never_fetched(tg, reachable, tmp_path):
    async with running_bot(tg, bot_settings(tg, tmp_path, allowed_chat_ids=[1])):
        tg.send_user_message(2, 2, text=reachable.url("/clip.mp4"))
        await tg.wait_updates_confirmed()
        await tg.wait_quiet(0.5)
    assert not reachable.requests
    assert not tg.calls_to("getFile") and jobs_in(tmp_path) == 0


async def test_a_refused_link_is_answered_in_the_users_language(tg, reachable, tmp_path):
    tg.add_user(8, language_code="es")
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        message_id = tg.send_user_message(8, 8, text="file:///etc/passwd")
        answer = await tg.wait_for("sendMessage", replying_to(message_id), timeout=JOB_TIMEOUT)
        since = len(tg.calls)
        big = tg.send_user_message(8, 8, text=reachable.url("/huge-declared"))
        too_large = await tg.wait_for("sendMessage", replying_to(big), since=since, timeout=JOB_TIMEOUT)
    assert answer.params["text"] == "Solo puedo descargar enlaces http:// y https://."
    assert too_large.params["text"] == "El archivo de ese enlace pesa más de 200 MB, lo máximo que descargo."


def test_help_mentions_links_only_where_they_are_on():
    from bot.commands import help_text
    from bot.config import Settings

    assert "link to a video" in help_text(Settings(_env_file=None))
    assert "link to a video" not in help_text(Settings(_env_file=None, links_enabled=False))
