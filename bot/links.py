"""A link in a chat message instead of a file: find it, check the operator's rules, fetch it, check the file.

:class:`LinkReader` is what :class:`~bot.service.ChatService` calls; the network work is
:class:`bot.fetch.Fetcher`'s (every rule against reaching the server's own network lives there). Here:

* :func:`find_link` — the first ``scheme://…`` word of a message (so ``file://`` and ``ftp://`` links are
  seen, and refused, rather than ignored);
* :meth:`LinkReader.check` — links on at all (``SMOOTHBOT_LINKS_ENABLED``), the domain allowlist
  (``SMOOTHBOT_LINK_DOMAINS``, checked on the link the user sent), the scheme;
* :meth:`LinkReader.download` — a direct video link is fetched as it is; a web page only when the operator
  enabled pages (``SMOOTHBOT_LINK_PAGES``, :mod:`bot.pages`, yt-dlp). The file is then probed
  (:func:`interpolation.probe.probe`) with the service's input limits before anything is queued.

Every refusal is a :class:`~bot.fetch.FetchRefused` whose text is meant for the chat.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath

import httpx

from interpolation.errors import BadInputError
from interpolation.options import Limits
from interpolation.probe import probe

from .config import Settings
from .i18n import N_
from .fetch import FetchLimits, FetchRefused, Fetcher, host_matches

log = logging.getLogger(__name__)

#: ``scheme://rest`` as one word; the scheme is checked afterwards, so that ``file://`` gets an answer.
LINK = re.compile(r"(?<![\w/])[a-zA-Z][a-zA-Z0-9+.-]{0,15}://[^\s<>\"']+")
#: Suffixes a direct video link may end in; they name the downloaded file (the probe decides what it is).
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".gif", ".3gp", ".ogv", ".mpg",
                            ".mpeg", ".ts", ".flv", ".wmv"})
#: Content types a direct link may answer with (servers often say octet-stream for any file).
VIDEO_TYPES = ("video/", "image/gif", "application/octet-stream", "binary/octet-stream", "application/mp4",
               "application/x-matroska")

LINKS_OFF_TEXT = N_("Links are turned off on this bot. Please send the video file itself.")
DOMAIN_TEXT = N_("I don't fetch links from that site here. Please send the video file itself.")
WEB_PAGE_TEXT = N_("That link leads to a web page, not a video file. Send a direct link to the video "
                   "(ending in .mp4, .webm, .gif…) or the file itself.")


def find_link(text: str | None) -> str | None:
    """The first ``scheme://…`` word in ``text`` (trailing punctuation dropped), or None."""
    match = LINK.search(text or "")
    return match.group(0).rstrip(".,;:!?)]}") if match else None


def is_video_type(content_type: str) -> bool:
    return not content_type or content_type.startswith(VIDEO_TYPES)


class LinkReader:
    def __init__(self, settings: Settings, fetcher: Fetcher | None = None) -> None:
        self.settings = settings
        self.fetcher = fetcher or Fetcher(FetchLimits(max_bytes=settings.link_download_limit,
                                                      total_timeout_s=settings.link_timeout_s,
                                                      min_rate_bytes_per_s=settings.link_min_rate))

    def check(self, link: str) -> httpx.URL:
        """The operator's rules for a link the user sent (no connection yet)."""
        if not self.settings.links_enabled:
            raise FetchRefused(LINKS_OFF_TEXT)
        url = self.fetcher.check_url(link)
        if self.settings.link_domains and not host_matches(url.raw_host.decode("ascii"), self.settings.link_domains):
            raise FetchRefused(DOMAIN_TEXT, f"{url.host} is not in link_domains")
        return url

    @staticmethod
    def suffix(link: str) -> str:
        try:
            suffix = PurePosixPath(httpx.URL(link).path).suffix.lower()
        except (httpx.InvalidURL, ValueError):
            return ".mp4"
        return suffix if suffix in VIDEO_SUFFIXES else ".mp4"

    def download(self, link: str, target: Path) -> None:
        """Fetch ``link`` (a direct video, or a page yt-dlp reads where enabled) to ``target`` and probe it.
        Blocking: run it in a thread."""
        self.check(link)
        try:
            self.fetcher.fetch(link, target, accept=self.accept_direct)
        except WebPage:
            if not self.settings.link_pages:
                raise FetchRefused(WEB_PAGE_TEXT) from None
            try:
                from .pages import fetch_page_video  # yt-dlp is optional: imported only when pages are on
            except ImportError:
                log.warning("SMOOTHBOT_LINK_PAGES is on but yt-dlp is not installed (pip install '.[links]')")
                raise FetchRefused(WEB_PAGE_TEXT) from None
            fetch_page_video(self.fetcher, link, target)
        self.probe(target)

    @staticmethod
    def accept_direct(content_type: str) -> bool:
        if content_type.startswith(("text/html", "application/xhtml")):
            raise WebPage("a web page")
        return is_video_type(content_type)

    def probe(self, path: Path) -> None:
        """The same container check the worker makes, with the service's limits, before anything is queued."""
        limits = Limits(max_pixels=self.settings.max_input_pixels, max_duration_s=self.settings.max_input_duration_s)
        try:
            probe(path, limits)
        except BadInputError as error:
            from .worker import user_message  # the worker's wording of engine errors (no file names, no paths)

            path.unlink(missing_ok=True)
            raise FetchRefused(user_message(error, path), f"probe: {error.detail or error}") from None


class WebPage(FetchRefused):
    """The link answered with a web page (HTML): a page reader may find the video in it."""
