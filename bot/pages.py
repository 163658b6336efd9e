"""A web page instead of a video link: yt-dlp (a library, the optional ``links`` extra) finds the video in it.

yt-dlp only *extracts*: :class:`GuardedYoutubeDL` replaces all of yt-dlp's request handlers (urllib,
requests, curl_cffi, websockets) with :class:`GuardedHandler`, which sends every request an extractor
makes (the page, its JSON APIs, player scripts) through :class:`bot.fetch.Fetcher` — the same pinned,
address-checked connections, redirect limit, time limit and minimum rate, plus a cap on each answer's
size (:data:`PAGE_MAX_BYTES`) — and refuses proxies and anything but GET. The video itself is then
downloaded by the fetcher from the URL yt-dlp chose: one file over http(s) (``best[protocol^=http]``),
never an HLS/DASH playlist, never a download by yt-dlp, and never a URL handed to ffmpeg.

Why this way rather than a download by yt-dlp: one fetcher holds every rule, and yt-dlp's own
downloaders (and ffmpeg, which it calls for playlists) open connections the rules could not see.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
import yt_dlp
from yt_dlp.networking.common import Request, RequestHandler, Response
from yt_dlp.networking.exceptions import HTTPError, TransportError, UnsupportedRequest

from .fetch import FetchRefused, Fetcher
from .i18n import N_

log = logging.getLogger(__name__)

#: The most one answer to an extractor's request may be (pages, JSON, player scripts).
PAGE_MAX_BYTES = 10 * 1000 * 1000
#: A single file over HTTP(S), with a picture; the best of those.
FORMAT = "best[protocol^=http][vcodec!=none]/best[protocol^=http]"
NO_VIDEO_TEXT = N_("I couldn't find a video I can fetch on that page. Send a direct link to the video or the "
                   "file itself.")


class GuardedHandler(RequestHandler):
    """yt-dlp's request interface over :class:`~bot.fetch.Fetcher` (set by :func:`handler_for`)."""

    RH_KEY = "SmoothbotGuarded"
    RH_NAME = "smoothbot-guarded"
    _SUPPORTED_URL_SCHEMES = ("http", "https")
    _SUPPORTED_PROXY_SCHEMES = ()
    _SUPPORTED_FEATURES = ()

    fetcher: Fetcher
    started: float
    #: The first refusal of the fetcher's rules during this extraction (yt-dlp wraps errors in its own).
    refusals: list[FetchRefused]

    def _check_extensions(self, extensions: dict) -> None:
        super()._check_extensions(extensions)
        for accepted in ("cookiejar", "timeout", "legacy_ssl", "keep_header_casing"):
            extensions.pop(accepted, None)  # no cookies are sent; the fetcher's own timeouts apply

    def _send(self, request: Request) -> Response:
        if (request.method or "GET") != "GET" or request.data is not None:
            raise UnsupportedRequest("only GET requests are made for pages")
        headers = {name: value for name, value in self._merge_headers(request.headers).items()
                   if name.lower() not in ("host", "cookie", "accept-encoding", "connection")}
        try:
            with self.fetcher.client() as client:
                response, final = self.fetcher.open(client, request.url, headers, started=self.started)
                try:
                    body = b"".join(self.fetcher.body(response, self.started, PAGE_MAX_BYTES))
                finally:
                    response.close()
        except FetchRefused as refusal:
            self.refusals.append(refusal)
            raise TransportError(refusal.detail, cause=refusal) from refusal
        except httpx.HTTPError as error:
            raise TransportError(f"{type(error).__name__}: {error}", cause=error) from error
        answer = Response(io.BytesIO(body), url=str(final), headers=dict(response.headers.items()),
                          status=response.status_code)
        if not 200 <= response.status_code < 300:
            raise HTTPError(answer)
        return answer


def handler_for(fetcher: Fetcher, started: float, refusals: list[FetchRefused]) -> type[GuardedHandler]:
    return type("BoundGuardedHandler", (GuardedHandler,),
                {"fetcher": fetcher, "started": started, "refusals": refusals})


class GuardedYoutubeDL(yt_dlp.YoutubeDL):
    """A YoutubeDL whose only way onto the network is :class:`GuardedHandler`."""

    def __init__(self, params: dict, handler: type[GuardedHandler]) -> None:
        self._guarded_handler = handler
        super().__init__(params)

    def build_request_director(self, handlers: Iterable[type[RequestHandler]], preferences=None):
        return super().build_request_director([self._guarded_handler], None)


class QuietLogger:
    """yt-dlp's messages go to this module's log at debug level (they quote URLs, never shown to users)."""

    def debug(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)

    info = warning = debug

    def error(self, message: str) -> None:
        log.info("yt-dlp: %s", message)


def media_of(info: dict) -> dict:
    """The chosen single-file format of an extraction (the first entry of a playlist)."""
    while info.get("_type") in ("playlist", "multi_video") and info.get("entries"):
        info = next(entry for entry in info["entries"] if entry)
    if info.get("requested_formats"):  # separate audio and video streams: would need a merge
        raise FetchRefused(NO_VIDEO_TEXT, "only split audio/video formats")
    return info


def fetch_page_video(fetcher: Fetcher, page_url: str, target: Path) -> None:
    """Extract the video of ``page_url`` with yt-dlp (requests guarded) and download it with ``fetcher``."""
    refusals: list[FetchRefused] = []
    handler = handler_for(fetcher, time.monotonic(), refusals)
    params = {"quiet": True, "no_warnings": True, "noprogress": True, "logger": QuietLogger(),
              "noplaylist": True, "playlist_items": "1", "format": FORMAT, "skip_download": True,
              "cachedir": False, "check_formats": False, "socket_timeout": fetcher.limits.read_timeout_s}
    try:
        with GuardedYoutubeDL(params, handler) as ydl:
            info = ydl.extract_info(page_url, download=False)
    except yt_dlp.utils.DownloadError as error:
        if refusals:
            raise refusals[0] from None
        raise FetchRefused(NO_VIDEO_TEXT, f"yt-dlp: {error}") from None
    media = media_of(info or {})
    url = media.get("url")
    if not url or not str(media.get("protocol", "http")).startswith("http"):
        raise FetchRefused(NO_VIDEO_TEXT, f"no single-file http format (protocol {media.get('protocol')!r})")
    headers = {name: value for name, value in (media.get("http_headers") or {}).items()
               if name.lower() in ("user-agent", "referer", "accept", "accept-language", "origin")}
    log.info("page %s: fetching its video (%s, %s)", page_url, media.get("extractor"), media.get("format_id"))
    fetcher.fetch(url, target, headers=headers)
