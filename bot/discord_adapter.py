"""Discord, through discord.py: thin handlers that parse, store the attachment, enqueue, reply.

Three ways in, each answered the same way:

* ``/smooth`` with the video as an attachment option and the job's options as typed choices;
* the "Smooth this video" message context menu (Apps → on any message with a video or GIF:
  Discord sends the target message's attachments with the interaction, so no message-content
  intent is needed, and it is the natural way to smooth someone else's clip);
* a message with video attachments: in servers the bot answers messages that mention it, in direct
  messages every message (text beside the attachments, ``smooth /fps 60 /loop``, applies to those
  videos only, like a Telegram caption). Several videos in one message become one job each.

Interactions are deferred at once (Discord wants an answer within 3 s); the job's status (queue
place, progress, with Cancel and Position buttons) is the ephemeral original response, edited while
the interaction token is valid (15 minutes, less a margin, on the adapter's clock). The result is a
public follow-up. After that, or after a restart (tokens are kept in memory only), progress and the
result go to the channel as normal messages mentioning the user, or to a DM where the bot cannot
post there (a user-installed app in a server without the bot). Refusals and errors are ephemeral.

The content of every video is probed before it is queued (Discord checks only file names). Chat
defaults are set with slash commands or the /settings menu (bot/discord_views.py). All decisions
live in :class:`~bot.service.ChatService`; all sending for the worker lives in the ChatReplier methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import discord
from discord import app_commands

from interpolation.errors import EngineError
from interpolation.options import Limits
from interpolation.probe import probe

from . import discord_commands, i18n
from .commands import available_models
from .config import Settings
from .discord_refs import Source, StatusRef
from .i18n import N_, _
from .discord_views import DYNAMIC_ITEMS, SmoothClient, menu_text, settings_menu, status_view
from .platform import DeliveryError, RecipientGoneError, RetryAfterError, TooLargeError, TransientError
from .replies import Delivery, JobView, queued_text
from .service import PRIVATE_CHAT_TEXT, Accepted, ChatService, Refused
from .worker import user_message

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
#: An interaction token lasts 15 minutes from the interaction; the adapter stops using it a minute
#: early, so that no edit or upload still in flight runs into the end.
INTERACTION_TOKEN_S = 15 * 60.0
INTERACTION_MARGIN_S = 60.0
#: Discord's "Invalid Webhook Token" (an interaction token that expired).
INVALID_WEBHOOK_TOKEN = 50027
#: What counts as a video in a message when Discord gives no content type (it sniffs by extension itself);
#: the content is probed before anything is queued.
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".gif"})

#: What users are told (message ids: said as ``_(TEXT)`` in the current language, bot/i18n.py).
NOT_A_VIDEO_TEXT = N_("That attachment is not a video or GIF. Send a video file ({formats}).")
VIDEO_FORMATS = ", ".join(sorted(suffix[1:].upper() for suffix in VIDEO_SUFFIXES))
NO_VIDEO_IN_MESSAGE_TEXT = N_("That message has no video or GIF attached.")
NOT_YOURS_TEXT = N_("Only the person who asked for this video can use these buttons.")
JOB_GONE_TEXT = N_("That video is no longer in the queue.")
SORRY_TEXT = N_("Sorry, something went wrong. Please try again.")

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

    def __init__(self, client: discord.Client, settings: Settings, service: ChatService) -> None:
        super().__init__(client, allowed_installs=discord_commands.INSTALLS,
                         allowed_contexts=discord_commands.CONTEXTS)
        self.settings = settings
        self.service = service

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Also sets the language the command answers in (the channel's /language, else the user's app)."""
        if interaction.channel_id is not None and self.settings.chat_allowed(interaction.channel_id):
            await use_language(self.service, interaction)
            return True
        i18n.use(interaction.locale.value)  # nothing is read or stored for a stranger
        await interaction.response.send_message(_(PRIVATE_CHAT_TEXT), ephemeral=True)
        return False


async def use_language(service: ChatService, interaction: discord.Interaction) -> None:
    """Answer ``interaction`` (and queue its jobs) in the channel's /language, else the user's Discord language."""
    assert interaction.channel_id is not None
    i18n.use(await service.language_for(PLATFORM, interaction.channel_id, interaction.locale.value))


