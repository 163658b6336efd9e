"""Platform-neutral commands: what ``/fps 60 /loop /gif`` means, and the texts the bot says.

Adapters (Telegram, Discord, console) only translate their platform's events into these calls.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from interpolation.options import (COMPARE_MODES, CUT_MODES, MAX_SLOWMO, MIN_SLOWMO, QUALITY_MODES, CompareMode,
                                   CutMode)

from .config import Settings
from .i18n import LANGUAGE_NAMES, N_, _, known_language

OutputChoice = Literal["mp4", "gif"]
#: How /settings and captions name the comparison layouts and cut modes.
#: They are message ids: show them as ``_(COMPARE_DISPLAY[mode])``.
COMPARE_DISPLAY = {"split": N_("moving split"), "side": N_("side by side"), "stack": N_("stacked")}
CUT_MODE_DISPLAY = {"cut": N_("hard cuts"), "fade": N_("cross-fades at cuts")}
#: How /quality's choices are offered (Discord's menu). Only RIFE has a "best" mode; other models ignore it.
QUALITY_DISPLAY = {"fast": N_("fast (one pass)"), "best": N_("best (RIFE: sharper, about 4× slower)")}
#: The model that has a "best" quality mode (an average of four views of each pair).
BEST_QUALITY_MODEL = "rife"
#: "/compare" alone asks for the layout people share most: one picture with a moving split line.
DEFAULT_COMPARE: CompareMode = "split"
#: Words that switch an optional setting off again ("/slowmo off", "/compare off").
OFF_WORDS = ("off", "no", "none", "0", "1", "1x")
MODEL_DISPLAY = {"rife": "RIFE", "flow": N_("optical flow"), "blend": N_("blend"), "dain": "DAIN"}
#: Lowest target rate accepted: below it nothing looks smooth.
MIN_TARGET_FPS = 1.0


class CommandError(ValueError):
    """A command the user typed cannot be applied; ``str()`` says why and what to type instead."""


@dataclass(frozen=True)
class JobSettings:
    """What to do with a video: a chat's defaults, possibly overridden by the video's caption."""

    fps: float | None = None  # None: twice the input rate
    loop: bool = False
    output: OutputChoice = "mp4"
    model: str = "rife"
    slowmo: float | None = None  # None: real time
    compare: CompareMode | None = None  # None: the smoothed video alone
    cut_mode: CutMode = "cut"
    quality: str = "fast"  # "best": RIFE averages four views of each pair

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any], default_model: str = "rife") -> JobSettings:
        """Settings from a stored JSON object: rows written before a setting existed get its default,
        and keys this version does not know (written by a newer one) are ignored."""
        known = {f.name: stored[f.name] for f in fields(cls) if f.name in stored}
        known.setdefault("model", default_model)
        return cls(**known)

    def describe(self) -> str:
        """"60 fps, loop, GIF, RIFE" — one line for /settings and replies (extras only when set)."""
        parts = [_("{fps} fps").format(fps=format_fps(self.fps)) if self.fps else _("2× the frame rate")]
        parts.append(_("loop on") if self.loop else _("loop off"))
        parts.append(self.output.upper())
        parts.append(model_name(self.model))
        if self.slowmo:
            parts.append(_("{factor}× slow motion").format(factor=format_fps(self.slowmo)))
        if self.compare:
            parts.append(_("before/after {layout}").format(layout=_(COMPARE_DISPLAY[self.compare])))
        if self.cut_mode != "cut":
            parts.append(_(CUT_MODE_DISPLAY[self.cut_mode]))
        if self.quality == "best":
            # Stored even when another model is chosen (it applies again with RIFE), so say so.
            parts.append(_("best quality") if self.model == BEST_QUALITY_MODEL
                         else _("best quality (for {model} only)").format(model=model_name(BEST_QUALITY_MODEL)))
        return ", ".join(parts)


#: Longest piece of the user's own text quoted back in an answer.
MAX_QUOTED_CHARS = 40


def quoted(text: str) -> str:
    """The user's word, as answers quote it: “…”, one line, shortened. Sent as plain text only
    (never with a parse mode) and, on Discord, with no mentions allowed."""
    word = " ".join(text.split())
    if len(word) > MAX_QUOTED_CHARS:
        word = word[:MAX_QUOTED_CHARS - 1] + "…"
    return f"“{word}”"


def model_name(model: str) -> str:
    """How a model is named to users, in the current language ("optical flow", "RIFE")."""
    return _(MODEL_DISPLAY[model]) if model in MODEL_DISPLAY else model


def format_fps(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def available_models(settings: Settings) -> tuple[str, ...]:
    """Models a chat may choose; DAIN only when its checkpoint is configured."""
    return ("rife", "flow", "blend") + (("dain",) if settings.dain_weights else ())


def parse_fps(text: str | None, settings: Settings) -> float:
    if text is None or not text.strip():
        raise CommandError(_("Tell me the frame rate, e.g. /fps 60 (between {low} and {high}).").format(
            low=f"{MIN_TARGET_FPS:g}", high=f"{settings.max_fps:g}"))
    try:
        value = float(text.strip().lower().removesuffix("fps").replace(",", "."))
    except ValueError:
        raise CommandError(_("{word} is not a frame rate. Try /fps 60.").format(word=quoted(text))) from None
    if not MIN_TARGET_FPS <= value <= settings.max_fps:
        raise CommandError(_("The frame rate must be between {low} and {high} fps.").format(
            low=f"{MIN_TARGET_FPS:g}", high=f"{settings.max_fps:g}"))
    return value


def parse_model(text: str | None, settings: Settings) -> str:
    choices = available_models(settings)
    name = (text or "").strip().lower()
    if name not in choices:
        if "dain" in choices:
            raise CommandError(_("Choose a model: {models}.").format(models=", ".join(choices)))
        raise CommandError(_("Choose a model: {models} (DAIN needs its checkpoint configured by the bot's owner).")
                           .format(models=", ".join(choices)))
    return name


def parse_slowmo(text: str | None) -> float | None:
    """"4", "2.5x", "2,5" → the factor; "off" → None (real time)."""
    word = (text or "").strip().lower()
    if not word:
        raise CommandError(_("How much slower? e.g. /slowmo 4 (from {low}× to {high}×, or /slowmo off).").format(
            low=f"{MIN_SLOWMO:g}", high=f"{MAX_SLOWMO:g}"))
    if word in OFF_WORDS:
        return None
    try:
        value = float(word.removesuffix("x").removesuffix("×").replace(",", "."))
    except ValueError:
        raise CommandError(_("{word} is not a slow-motion factor. Try /slowmo 4.").format(word=quoted(text))) from None
    if not MIN_SLOWMO <= value <= MAX_SLOWMO:
        raise CommandError(_("Slow motion goes from {low}× to {high}×, e.g. /slowmo 4 (or /slowmo off).").format(
            low=f"{MIN_SLOWMO:g}", high=f"{MAX_SLOWMO:g}"))
    return value


def parse_compare(text: str | None) -> CompareMode | None:
    """"/compare" alone → the split layout; "side", "stack", "split" → that layout; "off" → None."""
    word = (text or "").strip().lower()
    if not word:
        return DEFAULT_COMPARE
    if word in OFF_WORDS:
        return None
    if word not in COMPARE_MODES:
        raise CommandError(_("Choose a comparison: {layouts} (or /compare off).").format(layouts=", ".join(COMPARE_MODES)))
    return word  # type: ignore[return-value]


def parse_cut_mode(text: str | None) -> CutMode:
    word = (text or "").strip().lower()
    word = "cut" if word == "hard" else word
    if word not in CUT_MODES:
        raise CommandError(_("Choose what happens at scene cuts: /cuts cut (a hard cut) or /cuts fade (a short cross-fade)."))
    return word  # type: ignore[return-value]


def parse_quality(text: str | None) -> str:
    word = (text or "").strip().lower()
    if word not in QUALITY_MODES:
        raise CommandError(_("Choose the quality: /quality fast (one pass, the default) or /quality best "
                             "(RIFE only: sharper, about 4× slower)."))
    return word


#: Words for "no fixed language: follow each person's app" (/language auto).
AUTO_LANGUAGE_WORDS = ("auto", "off", "default", "app")


def parse_language(text: str | None) -> str | None:
    """"es", "es-419", "Español", "ru" → that catalogue's language; "auto" → None (each person's app language)."""
    word = (text or "").strip().lower()
    if word in AUTO_LANGUAGE_WORDS:
        return None
    by_name = {name.lower(): code for code, name in LANGUAGE_NAMES.items()}
    language = by_name.get(word) or known_language(word)
    if language is None:
        choices = ", ".join(f"/language {code} ({name})" for code, name in LANGUAGE_NAMES.items())
        raise CommandError(_("Choose a language: {choices}, or /language auto for each person's app language.")
                           .format(choices=choices))
    return language


#: "/fps60" is /fps with 60, but "/mp4" is a name of its own (not /mp with 4).
COMMAND_TOKEN = re.compile(r"^/(?P<name>(?i:mp4)(?!\w)|[a-zA-Z]+)(?:@\w+)?(?:[=:]?(?P<value>\S+))?$")


def parse_caption(caption: str | None, base: JobSettings, settings: Settings) -> JobSettings:
    """Apply the options written in a video's caption (``/fps 60 /loop /gif``) to ``base``.

    Words that are not commands are ignored, so "my cat /fps 60" works.
    """
    tokens = (caption or "").split()
    result = base
    position = 0
    while position < len(tokens):
        match = COMMAND_TOKEN.match(tokens[position])
        position += 1
        if not match:
            continue
        name, value = match.group("name").lower(), match.group("value")
        takes_value = name in ("fps", "model", "slowmo", "cuts", "quality")
        if takes_value and value is None and position < len(tokens) and not tokens[position].startswith("/"):
            value = tokens[position]
            position += 1
        # "/compare" may stand alone: the next word is its layout only when it names one.
        if (name == "compare" and value is None and position < len(tokens)
                and tokens[position].lower() in COMPARE_MODES + OFF_WORDS):
            value = tokens[position]
            position += 1
        if name == "fps":
            result = replace(result, fps=parse_fps(value, settings))
        elif name == "loop":
            result = replace(result, loop=True)
        elif name == "noloop":
            result = replace(result, loop=False)
        elif name in ("gif", "mp4"):
            result = replace(result, output=name)
        elif name == "model":
            result = replace(result, model=parse_model(value, settings))
        elif name == "slowmo":
            result = replace(result, slowmo=parse_slowmo(value))
        elif name == "compare":
            result = replace(result, compare=parse_compare(value))
        elif name == "cuts":
            result = replace(result, cut_mode=parse_cut_mode(value))
        elif name == "quality":
            result = replace(result, quality=parse_quality(value))
        else:
            raise CommandError(_("I don't know {word} in a caption. Use /fps N, /slowmo K, /loop, "
                                 "/gif, /mp4, /compare, /cuts fade, /quality best or /model NAME.")
                               .format(word=quoted("/" + name)))
    return result


def start_text() -> str:
    return _("Hi! Send me a video or GIF and I'll make it smooth by creating in-between frames "
             "with AI frame interpolation.\nTry a caption like “/fps 60 /loop”. /help shows everything.")


def help_text(settings: Settings) -> str:
    models = ", ".join(available_models(settings))
    links = [_("You can also send a link to a video instead of the file, e.g. “https://example.com/clip.mp4 /fps 60”.")]
    return "\n".join([
        _("Send a video (or GIF) and I reply with a smooth version."),
        *(links if settings.links_enabled else []),
        "",
        _("Options in the caption apply to that video only, e.g. “/fps 60 /loop /gif”."),
        _("Commands set this chat's defaults:"),
        _("/fps N — target frame rate (default: twice the input)"),
        _("/loop — toggle seamless looping (last frame flows into the first)"),
        _("/gif, /mp4 — reply with a GIF or an MP4"),
        _("/slowmo K — slow motion, {low}× to {high}× (e.g. 2.5); every new frame is "
          "interpolated and the sound is slowed with its pitch kept (/slowmo off to stop)").format(
            low=f"{MIN_SLOWMO:g}", high=f"{MAX_SLOWMO:g}"),
        _("/compare [split|side|stack] — a before/after video: original and smoothed together (/compare off to stop)"),
        _("/cuts cut|fade — at scene cuts: a hard cut (default) or a short cross-fade"),
        _("/quality fast|best — fast is the default; /quality best — sharper, about 4× slower (RIFE)"),
        _("/model NAME — {models}").format(models=models),
        _("/language [en|es|ru|auto] — the bot's language in this chat (auto: each person's app language)"),
        _("/settings — show this chat's settings"),
        _("/status — your jobs and their places in the queue"),
        _("/cancel — cancel your waiting or running job"),
        "",
        _("Limits: videos up to {seconds} s, {megapixels} megapixels, at most {count} waiting per person. "
          "GIFs are capped at 50 fps.").format(seconds=f"{settings.max_input_duration_s:g}",
                                               megapixels=f"{settings.max_input_pixels / 1e6:.1f}",
                                               count=settings.max_queued_per_user),
        _("Examples: “/fps 60” for smooth motion, “/fps 30 /loop /gif” for a looping GIF, "
          "“/slowmo 4 /fps 60” for slow motion, “/compare side” to show the difference."),
    ])
