"""The catalogues: every text the code marks has a real translation in every language, with the same
placeholders; locale codes resolve to the closest catalogue; /language parses names and codes."""

from __future__ import annotations

import re
import string
from fractions import Fraction
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from bot import i18n
from bot.commands import CommandError, parse_language
from bot.replies import result_caption, result_highlights, stored_failure_text
from bot.worker import user_message
from interpolation.errors import LimitExceededError
from interpolation.options import Result
from interpolation.texts import Note
from storage.queue import GAVE_UP_MESSAGE

ROOT = Path(__file__).resolve().parents[2]
#: The same method map and keywords as babel.cfg and `make messages` (the engine's EngineError.said, Note).
METHOD_MAP = [("bot/**.py", "python"), ("interpolation/**.py", "python")]
KEYWORDS = DEFAULT_KEYWORDS | {"N_": None, "said": None, "Note": None}


def extracted_ids() -> dict[str | tuple[str, str], str]:
    """Every message id marked in bot/ (singular, or (singular, plural)), with where it was found."""
    ids: dict[str | tuple[str, str], str] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
            str(ROOT), METHOD_MAP, keywords=KEYWORDS):
        ids.setdefault(message, f"{filename}:{line}")
    return ids


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def catalogue_problems(catalog: Catalog, ids: dict[str | tuple[str, str], str]) -> list[str]:
    """What is wrong with ``catalog`` for the extracted ``ids``: a missing, fuzzy or empty entry, a
    plural without every form, a placeholder lost or invented."""
    problems = []
    for key, where in ids.items():
        singular = key[0] if isinstance(key, tuple) else key
        entry = catalog.get(singular)
        if entry is None:
            problems.append(f"missing: {singular!r} ({where})")
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy: {singular!r}")
        forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if isinstance(key, tuple) and len(forms) != catalog.num_plurals:
            problems.append(f"plural forms: {singular!r} has {len(forms)}, {catalog.locale} needs {catalog.num_plurals}")
        wanted = placeholders(singular) | (placeholders(key[1]) if isinstance(key, tuple) else set())
        for form in forms:
            if not form or not form.strip():
                problems.append(f"empty: {singular!r}")
            elif placeholders(form) != wanted:
                problems.append(f"placeholders: {singular!r} → {form!r}")
    return problems


def load(language: str) -> Catalog:
    with i18n.catalogue_path(language).open("rb") as po:
        return read_po(po, locale=language)


def test_the_code_marks_texts_in_every_module_that_talks_to_users():
    ids = extracted_ids()
    where = {place.split(":")[0] for place in ids.values()}
    assert {"bot/commands.py", "bot/service.py", "bot/replies.py", "bot/telegram_adapter.py",
            "interpolation/probe.py"} <= where
    assert "Queued — position {position}" in ids


@pytest.mark.parametrize("language", [code for code in i18n.LANGUAGES if code != i18n.DEFAULT_LANGUAGE])
def test_every_catalogue_translates_every_marked_text(language):
    assert catalogue_problems(load(language), extracted_ids()) == []


def test_the_check_fails_on_a_missing_fuzzy_or_empty_entry_or_a_lost_placeholder():
    ids = extracted_ids()
    catalog = load("es")
    catalog.delete("Queued")
    catalog["Done"].flags.add("fuzzy")
    catalog["Loop is off."].string = ""
    catalog["This chat now uses {model}."].string = "Este chat usa ahora el modelo."
    problems = catalogue_problems(catalog, ids)
    assert any(p.startswith("missing: 'Queued' (bot/replies.py:") for p in problems)
    assert "fuzzy: 'Done'" in problems
    assert "empty: 'Loop is off.'" in problems
    assert any(p.startswith("placeholders: 'This chat now uses {model}.'") for p in problems)


@pytest.mark.parametrize(("code", "language"), [
    ("es", "es"), ("ru", "ru"), ("en", "en"), ("es-419", "es"), ("es_ES", "es"), ("RU", "ru"), ("ru-RU", "ru"),
    ("pt-BR", "en"), ("pt", "en"), ("zh-hans", "en"), ("xx", "en"), ("", "en"), (None, "en"),
])
def test_region_variants_fall_back_to_the_language_and_unknown_ones_to_english(code, language):
    assert i18n.resolve(code) == language


def test_texts_come_out_in_the_current_language_and_fuzzy_entries_are_not_used():
    with i18n.language("es-419"):
        assert i18n._("Queued") == "En cola"
        with i18n.language("ru"):
            assert i18n._("Queued") == "В очереди"
        assert i18n.current() == "es"
    assert i18n._("Queued") == "Queued"
    assert i18n.translate("Done", "ru-RU") == "Готово"
    assert i18n.translation("Done", "es-ES") == "Hecho"
    assert i18n.translation("Done", "en-US") is None  # Discord keeps its default (English) text
    assert i18n.translation("not a message id", "es") is None


