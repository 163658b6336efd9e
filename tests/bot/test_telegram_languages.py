"""Languages on Telegram, through the real bot service and PTB against the fake Bot API: the command
menus per language, answers in the app's language (region variants and unknown codes), /language."""

from __future__ import annotations

import pytest

from bot import i18n
from bot.telegram_adapter import COMMANDS
from storage import open_queue
from tests.bot.test_telegram import add_clip, bot_settings, replying_to, running_bot, tg  # noqa: F401 (fixture)
from tests.media import make_testsrc


async def test_the_command_menu_is_published_in_every_language(tg, tmp_path):
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        menus = {language: {c["command"]: c["description"] for c in tg.bot_commands(language_code=code)}
                 for language, code in (("en", ""), ("es", "es"), ("ru", "ru"))}
    names = [name for name, _ in COMMANDS]
    assert all(list(menu) == names for menu in menus.values())
    assert "language" in names
    assert menus["en"]["status"] == "Your videos and their places in the queue"
    assert menus["es"]["status"] == "Tus vídeos y su puesto en la cola"
    assert menus["ru"]["status"] == "Ваши видео и их места в очереди"
    assert not tg.bot_commands(language_code="en")  # English is the default menu, not one of its own


async def test_answers_follow_the_users_app_language(tg, tmp_path):
    speakers = {101: "es", 102: "ru", 103: "es-419", 104: "pt-BR", 105: "tlh"}
    for user, code in speakers.items():
        tg.add_user(user, language_code=code)
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        answers = {}
        for user in speakers:
            message = tg.send_user_message(user, user, text="/status")
            answer = await tg.wait_for("sendMessage", lambda c: c.params["chat_id"] == user and replying_to(message)(c),
                                       timeout=10)
            answers[user] = answer.params["text"]
    assert answers[101] == answers[103] == "Aún no tienes vídeos aquí. ¡Envía uno!"
    assert answers[102] == "У вас здесь пока нет видео. Пришлите какое-нибудь!"
    assert answers[104] == answers[105] == "You have no videos here yet. Send one!"


@pytest.fixture(params=["sqlite", "postgresql"])
def queue_url(request) -> str | None:
    """Chat settings in each dialect: the default SQLite file, or a fresh PostgreSQL database."""
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


async def test_language_is_a_chat_setting_that_overrides_the_app(tg, tmp_path, queue_url):
    settings = bot_settings(tg, tmp_path, **({"queue_url": queue_url} if queue_url else {}))
    group, russian, english = -500, 201, 202
    tg.add_user(russian, language_code="ru")
    tg.add_user(english, language_code="en")
    clip = make_testsrc(tmp_path / "clip.mp4", fps="25", seconds=0.4)
    async with running_bot(tg, settings):
        asked = tg.send_user_message(group, russian, text="/language")
        shown = await tg.wait_for("sendMessage", replying_to(asked), timeout=10)
        assert shown.params["text"].startswith("Этот чат следует языку приложения каждого человека (сейчас Русский).")
        offered = [b["callback_data"] for row in shown.params["reply_markup"]["inline_keyboard"] for b in row]
        assert offered == ["language:en", "language:es", "language:ru", "language:auto"]

        query = tg.press_button(group, russian, shown.result["message_id"], "language:es")
        await tg.wait_for("answerCallbackQuery", lambda c: c.params.get("callback_query_id") == query)
        assert tg.callback_answers[query]["text"] == "A partir de ahora hablo español en este chat."
        await tg.wait_for("editMessageText", lambda c: c.params["text"].startswith("Este chat habla Español."))

        # Everyone in the chat now gets Spanish, whatever their app says, and so does their video's status.
        video = tg.send_user_message(group, english, video=add_clip(tg, clip), caption="/fps 30")
        queued = await tg.wait_for("sendMessage", replying_to(video), timeout=10)
        assert queued.params["text"].startswith("En cola")
        sent = await tg.wait_for("sendVideo", lambda c: c.ok, timeout=60)
        assert sent.params["caption"].startswith("25 → 30 fps, 0.4 s, fundido")
        status = queued.result["message_id"]
        await tg.wait_for("editMessageText", lambda c: c.params["message_id"] == status and c.params["text"] == "Hecho.",
                          timeout=30)  # the courier's last word on the job, in the job's language

        wrong = tg.send_user_message(group, english, text="/language klingon")
        refusal = await tg.wait_for("sendMessage", replying_to(wrong), timeout=10)
        assert refusal.params["text"].startswith("Elige un idioma: /language en (English)")

        back = tg.send_user_message(group, english, text="/language auto")
        assert (await tg.wait_for("sendMessage", replying_to(back), timeout=10)).params["text"] == (
            "I'll answer each person in their app's language.")
        again = tg.send_user_message(group, russian, text="/status")
        status = await tg.wait_for("sendMessage", replying_to(again), timeout=10)
        assert status.params["text"] == "У вас здесь пока нет видео. Пришлите какое-нибудь!"

        set_ru = tg.send_user_message(group, english, text="/language ru")
        assert (await tg.wait_for("sendMessage", replying_to(set_ru), timeout=10)).params["text"] == (
            "Теперь я говорю в этом чате по-русски.")
    async with open_queue(settings.queue_location) as queue:
        assert (await queue.settings.get("telegram", group))["language"] == "ru"
        job = (await queue.jobs_for_user("telegram", group, english, include_finished=True, limit=1))[0]
        assert job.options["language"] == "es"  # the language the job was told in
    assert i18n.current() == i18n.DEFAULT_LANGUAGE  # the bot's tasks never changed the test's language


async def test_the_engines_refusal_of_a_file_is_said_in_the_users_language(tg, tmp_path):
    tg.add_user(301, language_code="ru")
    junk = tg.add_file(b"this is text, not a video" * 40, mime_type="video/mp4", file_name="junk.mp4")
    async with running_bot(tg, bot_settings(tg, tmp_path)):
        sent = tg.send_user_message(301, 301, video=junk)
        refusal = await tg.wait_for("sendMessage", lambda c: replying_to(sent)(c) and "В очереди" not in c.params["text"],
                                    timeout=60)
    assert refusal.params["text"] == "Это не читаемый видеофайл (неизвестный, повреждённый или запрещённый формат)"
