"""Discord, through discord.py: thin handlers that parse, store the attachment, enqueue, reply.

Videos arrive as message attachments; text beside the attachment (``smooth /fps 60 /loop``)
applies to that video only, like a Telegram caption. Chat defaults are set with slash commands.
In servers the bot answers messages that mention it, in direct messages every message: that is
also what Discord delivers to a bot without the privileged message-content intent, so none is
needed. All decisions live in :class:`~bot.service.ChatService`; all sending for the worker lives
in the ChatReplier methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import discord
from discord import app_commands

from interpolation.options import MAX_SLOWMO, MIN_SLOWMO

from .commands import (COMPARE_DISPLAY, CUT_MODE_DISPLAY, MODEL_DISPLAY, QUALITY_DISPLAY, available_models, help_text,
                       start_text)
from .config import Settings
from .platform import DeliveryError, RecipientGoneError, RetryAfterError, TooLargeError, TransientError
from .replies import Delivery, JobView
from .service import PRIVATE_CHAT_TEXT, Accepted, ChatService

log = logging.getLogger(__name__)

PLATFORM = "discord"
#: Guilds (channel cache), and message events from servers and DMs. No privileged intent.
INTENTS = discord.Intents(guilds=True, guild_messages=True, dm_messages=True)
#: Longest rate-limit wait discord.py sits out itself (its bucket pacing; 30 s is the least it allows);
#: a longer one is raised as RetryAfterError for the worker to wait out.
MAX_RATELIMIT_WAIT_S = 30.0
#: Discord answers a slash command with "did not respond" after 3 s; a command still working after
#: this long is deferred ("thinking…") and its answer edited in when ready.
DEFER_AFTER_S = 2.0
#: Discord's JSON error codes: "Unknown Message" (a deleted status message), "Request entity too large".
UNKNOWN_MESSAGE = 10008
FILE_TOO_LARGE = 40005
#: Wait asked for by a 429 that says nothing more (seconds).
DEFAULT_RETRY_AFTER_S = 60.0
#: Discord's limit on a message's text.
MAX_CONTENT_CHARS = 2000
#: What counts as a video when Discord gives no content type (it sniffs by extension itself).
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".gif"})

HOW_TO_TEXT = ("On Discord: send the video to me in a direct message, or mention me in a server with the "
               "video attached. Options go in the same message after a word, e.g. “smooth /fps 60 /loop” "
               "(a message that starts with / opens Discord's command menu instead).")
NOT_A_VIDEO_TEXT = ("That attachment is not a video or GIF. Send a video file "
                    f"({', '.join(sorted(suffix[1:].upper() for suffix in VIDEO_SUFFIXES))}).")
ONE_VIDEO_TEXT = "I smooth one video per message: I took the first; send the others in separate messages."
SORRY_TEXT = "Sorry, something went wrong. Please try again."

#: Channels that messages can be sent to and edited in (what a job's chat id resolves to).
ChatChannel = discord.TextChannel | discord.Thread | discord.DMChannel | discord.VoiceChannel | discord.StageChannel
T = TypeVar("T")


def fit_text(text: str) -> str:
    return text if len(text) <= MAX_CONTENT_CHARS else text[:MAX_CONTENT_CHARS - 1] + "…"


def is_video(attachment: discord.Attachment) -> bool:
    kind = (attachment.content_type or "").split(";")[0].strip().lower()
    suffix = Path(attachment.filename).suffix.lower()
    return kind.startswith("video/") or kind == "image/gif" or suffix in VIDEO_SUFFIXES


def suffix_for(attachment: discord.Attachment) -> str:
    suffix = Path(attachment.filename).suffix.lower()
    if suffix:
        return suffix
    kind = (attachment.content_type or "video/mp4").split(";")[0].strip()
    return mimetypes.guess_extension(kind) or ".mp4"


class AllowlistTree(app_commands.CommandTree):
    """The command tree with the allowlist checked once, before any command runs (nothing is stored)."""

    def __init__(self, client: discord.Client, settings: Settings) -> None:
        super().__init__(client)
        self.settings = settings

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if interaction.channel_id is not None and self.settings.chat_allowed(interaction.channel_id):
            return True
        await interaction.response.send_message(PRIVATE_CHAT_TEXT, ephemeral=True)
        return False


def reply_reference(job: JobView) -> discord.MessageReference:
    """Reply to the user's message; still send if it was deleted meanwhile."""
    return discord.MessageReference(message_id=int(job.message_id), channel_id=int(job.chat_id),
                                    fail_if_not_exists=False)


