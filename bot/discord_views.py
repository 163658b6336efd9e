"""Discord components: the buttons on a job's status message and the /settings menu.

The status buttons are :class:`discord.ui.DynamicItem` s carrying the job id in their custom id
(``smooth:cancel:42``), registered with the client at start, so a button on a message posted before
a restart still works after it. What a press does is the adapter's (:class:`JobControls`); only the
job's owner may press, which the adapter checks against the stored job.

The settings menu is a plain :class:`discord.ui.View` on an ephemeral message (only the person who
asked sees it): select menus and buttons that call the same :class:`~bot.service.ChatService`
setters as the slash commands, then redraw the menu with the chat's new settings.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Protocol

import discord

from interpolation.options import MAX_SLOWMO, MIN_SLOWMO

from .commands import COMPARE_DISPLAY, MODEL_DISPLAY, JobSettings, format_fps
from . import i18n
from .i18n import _
from .service import ChatService

#: The frame rates and slow-motion factors the settings menu offers (the slash commands take any).
FPS_CHOICES = (24.0, 30.0, 48.0, 60.0, 120.0)
SLOWMO_CHOICES = tuple(factor for factor in (2.0, 4.0, 8.0) if MIN_SLOWMO <= factor <= MAX_SLOWMO)
#: How long an open settings menu answers (it is ephemeral: /settings opens a new one).
SETTINGS_MENU_TIMEOUT_S = 600.0


class JobControls(Protocol):
    """What the status buttons do (the Discord adapter implements it)."""

    async def cancel_pressed(self, interaction: discord.Interaction, job_id: int) -> None: ...

    async def position_pressed(self, interaction: discord.Interaction, job_id: int) -> None: ...


class SmoothClient(discord.Client):
    """discord.py's client, knowing who answers the status buttons (they are built by discord.py)."""

    job_controls: JobControls | None = None


def controls_of(interaction: discord.Interaction) -> JobControls:
    controls = getattr(interaction.client, "job_controls", None)
    if controls is None:
        raise RuntimeError("the Discord client has no job controls")
    return controls


class CancelButton(discord.ui.DynamicItem[discord.ui.Button], template=r"smooth:cancel:(?P<job>[0-9]+)"):
    def __init__(self, job_id: int) -> None:
        super().__init__(discord.ui.Button(label=_("Cancel"), style=discord.ButtonStyle.danger,
                                           custom_id=f"smooth:cancel:{job_id}"))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item,
                             match: re.Match[str], /) -> CancelButton:
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await controls_of(interaction).cancel_pressed(interaction, self.job_id)


class PositionButton(discord.ui.DynamicItem[discord.ui.Button], template=r"smooth:where:(?P<job>[0-9]+)"):
    """Shows the place in the queue; pressing it asks for the place now (answered ephemerally)."""

    def __init__(self, job_id: int, position: int | None = None) -> None:
        label = _("Position {position}").format(position=position) if position else _("Position")
        super().__init__(discord.ui.Button(label=label, style=discord.ButtonStyle.secondary,
                                           custom_id=f"smooth:where:{job_id}"))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item,
                             match: re.Match[str], /) -> PositionButton:
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await controls_of(interaction).position_pressed(interaction, self.job_id)


#: The persistent items to register with the client at start.
DYNAMIC_ITEMS = (CancelButton, PositionButton)