@pytest.mark.parametrize("count, form", [(1, "ждёт"), (2, "ждут"), (5, "ждут"), (21, "ждёт"), (11, "ждут")])
def test_russian_counts_take_their_plural_form(count, form):
    with i18n.language("ru"):
        text = i18n.ngettext("You already have {count} video waiting in the queue (the limit is {limit}).",
                             "You already have {count} videos waiting in the queue (the limit is {limit}).", count)
    assert re.search(rf"\b{count} видео {form}\b", text.format(count=count, limit=3))


@pytest.mark.parametrize(("word", "language"), [("es", "es"), ("ES-419", "es"), ("Español", "es"), ("русский", "ru"),
                                                ("en", "en"), ("auto", None), ("off", None)])
def test_language_choices(word, language):
    assert parse_language(word) == language


def test_an_unknown_language_is_explained_in_the_current_language():
    with i18n.language("ru"), pytest.raises(CommandError, match="Выберите язык: /language en"):
        parse_language("klingon")


def a_result(**changes) -> Result:
    fields = dict(output_path=Path("out.mp4"), kind="mp4", input_fps=Fraction(25), output_fps=Fraction(50),
                  frames_in=25, frames_out=50, duration_s=1.0, size_bytes=1000, width=64, height=48, has_audio=True,
                  model="flow", model_display_name="optical flow", loop=False, scene_cuts=0, duplicates=0)
    return Result(**(fields | changes))


CAPTION_CASES = [
    dict(slowmo=Fraction(4), audio="slowed"), dict(slowmo=Fraction(5, 2), audio="dropped"),
    dict(slowmo=Fraction(2), audio="kept"), dict(slowmo=Fraction(3), audio="none"),
    dict(compare="side"), dict(scene_cuts=1), dict(scene_cuts=3, cut_mode="fade"), dict(duplicates=1),
    dict(scene_cuts=2, duplicates=5, compare="split", slowmo=Fraction(2), audio="slowed"),
]


@pytest.mark.parametrize("changes", CAPTION_CASES)
def test_the_captions_highlights_in_english_are_the_engines_own(changes):
    result = a_result(**changes)
    assert result_highlights(result) == result.highlights()


def test_the_captions_highlights_in_spanish_and_russian():
    result = a_result(slowmo=Fraction(4), audio="slowed", compare="stack", scene_cuts=5, duplicates=21)
    with i18n.language("es"):
        assert result_highlights(result) == [
            "cámara lenta 4×, audio ralentizado 4× sin cambiar el tono", "comparación antes/después (uno encima del otro)",
            "5 cambios de escena dejados como cortes secos, 21 fotogramas duplicados encontrados"]
    with i18n.language("ru"):
        assert result_highlights(result) == [
            "замедление 4×, звук замедлен (4×) с сохранением высоты тона", "сравнение «до и после» (друг над другом)",
            "5 смен сцен оставлено резкими склейками, найден 21 повторяющийся кадр"]
        assert result_caption(result).startswith("25 → 50 кадров/с, 1.0 с, оптический поток\n")


def test_the_engines_notes_and_refusals_stay_english_strings_and_are_said_in_the_users_language():
    note = Note("scaled to {width}×{height} to fit", width=640, height=360)
    error = LimitExceededError.said("{name}: the video is {seconds} s long (limit {limit} s)", name="clip.mp4",
                                    seconds="95", limit="60")
    assert note == "scaled to 640×360 to fit" and str(error) == "clip.mp4: the video is 95 s long (limit 60 s)"
    result = a_result(notes=(note, "a note without a template"))
    assert result_caption(result).endswith("\nscaled to 640×360 to fit\na note without a template")
    with i18n.language("ru"):
        assert result_caption(result).endswith("\nуменьшено до 640×360, чтобы поместиться\na note without a template")
        assert user_message(error, Path("/srv/data/inbox/clip.mp4")) == "Видео длится 95 с (лимит 60 с)"
    with i18n.language("es"):
        assert user_message(error, Path("/srv/data/inbox/clip.mp4")) == "El vídeo dura 95 s (límite 60 s)"


def test_storages_gave_up_sentence_is_said_again_in_the_users_language():
    assert stored_failure_text(GAVE_UP_MESSAGE % 2) == GAVE_UP_MESSAGE % 2
    assert stored_failure_text("Видео длится 95 с (лимит 60 с)") == "Видео длится 95 с (лимит 60 с)"  # already said
    with i18n.language("ru"):
        assert "обработка прерывалась 3 раза, и я сдался" in stored_failure_text(GAVE_UP_MESSAGE % 3)
    with i18n.language("es"):
        assert "el proceso se interrumpió 2 veces" in stored_failure_text(GAVE_UP_MESSAGE % 2)