def reply_reference(job: JobView) -> discord.MessageReference | None:
    """Reply to the user's message (the one with the video); still send if it was deleted meanwhile.
    A /smooth job has no such message: None (its messages mention the user instead)."""
    source = Source.decode(job.message_id)
    if source.message_id is None:
        return None
    return discord.MessageReference(message_id=source.message_id, channel_id=int(job.chat_id), fail_if_not_exists=False)


def addressing(job: JobView, text: str) -> str:
    """``text``, led by the user's mention for a job started through an interaction: its messages reply
    to nothing (/smooth) or to someone else's message (the context menu)."""
    return f"<@{int(job.user_id)}> {text}" if Source.decode(job.message_id).from_interaction else text


def pinging(job: JobView) -> dict[str, Any]:
    """What makes a result or failure ping the user who asked (and nobody else): the author of the
    replied-to message, or for an interaction's job the mention in the text."""
    if Source.decode(job.message_id).from_interaction:
        return {"allowed_mentions": discord.AllowedMentions(users=[discord.Object(int(job.user_id))]),
                "mention_author": False}
    return {"mention_author": True}


@dataclass
class InteractionLink:
    """A job's interaction, while its token may be used: its status is the original response (or,
    for a second video from one context menu, the ephemeral follow-up ``followup_id``)."""

    interaction: discord.Interaction
    expires_at: float  # on the adapter's clock
    followup_id: int | None = None

    async def edit(self, text: str, view: discord.ui.View | None) -> None:
        if self.followup_id is None:
            await self.interaction.edit_original_response(content=fit_text(text), view=view)
        else:
            await self.interaction.followup.edit_message(self.followup_id, content=fit_text(text), view=view)


def token_ended(error: DeliveryError) -> bool:
    """The interaction's webhook no longer takes calls at all (expired token, deleted response, no access)."""
    cause = error.__cause__
    return isinstance(cause, discord.HTTPException) and (cause.status in (401, 403, 404)
                                                         or cause.code == INVALID_WEBHOOK_TOKEN)


def worth_retrying(error: DeliveryError) -> bool:
    """A failure the same interaction call may get past later (a rate limit, Discord's side, a file to
    shrink); any other refusal (an expired token, a deleted response, a follow-up limit) is final for
    the interaction, and the channel or a DM takes over."""
    return isinstance(error, (RetryAfterError, TransientError, TooLargeError))