class DiscordAdapter:
    platform = PLATFORM
    animations_as_mp4 = False  # Discord plays a real .gif attachment inline

    def __init__(self, settings: Settings, service: ChatService) -> None:
        if settings.discord_token is None:
            raise ValueError("DISCORD_TOKEN is not set")
        self.settings = settings
        self.service = service
        self.defer_after_s = DEFER_AFTER_S
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # the bot never joins voice
        # No message may ping anyone unless a send asks for it (only results ping the user who asked),
        # so user text quoted back ("@everyone" is not a frame rate) stays inert.
        self.client = discord.Client(intents=INTENTS, max_ratelimit_timeout=MAX_RATELIMIT_WAIT_S,
                                     allowed_mentions=discord.AllowedMentions.none())
        self.tree = AllowlistTree(self.client, settings)
        self.client.setup_hook = self.setup_hook  # type: ignore[method-assign]
        self.client.event(self.on_message)
        self.tree.error(self.on_command_error)
        self.register_commands()
        self._connection: asyncio.Task[None] | None = None
        self._stopping = False
        self._lost = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in (a rejected token raises here), connect, and return once the gateway session is ready.

        From then on the connection task is watched: discord.py reconnects (and resumes) by itself,
        and when it gives up for good :meth:`wait_lost` returns, so the service can exit non-zero.
        """
        assert self.settings.discord_token is not None
        try:
            await self.client.login(self.settings.discord_token.get_secret_value())
            self._connection = asyncio.create_task(self.client.connect(reconnect=True))
            ready = asyncio.create_task(self.client.wait_until_ready())
            await asyncio.wait({ready, self._connection}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                ready.cancel()
                self._connection.result()  # raises what ended the connection
                raise ConnectionError("the Discord gateway closed before the session was ready")
        except BaseException:
            await self.stop()  # login opened an HTTP session
            raise
        self._connection.add_done_callback(self.connection_ended)

    def connection_ended(self, connection: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        error = None if connection.cancelled() else connection.exception()
        log.error("the Discord gateway connection ended for good (%s); no Discord message can arrive any more",
                  repr(error) if error is not None else "closed", exc_info=error)
        self._lost.set()

    async def wait_lost(self) -> None:
        """Returns once the gateway connection ended for good (discord.py stopped reconnecting)."""
        await self._lost.wait()

    async def stop(self) -> None:
        self._stopping = True
        await self.client.close()
        if self._connection is not None:
            await asyncio.gather(self._connection, return_exceptions=True)

    async def setup_hook(self) -> None:
        """At login: publish the slash commands (a bulk overwrite, so repeating it changes nothing)."""
        await self.tree.sync()

    # --- slash commands: one per command -----------------------------------------------------------

    def register_commands(self) -> None:
        command = self.tree.command

        @command(name="start", description="What this bot does")
        async def start(interaction: discord.Interaction) -> None:
            await self.answer(interaction, start_text() + "\n" + HOW_TO_TEXT, ephemeral=True)

        @command(name="help", description="How to use it, limits and examples")
        async def help_(interaction: discord.Interaction) -> None:
            await self.answer(interaction, help_text(self.settings) + "\n\n" + HOW_TO_TEXT, ephemeral=True)

        @command(name="fps", description="Set this channel's target frame rate")
        @app_commands.describe(rate="Frames per second, e.g. 60; leave empty for twice the input rate")
        async def fps(interaction: discord.Interaction, rate: float | None = None) -> None:
            chat = interaction.channel_id
            await self.answer(interaction, lambda: self.service.clear_fps(PLATFORM, chat) if rate is None
                              else self.service.set_fps(PLATFORM, chat, str(rate)))

        @command(name="loop", description="Toggle seamless looping")
        async def loop(interaction: discord.Interaction) -> None:
            await self.answer(interaction, lambda: self.service.toggle_loop(PLATFORM, interaction.channel_id))

        @command(name="gif", description="Reply with GIF animations")
        async def gif(interaction: discord.Interaction) -> None:
            await self.answer(interaction, lambda: self.service.set_output(PLATFORM, interaction.channel_id, "gif"))

        @command(name="mp4", description="Reply with MP4 videos")
        async def mp4(interaction: discord.Interaction) -> None:
            await self.answer(interaction, lambda: self.service.set_output(PLATFORM, interaction.channel_id, "mp4"))

        @command(name="slowmo", description="Slow motion: every new frame interpolated, sound slowed")
        @app_commands.describe(factor=f"How many times slower ({MIN_SLOWMO:g} to {MAX_SLOWMO:g}), e.g. 4; "
                                      "leave empty to switch slow motion off")
        async def slowmo(interaction: discord.Interaction, factor: float | None = None) -> None:
            argument = "off" if factor is None else str(factor)
            await self.answer(interaction, lambda: self.service.set_slowmo(PLATFORM, interaction.channel_id, argument))

        @command(name="compare", description="Before/after video: original and smoothed together")
        @app_commands.describe(layout="How to show both (default: a moving split line), or off")
        @app_commands.choices(layout=[app_commands.Choice(name=shown, value=mode)
                                      for mode, shown in COMPARE_DISPLAY.items()]
                              + [app_commands.Choice(name="off", value="off")])
        async def compare(interaction: discord.Interaction, layout: str | None = None) -> None:
            await self.answer(interaction, lambda: self.service.set_compare(PLATFORM, interaction.channel_id, layout))

        @command(name="cuts", description="What happens at scene cuts")
        @app_commands.describe(mode="A hard cut (default) or a short cross-fade")
        @app_commands.choices(mode=[app_commands.Choice(name=shown, value=mode)
                                    for mode, shown in CUT_MODE_DISPLAY.items()])
        async def cuts(interaction: discord.Interaction, mode: str) -> None:
            await self.answer(interaction, lambda: self.service.set_cut_mode(PLATFORM, interaction.channel_id, mode))

        @command(name="quality", description="Fast (one pass) or best (RIFE: sharper, about 4× slower)")
        @app_commands.describe(level="fast (default) or best")
        @app_commands.choices(level=[app_commands.Choice(name=shown, value=level)
                                     for level, shown in QUALITY_DISPLAY.items()])
        async def quality(interaction: discord.Interaction, level: str) -> None:
            await self.answer(interaction, lambda: self.service.set_quality(PLATFORM, interaction.channel_id, level))

        @command(name="model", description="Choose the interpolation model")
        @app_commands.describe(name="The model; RIFE looks best, blend is fastest")
        @app_commands.choices(name=[app_commands.Choice(name=MODEL_DISPLAY.get(model, model), value=model)
                                    for model in available_models(self.settings)])
        async def model(interaction: discord.Interaction, name: str) -> None:
            await self.answer(interaction, lambda: self.service.set_model(PLATFORM, interaction.channel_id, name))

        @command(name="settings", description="Show this channel's settings")
        async def settings(interaction: discord.Interaction) -> None:
            await self.answer(interaction, lambda: self.service.settings_text(PLATFORM, interaction.channel_id),
                              ephemeral=True)

        @command(name="status", description="Your videos and their places in the queue")
        async def status(interaction: discord.Interaction) -> None:
            await self.answer(interaction, lambda: self.service.status_text(
                PLATFORM, interaction.channel_id, interaction.user.id), ephemeral=True)

        @command(name="cancel", description="Cancel your waiting or running video")
        async def cancel(interaction: discord.Interaction) -> None:
            await self.answer(interaction, lambda: self.service.cancel(
                PLATFORM, interaction.channel_id, interaction.user.id), ephemeral=True)

    async def answer(self, interaction: discord.Interaction, work: Callable[[], Awaitable[str]] | str, *,
                     ephemeral: bool = False) -> None:
        """Answer a slash command with a text, or ``work``'s text: at once, or deferred if it takes a while.

        Changes to a channel's settings are answered for everyone to see; personal answers
        (help, status, cancel) only to the user who asked.
        """
        if isinstance(work, str):
            await interaction.response.send_message(fit_text(work), ephemeral=ephemeral)
            return
        task = asyncio.ensure_future(work())
        done, _ = await asyncio.wait({task}, timeout=self.defer_after_s)
        if not done:
            await interaction.response.defer(thinking=True, ephemeral=ephemeral)
            await interaction.edit_original_response(content=fit_text(await task))
            return
        await interaction.response.send_message(fit_text(task.result()), ephemeral=ephemeral)

    async def on_command_error(self, interaction: discord.Interaction,
                               error: app_commands.AppCommandError) -> None:
        log.error("discord command %s failed: %s", interaction.command and interaction.command.name, error,
                  exc_info=error)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(SORRY_TEXT, ephemeral=True)
            else:
                await interaction.response.send_message(SORRY_TEXT, ephemeral=True)
        except discord.HTTPException:
            pass

    # --- messages: videos in, "Queued" out ----------------------------------------------------------

    def addressed(self, message: discord.Message) -> bool:
        """Direct messages, and server messages that mention the bot (not @everyone)."""
        me = self.client.user
        if message.author.bot or me is None:
            return False
        return message.guild is None or any(user.id == me.id for user in message.mentions)

    async def on_message(self, message: discord.Message) -> None:
        if not self.addressed(message):
            return
        if not self.settings.chat_allowed(message.channel.id):  # before anything is stored or fetched
            with contextlib.suppress(discord.HTTPException):
                await message.reply(PRIVATE_CHAT_TEXT)
            return
        try:
            await self.receive(message)
        except Exception:
            log.exception("discord message %s could not be handled", message.id)
            try:
                await message.reply(SORRY_TEXT)
            except discord.HTTPException:
                pass

    async def receive(self, message: discord.Message) -> None:
        videos = [attachment for attachment in message.attachments if is_video(attachment)]
        if not videos:
            await message.reply(NOT_A_VIDEO_TEXT if message.attachments else HOW_TO_TEXT)
            return
        video = videos[0]

        async def download(target: Path) -> None:
            await video.save(target)  # held in memory on the way: hence discord_download_limit

        outcome = await self.service.accept_video(
            platform=PLATFORM, chat_id=message.channel.id, user_id=message.author.id, message_id=message.id,
            caption=message.content, file_size=video.size, download_limit=self.settings.discord_download_limit,
            upload_limit=self.upload_limit_in(message.guild), suffix=suffix_for(video), download=download)
        if not isinstance(outcome, Accepted):
            await message.reply(fit_text(outcome.text))
        elif outcome.new:  # a re-delivered event (not new) was answered the first time
            text = outcome.text + ("\n" + ONE_VIDEO_TEXT if len(videos) > 1 else "")
            status = await message.reply(text)
            await self.service.set_status_message(outcome.job_id, status.id)

    # --- ChatReplier: what the worker calls ---------------------------------------------------------

    def upload_limit_in(self, guild: discord.Guild | None) -> int:
        """A server's limit grows with its boost level; elsewhere (DMs) the configured default applies."""
        return guild.filesize_limit if guild is not None else self.settings.discord_upload_limit

    def upload_limit(self, job: JobView) -> int | None:
        channel = self.client.get_channel(int(job.chat_id))
        return self.upload_limit_in(getattr(channel, "guild", None))

    async def channel_of(self, job: JobView) -> ChatChannel:
        """The job's channel: from the cache, or fetched (a DM channel after a restart)."""
        channel_id = int(job.chat_id)
        channel = self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)
        if not isinstance(channel, ChatChannel):
            raise RecipientGoneError(f"channel {channel_id} does not take messages")
        return channel

    async def send_status(self, job: JobView, text: str) -> str | None:
        channel = await self.call_platform(lambda: self.channel_of(job))
        if job.status_message_id is not None:
            status = channel.get_partial_message(int(job.status_message_id))
            try:
                await self.call_platform(lambda: status.edit(content=fit_text(text)))
                return None
            except RecipientGoneError as error:
                cause = error.__cause__
                if not (isinstance(cause, discord.NotFound) and cause.code == UNKNOWN_MESSAGE):
                    raise
                # the status message was deleted: post a new one
        sent = await self.call_platform(lambda: channel.send(fit_text(text), reference=reply_reference(job)))
        return str(sent.id)

    async def deliver(self, job: JobView, path: Path, delivery: Delivery) -> str:
        async def send() -> discord.Message:
            channel = await self.channel_of(job)
            # A discord.File is single-use: each attempt opens the result afresh.
            upload = discord.File(path, filename=f"smooth-{job.id}{path.suffix}")
            return await channel.send(fit_text(delivery.caption), file=upload, reference=reply_reference(job),
                                      mention_author=True)  # the one ping: the result the user waited for

        sent = await self.call_platform(send)
        return str(sent.id)

    async def send_error(self, job: JobView, text: str) -> None:
        async def send() -> discord.Message:
            channel = await self.channel_of(job)
            return await channel.send(fit_text(text), reference=reply_reference(job), mention_author=True)

        try:
            await self.call_platform(send)
        except RecipientGoneError as error:
            # The bot may no longer write there (kicked, channel gone): nobody can be told, ever.
            log.warning("job %s: the failure cannot be reported in Discord: %s", job.id, error)

    async def call_platform(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Discord call and classify its failure for the worker, which waits and retries
        (discord.py itself sits out only short rate limits). Messages are for the log."""
        try:
            return await call()
        except discord.RateLimited as error:
            raise RetryAfterError(f"Discord rate limit: retry after {error.retry_after:.1f} s",
                                  error.retry_after) from error
        except (discord.Forbidden, discord.NotFound) as error:  # no permission, DMs closed, channel deleted
            raise RecipientGoneError(f"the channel cannot be posted in ({error.status} {error.code} "
                                     f"{error.text})") from error
        except discord.HTTPException as error:
            detail = f"{error.status} {error.code} {error.text}"
            if error.status == 413 or error.code == FILE_TOO_LARGE:
                raise TooLargeError(f"Discord refused the file as too large ({detail})") from error
            if error.status == 429:  # without discord.py's pacing data (a proxy's 429): wait as told
                retry_after = float(error.response.headers.get("Retry-After") or DEFAULT_RETRY_AFTER_S)
                raise RetryAfterError(f"Discord rate limit ({detail})", retry_after) from error
            if error.status >= 500:
                raise TransientError(f"Discord failed on its side ({detail})") from error
            raise DeliveryError(f"Discord refused it ({detail})", transient=False) from error
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise TransientError(f"Discord did not answer ({error!r})") from error
