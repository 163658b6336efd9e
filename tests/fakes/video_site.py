"""A small web site on 127.0.0.1 for the link fetcher's tests: a real video, redirects, and bad servers.

    async with VideoSite(clip_bytes) as site:
        fetcher = Fetcher(allow_test_servers=[site.address])
        await asyncio.to_thread(fetcher.fetch, site.url("/clip.mp4"), target)

Routes: ``/clip.mp4`` (the video), ``/clip`` (the same without a suffix, as application/octet-stream),
``/page.html`` (a web page embedding the video, for yt-dlp's generic extractor; ``?src=URL`` another
source), ``/refresh.html?to=URL`` (a page that moves on to URL), ``/text.mp4`` (text
served as video/mp4), ``/redirect?to=URL`` (302), ``/hops/N`` (N redirects, then the video), ``/big?bytes=N``
(N bytes, chunked, no Content-Length), ``/huge-declared`` (declares 10 GB), ``/trickle`` (one byte every
0.1 s), ``/stall`` (headers, then nothing), ``/gzip.mp4`` (a compressed body), ``/lying-length``
(a raw reply that declares a small Content-Length and streams a large chunked body).
Every request's path and ``Host`` header are recorded in :attr:`requests`.
"""

from __future__ import annotations

import asyncio
import gzip
import html
import ssl
from dataclasses import dataclass

from aiohttp import web

SHUTDOWN_TIMEOUT = 2.0
PIECE = b"\0" * (256 * 1024)


@dataclass(frozen=True)
class SeenRequest:
    path: str
    host: str


class VideoSite:
    def __init__(self, clip: bytes, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None) -> None:
        self.clip = clip
        self.host = host
        self.ssl_context = ssl_context
        self.port = 0
        self.requests: list[SeenRequest] = []
        #: Bytes of the body that /big and /lying-length wrote before the client went away.
        self.sent_bytes = 0
        self._runner: web.AppRunner | None = None
        self._raw: asyncio.base_events.Server | None = None
        self.raw_port = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def url(self, path: str, *, host: str | None = None) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    async def __aenter__(self) -> VideoSite:
        app = web.Application()
        app.middlewares.append(self._record)
        app.router.add_get("/clip.mp4", self._clip)
        app.router.add_get("/clip", self._clip_no_suffix)
        app.router.add_get("/page.html", self._page)
        app.router.add_get("/refresh.html", self._refresh)
        app.router.add_get("/text.mp4", self._text)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/hops/{count}", self._hops)
        app.router.add_get("/big", self._big)
        app.router.add_get("/huge-declared", self._huge_declared)
        app.router.add_get("/trickle", self._trickle)
        app.router.add_get("/stall", self._stall)
        app.router.add_get("/gzip.mp4", self._gzip)
        self._runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._raw = await asyncio.start_server(self._lying_length, self.host, 0)
        self.raw_port = self._raw.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._raw is not None:
            self._raw.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler):
        self.requests.append(SeenRequest(request.path_qs, request.headers.get("Host", "")))
        return await handler(request)

    async def _clip(self, request: web.Request) -> web.Response:
        return web.Response(body=self.clip, content_type="video/mp4")

    async def _clip_no_suffix(self, request: web.Request) -> web.Response:
        return web.Response(body=self.clip, content_type="application/octet-stream")

    async def _page(self, request: web.Request) -> web.Response:
        """A page with an HTML5 video (``?src=URL``: that source instead of /clip.mp4; ``?src=``: none)."""
        source = request.query.get("src", "/clip.mp4")
        video = f'<video controls src="{html.escape(source)}" type="video/mp4"></video>' if source else "<p>hello</p>"
        return web.Response(text=f"<!doctype html><html><head><title>A test clip</title></head><body>{video}"
                                 "</body></html>", content_type="text/html")

    async def _refresh(self, request: web.Request) -> web.Response:
        """A page that sends the browser on (``<meta http-equiv=refresh>``) to ``?to=URL``."""
        target = html.escape(request.query["to"])
        return web.Response(text=f'<!doctype html><html><head><meta http-equiv="refresh" content="0; url={target}">'
                                 "<title>moved</title></head><body></body></html>", content_type="text/html")

    async def _text(self, request: web.Request) -> web.Response:
        return web.Response(body=b"this is text, not a video\n" * 100, content_type="video/mp4")

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def _hops(self, request: web.Request) -> web.Response:
        count = int(request.match_info["count"])
        raise web.HTTPFound(f"/hops/{count - 1}" if count > 0 else "/clip.mp4")

    async def _big(self, request: web.Request) -> web.StreamResponse:
        total = int(request.query["bytes"])
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        written = 0
        try:
            while written < total:
                piece = PIECE[:min(len(PIECE), total - written)]
                await response.write(piece)
                written += len(piece)
                self.sent_bytes = written
        except (ConnectionError, asyncio.CancelledError):
            return response
        await response.write_eof()
        return response

    async def _huge_declared(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4", "Content-Length": str(10 ** 10)})
        await response.prepare(request)
        await response.write(b"\0" * 1024)
        return response

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(600):
                await response.write(b"\0")
                await asyncio.sleep(0.1)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    async def _stall(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4", "Content-Length": "1000000"})
        await response.prepare(request)
        await response.write(b"\0" * 10)
        await asyncio.sleep(60)
        return response

    async def _gzip(self, request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(self.clip), headers={"Content-Type": "video/mp4",
                                                                    "Content-Encoding": "gzip"})

    async def _lying_length(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Says Content-Length: 1000 and also Transfer-Encoding: chunked, then streams 50 MB in chunks."""
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 1000\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(200):
                writer.write(f"{len(PIECE):x}\r\n".encode() + PIECE + b"\r\n")
                await writer.drain()
                self.sent_bytes += len(PIECE)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