class DiscordAdapter:
    platform = PLATFORM
    animations_as_mp4 = False  # Discord plays a real .gif attachment inline

    def __init__(self, settings: Settings, service: ChatService, clock: Callable[[], float] = time.monotonic) -> None:
        if settings.discord_token is None:
            raise ValueError("DISCORD_TOKEN is not set")
        self.settings = settings
        self.service = service
        self.defer_after_s = DEFER_AFTER_S
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # the bot never joins voice
        # No message may ping anyone unless a send asks for it (only results ping the user who asked),
        # so user text quoted back ("@everyone" is not a frame rate) stays inert.
        self.client = SmoothClient(intents=INTENTS, max_ratelimit_timeout=MAX_RATELIMIT_WAIT_S,
                                   allowed_mentions=discord.AllowedMentions.none())
        self.client.job_controls = self  # the status buttons (bot/discord_views.py) call back here
        self.tree = AllowlistTree(self.client, settings, service)
        self.client.setup_hook = self.setup_hook  # type: ignore[method-assign]
        self.client.event(self.on_message)
        self.tree.error(self.on_command_error)
        #: The clock interaction tokens expire on (seconds; tests move it on).
        self.clock: Callable[[], float] = clock
        self.translator = discord_commands.CommandTranslator(i18n.translation)
        #: Jobs started by an interaction whose token is still in use, by job id (memory only).
        self.links: dict[int, InteractionLink] = {}
        self.limits = Limits(max_pixels=settings.max_input_pixels, max_duration_s=settings.max_input_duration_s)
        discord_commands.register(self)
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
        """At login: listen for the status buttons of messages sent before (persistent), and publish the
        commands with their translations (a bulk overwrite, so repeating it changes nothing)."""
        self.client.add_dynamic_items(*DYNAMIC_ITEMS)
        await self.tree.set_translator(self.translator)
        await self.tree.sync()

    # --- slash commands (bot/discord_commands.py) ---------------------------------------------------

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
                await interaction.followup.send(_(SORRY_TEXT), ephemeral=True)
            else:
                await interaction.response.send_message(_(SORRY_TEXT), ephemeral=True)
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
            i18n.use(None)
            with contextlib.suppress(discord.HTTPException):
                await message.reply(_(PRIVATE_CHAT_TEXT))
            return
        # A message carries no language of its user: the channel's /language, else English.
        i18n.use(await self.service.language_for(PLATFORM, message.channel.id, None))
        try:
            await self.receive(message)
        except Exception:
            log.exception("discord message %s could not be handled", message.id)
            try:
                await message.reply(_(SORRY_TEXT))
            except discord.HTTPException:
                pass

    async def receive(self, message: discord.Message) -> None:
        """One job per video of the message, each answered with its own status message (with buttons)."""
        videos = [attachment for attachment in message.attachments if is_video(attachment)]
        if not message.attachments and await self.receive_link(message):
            return
        if not videos:
            await message.reply(_(NOT_A_VIDEO_TEXT).format(formats=VIDEO_FORMATS) if message.attachments
                                else discord_commands.how_to_text())
            return
        for index, video in enumerate(videos):
            outcome = await self.accept(message.channel.id, message.author.id, Source(message.id, index), video,
                                        message.content, self.upload_limit_in(message.guild))
            if not isinstance(outcome, Accepted):
                await message.reply(fit_text(outcome.text))
            elif outcome.new:  # a re-delivered event (not new) was answered the first time
                status = await message.reply(outcome.text, view=status_view(outcome.job_id, outcome.position))
                await self.service.set_status_message(outcome.job_id, status.id)

    async def receive_link(self, message: discord.Message) -> bool:
        """A message with a link to a video instead of an attachment (bot/links.py); False if it holds none."""
        outcome = await self.service.accept_link(
            platform=PLATFORM, chat_id=message.channel.id, user_id=message.author.id,
            message_id=Source(message.id).encode(), text=message.content,
            upload_limit=self.upload_limit_in(message.guild), animations_as_mp4=self.animations_as_mp4)
        if outcome is None:
            return False
        if not isinstance(outcome, Accepted):
            await message.reply(fit_text(outcome.text))
        elif outcome.new:
            status = await message.reply(outcome.text, view=status_view(outcome.job_id, outcome.position))
            await self.service.set_status_message(outcome.job_id, status.id)
        return True

    async def accept(self, chat_id: int, user_id: int, source: Source, video: discord.Attachment, caption: str,
                     upload_limit: int) -> Accepted | Refused:
        async def download(target: Path) -> None:
            await video.save(target)  # held in memory on the way: hence discord_download_limit

        return await self.service.accept_video(
            platform=PLATFORM, chat_id=chat_id, user_id=user_id, message_id=source.encode(), caption=caption,
            file_size=video.size, download_limit=self.settings.discord_download_limit, upload_limit=upload_limit,
            suffix=suffix_for(video), download=download, check=self.check_video,
            animations_as_mp4=self.animations_as_mp4)

    async def check_video(self, path: Path) -> str | None:
        """The file's content decides (Discord checks only its name): a probe, as the engine's first step."""
        try:
            await asyncio.to_thread(probe, path, self.limits)
        except EngineError as error:
            return user_message(error, path)
        return None

    # --- interactions: /smooth and "Smooth this video" -----------------------------------------------

    async def smooth_interaction(self, interaction: discord.Interaction, attachments: Sequence[discord.Attachment],
                                 caption: str, *, target: discord.Message | None) -> None:
        """Defer at once, then queue each video; the first one's status is the original response."""
        expires_at = self.clock() + INTERACTION_TOKEN_S - INTERACTION_MARGIN_S
        await interaction.response.defer(ephemeral=True, thinking=True)
        videos = list(attachments) if target is None else [a for a in attachments if is_video(a)]
        if not videos:
            await interaction.edit_original_response(content=_(NO_VIDEO_IN_MESSAGE_TEXT))
            return
        assert interaction.channel_id is not None  # the tree's allowlist check let only channels through
        upload_limit = min(interaction.filesize_limit, self.upload_limit_in(interaction.guild))
        answered = False
        for index, video in enumerate(videos):
            source = Source(target.id if target is not None else None, index, interaction.id)
            outcome = await self.accept(interaction.channel_id, interaction.user.id, source, video, caption,
                                        upload_limit)
            view = status_view(outcome.job_id, outcome.position) if isinstance(outcome, Accepted) else None
            if not answered:
                message = await interaction.edit_original_response(content=fit_text(outcome.text), view=view)
                link = InteractionLink(interaction, expires_at)
                answered = True
            else:
                message = await interaction.followup.send(fit_text(outcome.text), ephemeral=True, wait=True,
                                                          **({"view": view} if view is not None else {}))
                link = InteractionLink(interaction, expires_at, followup_id=message.id)
            if isinstance(outcome, Accepted):
                self.links[outcome.job_id] = link
                await self.service.set_status_message(outcome.job_id, message.id)

    async def show_settings(self, interaction: discord.Interaction) -> None:
        """/settings: the chat's settings as a menu, for the user who asked only."""
        assert interaction.channel_id is not None
        chat = interaction.channel_id
        menu = await settings_menu(self.service, PLATFORM, chat, available_models(self.settings))
        await interaction.response.send_message(await menu_text(self.service, PLATFORM, chat), view=menu,
                                                ephemeral=True)

    # --- the status buttons (JobControls) ------------------------------------------------------------

    async def owned_job(self, interaction: discord.Interaction, job_id: int) -> JobView | None:
        """The job if the presser owns it; otherwise answers them (ephemerally) and returns None."""
        job = await self.service.queue.get(job_id)
        if job is None or job.platform != PLATFORM:
            i18n.use(interaction.locale.value)
            await interaction.response.send_message(_(JOB_GONE_TEXT), ephemeral=True)
            return None
        i18n.use(await self.service.language_for(PLATFORM, job.chat_id, interaction.locale.value))
        if job.user_id != str(interaction.user.id):
            await interaction.response.send_message(_(NOT_YOURS_TEXT), ephemeral=True)
            return None
        return job

    async def cancel_pressed(self, interaction: discord.Interaction, job_id: int) -> None:
        job = await self.owned_job(interaction, job_id)
        if job is None:
            return
        answer = await self.service.cancel(PLATFORM, job.chat_id, job.user_id, job_id=job_id)
        # The status message says so, without buttons; a running job's ends with the worker's "Cancelled."
        await interaction.response.edit_message(content=fit_text(answer), view=None)

    async def position_pressed(self, interaction: discord.Interaction, job_id: int) -> None:
        job = await self.owned_job(interaction, job_id)
        if job is None:
            return
        position = await self.service.queue.position(job_id)
        text = queued_text(position) if position is not None else await self.service.status_text(
            PLATFORM, job.chat_id, job.user_id)
        await interaction.response.send_message(fit_text(text), ephemeral=True)

    async def controls_for(self, job: JobView) -> discord.ui.View | None:
        """The buttons a status message shows now: Cancel (and the place while waiting), none once finished."""
        current = await self.service.queue.get(job.id)
        if current is None or not current.state.is_active or current.cancel_requested:
            return None
        return status_view(job.id, await self.service.queue.position(job.id))

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

    async def dm_of(self, job: JobView) -> discord.DMChannel:
        """The user's direct messages: where a job started through an interaction goes when the bot
        cannot post in the channel (a user-installed app in a server without the bot, or no permission)."""
        user_id = int(job.user_id)
        user = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
        return user.dm_channel or await user.create_dm()

    def usable_link(self, job: JobView) -> InteractionLink | None:
        """The job's interaction while its token may still be used; forgotten once it may not."""
        link = self.links.get(job.id)
        if link is not None and self.clock() >= link.expires_at:
            log.info("job %s: the interaction token expired; the channel (or a DM) takes over", job.id)
            del self.links[job.id]
            return None
        return link

    async def through_link(self, job: JobView, call: Callable[[InteractionLink], Awaitable[T]]) -> tuple[bool, T | None]:
        """``call`` on the job's interaction while it is usable: (True, its value); else (False, None)."""
        link = self.usable_link(job)
        if link is None:
            return False, None
        try:
            return True, await self.call_platform(lambda: call(link))
        except DeliveryError as error:
            if worth_retrying(error):
                raise
            if token_ended(error):
                self.links.pop(job.id, None)
            log.info("job %s: the interaction does not take this (%s); the channel takes over", job.id, error)
            return False, None

    async def post(self, job: JobView, send: Callable[[discord.abc.Messageable], Awaitable[discord.Message]]
                   ) -> tuple[discord.Message, bool]:
        """``send`` in the job's channel; for an interaction's job in the user's DMs where the bot cannot
        post there. Returns the message and whether it went to a DM."""
        try:
            return await self.call_platform(lambda: self.send_in_channel(job, send)), False
        except RecipientGoneError:
            if not Source.decode(job.message_id).from_interaction:
                raise
            log.info("job %s: the channel does not take the bot's messages; the user's DMs do", job.id)
            return await self.call_platform(lambda: self.send_in_dm(job, send)), True

    async def send_in_channel(self, job: JobView,
                              send: Callable[[discord.abc.Messageable], Awaitable[discord.Message]]) -> discord.Message:
        return await send(await self.channel_of(job))

    async def send_in_dm(self, job: JobView,
                         send: Callable[[discord.abc.Messageable], Awaitable[discord.Message]]) -> discord.Message:
        return await send(await self.dm_of(job))

    async def send_status(self, job: JobView, text: str) -> str | None:
        view = await self.controls_for(job)
        used, _ = await self.through_link(job, lambda link: link.edit(text, view))
        if used:
            return None
        if job.status_message_id is not None:
            ref = StatusRef.decode(job.status_message_id)
            try:
                await self.call_platform(lambda: self.edit_status(job, ref, text, view))
                return None
            except RecipientGoneError as error:
                cause = error.__cause__
                deleted = isinstance(cause, discord.NotFound) and cause.code == UNKNOWN_MESSAGE
                if not (deleted or Source.decode(job.message_id).from_interaction):
                    raise
                # deleted, or an interaction's response the bot cannot edit by itself: post a new one

        async def send(channel: discord.abc.Messageable) -> discord.Message:
            return await channel.send(fit_text(addressing(job, text)), reference=reply_reference(job),
                                      **({"view": view} if view is not None else {}))

        sent, in_dm = await self.post(job, send)
        return StatusRef(sent.id, sent.channel.id if in_dm else None).encode()

    async def edit_status(self, job: JobView, ref: StatusRef, text: str, view: discord.ui.View | None) -> None:
        channel = await self.channel_of(job) if ref.channel_id is None else self.client.get_partial_messageable(
            ref.channel_id, type=discord.ChannelType.private)
        await channel.get_partial_message(ref.message_id).edit(content=fit_text(addressing(job, text)), view=view)

    async def deliver(self, job: JobView, path: Path, delivery: Delivery) -> str:
        # A discord.File is single-use: each attempt opens the result afresh.
        def upload() -> discord.File:
            return discord.File(path, filename=f"smooth-{job.id}{path.suffix}")

        caption = fit_text(addressing(job, delivery.caption))
        used, followup = await self.through_link(job, lambda link: link.interaction.followup.send(
            caption, file=upload(), ephemeral=False, wait=True,  # the result is public
            allowed_mentions=pinging(job).get("allowed_mentions", discord.utils.MISSING)))
        if used and followup is not None:
            return str(followup.id)

        async def send(channel: discord.abc.Messageable) -> discord.Message:
            # The one ping: the result the user waited for.
            return await channel.send(caption, file=upload(), reference=reply_reference(job), **pinging(job))

        sent, _ = await self.post(job, send)
        return str(sent.id)

    async def send_error(self, job: JobView, text: str) -> None:
        # While the interaction lasts, its ephemeral status becomes the error: only the user sees it.
        used, _ = await self.through_link(job, lambda link: link.edit(text, None))
        if used:
            self.links.pop(job.id, None)  # the job is over
            return

        async def send(channel: discord.abc.Messageable) -> discord.Message:
            return await channel.send(fit_text(addressing(job, text)), reference=reply_reference(job), **pinging(job))

        try:
            await self.post(job, send)
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
