"""Languages: every text a user reads goes through the gettext catalogues in ``bot/locale``.

The English text is the message id (English needs no catalogue); Spanish and Russian live in
``bot/locale/<language>/LC_MESSAGES/smoothbot.po``. The ``.po`` files are the only source: they are
read with Babel at first use and compiled in memory, so there is no ``.mo`` build step and nothing
generated is kept in the repository (``make messages`` re-extracts the ids and updates the ``.po``).

Which language: a chat's ``/language`` choice (stored in its settings), else the user's app language
(Telegram's ``from_user.language_code``, Discord's ``interaction.locale``), region variants falling
back to the language (``es-419`` → ``es``, ``pt-BR`` → ``pt`` → English), unknown ones to English.

Texts are written ``_("…")`` where they are made; the language is the current context's
(:func:`use` / :func:`language`): adapters set it once per update, the worker once per job, so the
platform-neutral code (commands, service, replies) needs no language parameter. Texts kept in
module constants are marked ``N_("…")`` and translated where they are used, ``_(CONSTANT)``.

For Discord's ``app_commands.Translator``: :func:`translation` (None when English or not translated).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext
import io
from collections.abc import Iterator
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DOMAIN = "smoothbot"
LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LANGUAGE = "en"
#: The languages with a catalogue (and English), each in its own name, as /language offers them.
LANGUAGE_NAMES = {"en": "English", "es": "Español", "ru": "Русский"}
LANGUAGES = tuple(LANGUAGE_NAMES)

_current: contextvars.ContextVar[str] = contextvars.ContextVar("smoothbot_language", default=DEFAULT_LANGUAGE)


def N_(message: str) -> str:
    """Marks a text for extraction without translating it (module constants; translate at use)."""
    return message


def known_language(code: str | None) -> str | None:
    """The catalogue language for an IETF/POSIX code ("es-419", "pt_BR", "RU"), or None when there is none:
    the code itself, then each shorter prefix (es-419 → es)."""
    if not code:
        return None
    candidate = str(code).strip().replace("_", "-").lower()
    while candidate:
        if candidate in LANGUAGE_NAMES:
            return candidate
        candidate = candidate.rpartition("-")[0]
    return None


def resolve(code: str | None) -> str:
    """The language to speak for an app's language code: the closest catalogue, else English."""
    return known_language(code) or DEFAULT_LANGUAGE


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language`` (English: the ids themselves). Fuzzy entries are not used."""
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def current() -> str:
    """The language of the current update or job."""
    return _current.get()


def use(code: str | None) -> str:
    """Speak ``code``'s language (resolved) in this task from now on; returns the language used."""
    language = resolve(code)
    _current.set(language)
    return language


@contextlib.contextmanager
def language(code: str | None) -> Iterator[str]:
    """Speak ``code``'s language (resolved) inside the block, then the previous one again."""
    token = _current.set(resolve(code))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _(message: str) -> str:
    """``message`` in the current language."""
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form of ``singular``/``plural`` for ``count`` in the current language (Russian has three)."""
    return translations(_current.get()).ngettext(singular, plural, count)


def translate(message: str, code: str | None) -> str:
    """``message`` in the language of ``code`` (resolved; English when unknown)."""
    return translations(resolve(code)).gettext(message)


def translation(message: str, code: str | None) -> str | None:
    """``message`` translated for ``code``, or None when that is English or the catalogue lacks it
    (what Discord's ``app_commands.Translator.translate`` returns to keep the default)."""
    language = resolve(code)
    if language == DEFAULT_LANGUAGE:
        return None
    text = translations(language).gettext(message)
    return text if text != message else None