def status_view(job_id: int, position: int | None) -> discord.ui.View:
    """Cancel, and while the job waits its place.

    The view is only the buttons' layout: it is stopped before it is sent, so discord.py does not keep
    it (a kept view that times out, as ephemeral ones do after 15 minutes, would unregister the
    dynamic items for every message). Presses are routed by the items registered at start."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    if position is not None:
        view.add_item(PositionButton(job_id, position))
    view.stop()
    return view


# --- the settings menu ---------------------------------------------------------------------------

Setter = Callable[[str], Awaitable[str]]


class SettingsMenu(discord.ui.View):
    """The chat's settings as select menus (frame rate, model, slow motion, comparison) and toggles."""

    def __init__(self, service: ChatService, platform: str, chat_id: int, current: JobSettings,
                 models: list[str]) -> None:
        super().__init__(timeout=SETTINGS_MENU_TIMEOUT_S)
        self.service, self.platform, self.chat_id = service, platform, chat_id
        fps_now = current.fps
        self.add_select("fps", _("Frame rate"), [(_("2× the frame rate"), "double", fps_now is None)]
                        + [(f"{format_fps(fps)} fps", format_fps(fps), fps_now == fps) for fps in FPS_CHOICES],
                        self.set_fps)
        self.add_select("model", _("Model"), [(_(MODEL_DISPLAY.get(model, model)), model, current.model == model)
                                           for model in models], self.set_model)
        self.add_select("slowmo", _("Slow motion"), [(_("Real speed"), "off", current.slowmo is None)]
                        + [(_("{factor}× slower").format(factor=f"{factor:g}"), f"{factor:g}", current.slowmo == factor)
                           for factor in SLOWMO_CHOICES], self.set_slowmo)
        self.add_select("compare", _("Before/after"), [(_("Smoothed video alone"), "off", current.compare is None)]
                        + [(_("Before/after: {layout}").format(layout=_(shown)), mode, current.compare == mode)
                           for mode, shown in COMPARE_DISPLAY.items()], self.set_compare)
        self.add_toggle("loop", _("Loop: on") if current.loop else _("Loop: off"), current.loop, self.toggle_loop)
        other = "mp4" if current.output == "gif" else "gif"
        self.add_toggle("output", _("Output: {kind}").format(kind=current.output.upper()), current.output == "gif",
                        lambda: self.service.set_output(platform, chat_id, other))
        best = current.quality == "best"
        self.add_toggle("quality", _("Quality: best") if best else _("Quality: fast"), best,
                        lambda: self.service.set_quality(platform, chat_id, "fast" if best else "best"))
        fade = current.cut_mode == "fade"
        self.add_toggle("cuts", _("Cuts: cross-fade") if fade else _("Cuts: hard"), fade,
                        lambda: self.service.set_cut_mode(platform, chat_id, "cut" if fade else "fade"))

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Answers in the channel's /language, else the user's Discord language."""
        i18n.use(await self.service.language_for(self.platform, self.chat_id, interaction.locale.value))
        return True

    def add_select(self, name: str, placeholder: str, options: list[tuple[str, str, bool]], setter: Setter) -> None:
        select: discord.ui.Select[SettingsMenu] = discord.ui.Select(
            custom_id=f"settings:{name}", placeholder=placeholder,
            options=[discord.SelectOption(label=label, value=value, default=chosen)
                     for label, value, chosen in options])

        async def chosen(interaction: discord.Interaction) -> None:
            await self.changed(interaction, await setter(select.values[0]))

        select.callback = chosen  # type: ignore[method-assign]
        self.add_item(select)

    def add_toggle(self, name: str, label: str, on: bool, toggle: Callable[[], Awaitable[str]]) -> None:
        button: discord.ui.Button[SettingsMenu] = discord.ui.Button(
            custom_id=f"settings:{name}", label=label, row=4,
            style=discord.ButtonStyle.success if on else discord.ButtonStyle.secondary)

        async def pressed(interaction: discord.Interaction) -> None:
            await self.changed(interaction, await toggle())

        button.callback = pressed  # type: ignore[method-assign]
        self.add_item(button)

    async def set_fps(self, value: str) -> str:
        return await (self.service.clear_fps(self.platform, self.chat_id) if value == "double"
                      else self.service.set_fps(self.platform, self.chat_id, value))

    async def set_model(self, value: str) -> str:
        return await self.service.set_model(self.platform, self.chat_id, value)

    async def set_slowmo(self, value: str) -> str:
        return await self.service.set_slowmo(self.platform, self.chat_id, value)

    async def set_compare(self, value: str) -> str:
        return await self.service.set_compare(self.platform, self.chat_id, value)

    async def toggle_loop(self) -> str:
        return await self.service.toggle_loop(self.platform, self.chat_id)

    async def changed(self, interaction: discord.Interaction, answer: str) -> None:
        """Redraw the menu with the stored settings, and say what changed."""
        menu = await settings_menu(self.service, self.platform, self.chat_id,
                                   [option.value for option in self.model_options()])
        self.stop()
        await interaction.response.edit_message(content=await menu_text(self.service, self.platform, self.chat_id,
                                                                        answer), view=menu)

    def model_options(self) -> list[discord.SelectOption]:
        for item in self.children:
            if isinstance(item, discord.ui.Select) and item.custom_id == "settings:model":
                return item.options
        return []


async def menu_text(service: ChatService, platform: str, chat_id: int, answer: str | None = None) -> str:
    text = await service.settings_text(platform, chat_id)
    return text if answer is None else f"{answer}\n{text}"


async def settings_menu(service: ChatService, platform: str, chat_id: int, models: list[str]) -> SettingsMenu:
    return SettingsMenu(service, platform, chat_id, await service.chat_settings(platform, chat_id), models)
