"""The status message's buttons on Telegram, through the real bot service and PTB against the fake
Bot API: Cancel (the owner only; anyone else gets an alert) and, while the job waits, its place."""

from __future__ import annotations

from bot.telegram_adapter import status_keyboard
from tests.bot.test_telegram import JOB_TIMEOUT, add_clip, bot_settings, replying_to, running_bot, tg  # noqa: F401
from tests.media import make_testsrc


def buttons(tg, chat_id: int, message_id: int) -> list[str]:
    markup = tg.messages[chat_id][message_id].get("reply_markup") or {}
    return [button["callback_data"] for row in markup.get("inline_keyboard", []) for button in row]


def test_callback_data_fits_telegrams_64_bytes_for_any_job_id():
    keyboard = status_keyboard(2**63 - 1, "waiting")
    data = [button.callback_data for row in keyboard.inline_keyboard for button in row]
    assert data == [f"cancel:{2**63 - 1}", f"where:{2**63 - 1}"]
    assert all(len(item.encode()) <= 64 for item in data)
    assert status_keyboard(5, None) is None


async def test_only_the_owner_cancels_from_the_status_message(tg, tmp_path):
    group, owner, other = -700, 3, 9
    tg.add_user(other, language_code="ru")
    slow = make_testsrc(tmp_path / "slow.mp4", size="640x480", fps="25", seconds=6)
    quick = make_testsrc(tmp_path / "quick.mp4", seconds=0.4)
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        first = tg.send_user_message(group, owner, video=add_clip(tg, slow), caption="/fps 100")
        first_status = (await tg.wait_for("sendMessage", replying_to(first), timeout=10)).result["message_id"]
        await tg.wait_for("editMessageText", lambda c: c.params["text"].startswith("Smoothing… "), timeout=JOB_TIMEOUT)
        second = tg.send_user_message(group, owner, video=add_clip(tg, quick))
        queued = await tg.wait_for("sendMessage", replying_to(second), timeout=10)
        assert queued.params["text"] == "Queued — position 1"
        second_status = queued.result["message_id"]
        job = int(buttons(tg, group, second_status)[0].partition(":")[2])
        assert buttons(tg, group, second_status) == [f"cancel:{job}", f"where:{job}"]

        # Someone else: an alert in their own language, and the job stays.
        refused = tg.press_button(group, other, second_status, f"cancel:{job}")
        await tg.wait_for("answerCallbackQuery", lambda c: c.params["callback_query_id"] == refused)
        assert tg.callback_answers[refused] == {"text": "Только тот, кто прислал это видео, может его отменить.",
                                                "show_alert": True}
        asked = tg.press_button(group, other, second_status, f"where:{job}")
        await tg.wait_for("answerCallbackQuery", lambda c: c.params["callback_query_id"] == asked)
        assert tg.callback_answers[asked]["text"] == "В очереди — место 1"
        assert not tg.callback_answers[asked].get("show_alert")

        # The owner: the waiting job is cancelled at once, its message says so and loses its buttons.
        cancelled = tg.press_button(group, owner, second_status, f"cancel:{job}")
        await tg.wait_for("answerCallbackQuery", lambda c: c.params["callback_query_id"] == cancelled)
        assert tg.callback_answers[cancelled]["text"] == "Cancelled. That video was still waiting in the queue."
        assert not tg.callback_answers[cancelled].get("show_alert")
        await tg.wait_for("editMessageText", lambda c: c.params["message_id"] == second_status)
        assert tg.messages[group][second_status]["text"] == "Cancelled. That video was still waiting in the queue."
        assert buttons(tg, group, second_status) == []

        # The running job's message offers Cancel alone; pressing it stops the job, which is never sent.
        running_buttons = buttons(tg, group, first_status)
        assert len(running_buttons) == 1 and running_buttons[0].startswith("cancel:")
        stopping = tg.press_button(group, owner, first_status, running_buttons[0])
        await tg.wait_for("answerCallbackQuery", lambda c: c.params["callback_query_id"] == stopping)
        assert tg.callback_answers[stopping]["text"].startswith("Stopping.")
        await tg.wait_for("editMessageText", lambda c: c.params["message_id"] == first_status
                          and c.params["text"] == "Cancelled.", timeout=JOB_TIMEOUT)
        assert buttons(tg, group, first_status) == []
    assert not tg.calls_to("sendVideo")
