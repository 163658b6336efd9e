"""Discord's application commands: the slash commands, ``/smooth`` with an attachment, and the
"Smooth this video" message context menu (Apps → on any message with a video or GIF).

The commands only turn Discord's typed options into the same calls the other platforms make
(:class:`~bot.service.ChatService`); the adapter answers them. Every command may be used where the
app is installed for a server or by a user (user-installed apps work in DMs and in servers without
the bot). Names and descriptions go through :class:`CommandTranslator` when the tree is synced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from interpolation.options import MAX_SLOWMO, MIN_SLOWMO

from . import i18n
from .commands import (COMPARE_DISPLAY, CUT_MODE_DISPLAY, MODEL_DISPLAY, QUALITY_DISPLAY, available_models,
                       format_fps, help_text, start_text)
from .i18n import N_, _

if TYPE_CHECKING:
    from .discord_adapter import DiscordAdapter

#: Where the commands may be installed and used (Discord's integration types and interaction contexts).
INSTALLS = app_commands.AppInstallationType(guild=True, user=True)
CONTEXTS = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
#: The context menu's name, as Discord shows it under Apps.
SMOOTH_MENU_NAME = N_("Smooth this video")
#: The frame rates /smooth offers (a chat's default from /fps may be any rate).
SMOOTH_FPS_CHOICES = (24.0, 30.0, 48.0, 50.0, 60.0, 90.0, 120.0)
SMOOTH_SLOWMO_CHOICES = tuple(factor for factor in (2.0, 3.0, 4.0, 6.0, 8.0) if MIN_SLOWMO <= factor <= MAX_SLOWMO)

HOW_TO_TEXT = N_("On Discord: use /smooth with the video attached, or open the menu of any message with a video "
                 "(Apps → {menu}). You can also send the video to me in a direct message, or mention me in a "
                 "server with videos attached; options go in the same message after a word, e.g. “smooth /fps 60 "
                 "/loop” (a message that starts with / opens Discord's command menu instead).")


def how_to_text() -> str:
    """How to send a video on Discord, in the current language."""
    return _(HOW_TO_TEXT).format(menu=_(SMOOTH_MENU_NAME))


#: Looks up a text for a Discord locale ("es-ES"): the translation, or None to keep the English text.
Lookup = Callable[[str, str], str | None]


def english_only(message: str, locale: str) -> str | None:
    return None


class CommandTranslator(app_commands.Translator):
    """Command names, descriptions and choices in the user's Discord language, from ``lookup``.

    Without a catalogue every text stays English (Discord shows the default)."""

    def __init__(self, lookup: Lookup = english_only) -> None:
        super().__init__()
        self.lookup = lookup

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        return self.lookup(string.message, locale.value)


def smooth_caption(fps: float | None, loop: bool | None, gif: bool | None, slowmo: float | None,
                   compare: str | None, quality: str | None) -> str:
    """/smooth's options as the caption words every platform understands (``/fps 60 /loop``)."""
    words = []
    if fps is not None:
        words.append(f"/fps {format_fps(fps)}")
    if loop is not None:
        words.append("/loop" if loop else "/noloop")
    if gif is not None:
        words.append("/gif" if gif else "/mp4")
    if slowmo is not None:
        words.append(f"/slowmo {slowmo:g}")
    if compare is not None:
        words.append(f"/compare {compare}")
    if quality is not None:
        words.append(f"/quality {quality}")
    return " ".join(words)


