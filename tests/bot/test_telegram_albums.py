"""Albums and uploads on Telegram, through the real bot service and PTB against the fake Bot API: an
album (separate updates sharing a media_group_id) becomes one job per video, each answered, with the
album's caption and within the per-user cap; a result goes up with the upload chat action repeated,
a thumbnail, its size and length, and as a reply to the user's message in a group."""

from __future__ import annotations

import io
from types import SimpleNamespace

from PIL import Image

from bot.telegram_albums import AlbumCollector

from tests.bot.test_telegram import JOB_TIMEOUT, add_clip, bot_settings, replying_to, running_bot, tg  # noqa: F401
from tests.media import make_testsrc


async def test_an_album_becomes_one_job_per_video_with_its_caption_within_the_cap(tg, tmp_path):
    group, user = -800, 4
    slow = make_testsrc(tmp_path / "slow.mp4", size="640x480", fps="25", seconds=6)
    quick = make_testsrc(tmp_path / "quick.mp4", fps="25", seconds=0.4)
    async with running_bot(tg, bot_settings(tg, tmp_path, max_queued_per_user=2)):
        busy = tg.send_user_message(group, user, video=add_clip(tg, slow), caption="/fps 100")
        busy_status = (await tg.wait_for("sendMessage", replying_to(busy), timeout=10)).result["message_id"]
        await tg.wait_for("editMessageText", lambda c: c.params["text"].startswith("Smoothing… "), timeout=JOB_TIMEOUT)
        # Telegram puts the album's caption on one item; all three share the media group.
        album = [tg.send_user_message(group, user, video=add_clip(tg, quick), media_group_id="album-1",
                                      caption="/fps 30" if index == 0 else None) for index in range(3)]
        answers = [await tg.wait_for("sendMessage", replying_to(item), timeout=10) for item in album]
        assert [a.params["text"] for a in answers[:2]] == ["Queued — position 1", "Queued — position 2"]
        assert answers[2].params["text"].startswith(
            "You already have 2 videos waiting in the queue (the limit is 2).")
        cancel = next(b["callback_data"] for row in tg.messages[group][busy_status]["reply_markup"]["inline_keyboard"]
                      for b in row)
        tg.press_button(group, user, busy_status, cancel)  # free the worker for the album
        sent = await tg.wait_for_all("sendVideo", 2, lambda c: c.ok, timeout=JOB_TIMEOUT)
    assert sorted(c.params["reply_parameters"]["message_id"] for c in sent) == album[:2]
    assert all(c.params["caption"].startswith("25 → 30 fps") for c in sent)  # the caption applied to both


async def test_a_result_uploads_with_the_chat_action_a_thumbnail_and_its_size(tg, tmp_path):
    group, user = -900, 6
    clip = make_testsrc(tmp_path / "clip.mp4", size="480x270", fps="25", seconds=1)
    tg.delay("sendVideo", 5.0)  # a slow upload: the action is repeated while it lasts
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        message = tg.send_user_message(group, user, video=add_clip(tg, clip))
        sent = await tg.wait_for("sendVideo", lambda c: c.ok, timeout=JOB_TIMEOUT)
    actions = [c for c in tg.calls_to("sendChatAction") if c.params["chat_id"] == group]
    assert len(actions) >= 2 and {c.params["action"] for c in actions} == {"upload_video"}
    assert actions[-1].at <= sent.at  # none after the upload ended
    assert replying_to(message)(sent)  # in a group, the result replies to the user's message
    assert sent.params["supports_streaming"] is True
    assert (sent.params["width"], sent.params["height"], sent.params["duration"]) == (480, 270, 1)
    thumbnail = Image.open(io.BytesIO(sent.params["thumbnail"].content))
    assert thumbnail.format == "JPEG" and thumbnail.size == (320, 180)
    assert len(sent.params["thumbnail"].content) < 200_000


async def test_albums_still_collecting_at_shutdown_are_handled_not_lost():
    handled: list[list[int]] = []

    async def handle(items) -> None:
        handled.append([item.message_id for item in items])

    collector = AlbumCollector(handle, window_s=60)
    for chat, group, message_id in ((1, "a", 12), (1, "a", 11), (2, "a", 5), (1, "b", 13)):
        collector.add(SimpleNamespace(chat_id=chat, media_group_id=group, message_id=message_id))
    await collector.close()
    assert sorted(handled) == [[5], [11, 12], [13]]  # per chat and group, in message order