def register(adapter: DiscordAdapter) -> None:
    """Add every command to the adapter's tree."""
    tree = adapter.tree
    service = adapter.service
    platform = adapter.platform
    command = tree.command

    @command(name="smooth", description=N_("Smooth a video or GIF: attach it, choose options if you like"))
    @app_commands.describe(video=N_("The video or GIF to smooth"), fps=N_("Target frame rate (default: twice the input)"),
                           loop=N_("Make it loop seamlessly"), gif=N_("Send the result as a GIF"),
                           slowmo=N_("Slow motion: how many times slower"),
                           compare=N_("Show original and smoothed together"), quality=N_("fast (default) or best"))
    @app_commands.choices(
        fps=[app_commands.Choice(name=f"{format_fps(rate)} fps", value=rate) for rate in SMOOTH_FPS_CHOICES],
        slowmo=[app_commands.Choice(name=f"{factor:g}×", value=factor) for factor in SMOOTH_SLOWMO_CHOICES],
        compare=[app_commands.Choice(name=shown, value=mode) for mode, shown in COMPARE_DISPLAY.items()],
        quality=[app_commands.Choice(name=shown, value=level) for level, shown in QUALITY_DISPLAY.items()])
    async def smooth(interaction: discord.Interaction, video: discord.Attachment, fps: float | None = None,
                     loop: bool | None = None, gif: bool | None = None, slowmo: float | None = None,
                     compare: str | None = None, quality: str | None = None) -> None:
        await adapter.smooth_interaction(interaction, [video], smooth_caption(fps, loop, gif, slowmo, compare, quality),
                                         target=None)

    async def smooth_message(interaction: discord.Interaction, message: discord.Message) -> None:
        await adapter.smooth_interaction(interaction, message.attachments, "", target=message)

    tree.add_command(app_commands.ContextMenu(name=SMOOTH_MENU_NAME, callback=smooth_message))

    @command(name="start", description=N_("What this bot does"))
    async def start(interaction: discord.Interaction) -> None:
        await adapter.answer(interaction, start_text() + "\n" + how_to_text(), ephemeral=True)

    @command(name="help", description=N_("How to use it, limits and examples"))
    async def help_(interaction: discord.Interaction) -> None:
        await adapter.answer(interaction, help_text(adapter.settings) + "\n\n" + how_to_text(), ephemeral=True)

    @command(name="fps", description=N_("Set this channel's target frame rate"))
    @app_commands.describe(rate=N_("Frames per second, e.g. 60; leave empty for twice the input rate"))
    async def fps(interaction: discord.Interaction, rate: float | None = None) -> None:
        chat = interaction.channel_id
        await adapter.answer(interaction, lambda: service.clear_fps(platform, chat) if rate is None
                             else service.set_fps(platform, chat, str(rate)))

    @command(name="loop", description=N_("Toggle seamless looping"))
    async def loop(interaction: discord.Interaction) -> None:
        await adapter.answer(interaction, lambda: service.toggle_loop(platform, interaction.channel_id))

    @command(name="gif", description=N_("Reply with GIF animations"))
    async def gif(interaction: discord.Interaction) -> None:
        await adapter.answer(interaction, lambda: service.set_output(platform, interaction.channel_id, "gif"))

    @command(name="mp4", description=N_("Reply with MP4 videos"))
    async def mp4(interaction: discord.Interaction) -> None:
        await adapter.answer(interaction, lambda: service.set_output(platform, interaction.channel_id, "mp4"))

    @command(name="slowmo", description=N_("Slow motion: every new frame interpolated, sound slowed"))
    @app_commands.describe(factor=N_("How many times slower, e.g. 4; leave empty to switch slow motion off"))
    async def slowmo(interaction: discord.Interaction, factor: float | None = None) -> None:
        argument = "off" if factor is None else str(factor)
        await adapter.answer(interaction, lambda: service.set_slowmo(platform, interaction.channel_id, argument))

    @command(name="compare", description=N_("Before/after video: original and smoothed together"))
    @app_commands.describe(layout=N_("How to show both (default: a moving split line), or off"))
    @app_commands.choices(layout=[app_commands.Choice(name=shown, value=mode)
                                  for mode, shown in COMPARE_DISPLAY.items()]
                          + [app_commands.Choice(name=N_("off"), value="off")])
    async def compare(interaction: discord.Interaction, layout: str | None = None) -> None:
        await adapter.answer(interaction, lambda: service.set_compare(platform, interaction.channel_id, layout))

    @command(name="cuts", description=N_("What happens at scene cuts"))
    @app_commands.describe(mode=N_("A hard cut (default) or a short cross-fade"))
    @app_commands.choices(mode=[app_commands.Choice(name=shown, value=mode)
                                for mode, shown in CUT_MODE_DISPLAY.items()])
    async def cuts(interaction: discord.Interaction, mode: str) -> None:
        await adapter.answer(interaction, lambda: service.set_cut_mode(platform, interaction.channel_id, mode))

    @command(name="quality", description=N_("Fast (one pass) or best (RIFE: sharper, about 4× slower)"))
    @app_commands.describe(level=N_("fast (default) or best"))
    @app_commands.choices(level=[app_commands.Choice(name=shown, value=level)
                                 for level, shown in QUALITY_DISPLAY.items()])
    async def quality(interaction: discord.Interaction, level: str) -> None:
        await adapter.answer(interaction, lambda: service.set_quality(platform, interaction.channel_id, level))

    @command(name="model", description=N_("Choose the interpolation model"))
    @app_commands.describe(name=N_("The model; RIFE looks best, blend is fastest"))
    @app_commands.choices(name=[app_commands.Choice(name=MODEL_DISPLAY.get(model, model), value=model)
                                for model in available_models(adapter.settings)])
    async def model(interaction: discord.Interaction, name: str) -> None:
        await adapter.answer(interaction, lambda: service.set_model(platform, interaction.channel_id, name))

    @command(name="settings", description=N_("Show and change this channel's settings"))
    async def settings(interaction: discord.Interaction) -> None:
        await adapter.show_settings(interaction)

    @command(name="status", description=N_("Your videos and their places in the queue"))
    async def status(interaction: discord.Interaction) -> None:
        await adapter.answer(interaction, lambda: service.status_text(
            platform, interaction.channel_id, interaction.user.id), ephemeral=True)

    @command(name="cancel", description=N_("Cancel your waiting or running video"))
    async def cancel(interaction: discord.Interaction) -> None:
        await adapter.answer(interaction, lambda: service.cancel(
            platform, interaction.channel_id, interaction.user.id), ephemeral=True)

    @command(name="language", description=N_("The bot's language: English, Español, Русский"))
    @app_commands.describe(language=N_("Leave empty to see the language in use"))
    @app_commands.choices(language=[app_commands.Choice(name=name, value=code)
                                    for code, name in i18n.LANGUAGE_NAMES.items()]
                          + [app_commands.Choice(name=N_("Each person's app language"), value="auto")])
    async def language(interaction: discord.Interaction, language: str | None = None) -> None:
        await adapter.answer(interaction, lambda: service.set_language(
            platform, interaction.channel_id, language, interaction.locale.value))
