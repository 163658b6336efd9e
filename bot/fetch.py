"""Fetch a URL a chat user sent to a local file, without letting the link reach into the server's network.

One job: :meth:`Fetcher.fetch` (``url`` → a file on disk) under these rules, each hop of a redirect
chain checked like the first:

* only ``http`` and ``https``; no user name or password in the link;
* the host name is resolved once (:func:`socket.getaddrinfo`) and the connection goes to that address
  only: the request's URL carries the checked address, while the ``Host`` header and TLS's SNI (and
  certificate check) keep the name, so a DNS answer that changes between check and connect (DNS
  rebinding) is never used;
* every address the name resolves to must be public (:func:`address_refusal`): loopback, private,
  shared (CGNAT), link-local, multicast, reserved, unspecified and documentation ranges of IPv4 and
  IPv6 are refused, and so are IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``,
  IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4 ``2002::/16``,
  Teredo) unless the embedded address is public itself. Numeric hosts are read as the C resolver reads
  them (``2130706433``, ``0x7f.1``, ``017700000001`` and ``127.1`` are all 127.0.0.1);
* at most :attr:`FetchLimits.max_redirects` redirects;
* the body is counted while it streams to disk and cut at :attr:`FetchLimits.max_bytes` whatever
  ``Content-Length`` said (a larger declared length is refused before reading); compressed bodies
  (``Content-Encoding``) are refused, so the count is the size on disk;
* a total time limit, a timeout per read, and a minimum average transfer rate after a grace period
  (a server that trickles bytes is cut off);
* no proxies, ``.netrc`` or cookies from the environment (``trust_env=False``).

What comes back is a file; it is never handed to ffmpeg as a URL (the caller probes the local file).
:class:`FetchRefused` carries a sentence for the user (no address, no path) and a ``detail`` for the log.

``allow_test_servers`` is the one exception to the address rules: exact ``(address, port)`` pairs a
test's own server listens on. It is a constructor argument only; no setting or chat text reaches it.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from . import i18n
from .i18n import N_

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``resolve(host, port)`` → every address the name stands for (the default asks the system resolver).
Resolver = Callable[[str, int], list[IPAddress]]

SCHEMES = frozenset({"http", "https"})
USER_AGENT = "smoothbot-fetch/1 (+video link)"

#: IPv4 ranges refused on top of what :mod:`ipaddress` calls non-global (kept explicit, so that the rule
#: does not depend on the Python version's tables).
BLOCKED_V4 = tuple(ipaddress.IPv4Network(net) for net in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32"))
BLOCKED_V6 = tuple(ipaddress.IPv6Network(net) for net in (
    "::/128", "::1/128", "::/96", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
    "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8"))
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class FetchRefused(Exception):
    """The link was not fetched. ``str()`` is a sentence for the user (English; :meth:`translated` in the
    current language), ``detail`` is for the log only. ``message`` is a catalogue id, ``values`` its fields."""

    def __init__(self, message: str, detail: str = "", **values: object) -> None:
        super().__init__(message)
        self.message = message
        self.values = values
        self.detail = detail or str(self)

    def __str__(self) -> str:
        return self.message.format(**self.values) if self.values else self.message

    def translated(self) -> str:
        text = i18n._(self.message)
        return text.format(**self.values) if self.values else text


NOT_ALLOWED_TEXT = N_("I can't fetch that link: it points to a private or local address.")
SCHEME_TEXT = N_("I can only fetch http:// and https:// links.")


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 200 * 1000 * 1000
    #: The whole fetch, redirects included (checked with each piece read; a read waits at most ``read_timeout_s``).
    total_timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 15.0
    #: Average bytes per second the body must keep after ``rate_grace_s`` seconds.
    min_rate_bytes_per_s: float = 50_000.0
    rate_grace_s: float = 5.0
    max_redirects: int = 3


@dataclass(frozen=True)
class Fetched:
    path: Path
    #: The URL that answered last (after redirects), its ``Content-Type`` (lower case, no parameters) and size.
    url: str
    content_type: str
    size: int


def embedded_v4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo's both)."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in NAT64 or int(address) >> 32 == 0:  # NAT64, and IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def address_refusal(address: IPAddress) -> str | None:
    """Why ``address`` must not be connected to (a phrase for the log), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "an IPv6 address with a zone"
        for inner in embedded_v4(address):
            if (why := address_refusal(inner)) is not None:
                return f"an IPv6 address embedding {inner} ({why})"
        blocked = next((net for net in BLOCKED_V6 if address in net), None)
    else:
        blocked = next((net for net in BLOCKED_V4 if address in net), None)
    if blocked is not None:
        return f"in {blocked}"
    for flag in ("is_loopback", "is_private", "is_link_local", "is_multicast", "is_reserved", "is_unspecified"):
        if getattr(address, flag):
            return flag.removeprefix("is_").replace("_", "-")
    if not address.is_global:
        return "not global"
    return None


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an address if it is one, read as the C resolver reads numbers (``0x7f.1``, ``2130706433``)."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:  # what getaddrinfo would do with a number: inet_aton's forms (one to four parts, hex, octal)
        return ipaddress.IPv4Address(socket.inet_aton(bare)) if bare else None
    except OSError:
        return None


def system_resolve(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def host_matches(host: str, domains: Iterable[str]) -> bool:
    """``host`` is one of ``domains`` or a subdomain of one (``cdn.example.com`` matches ``example.com``)."""
    host = host.rstrip(".").lower()
    return any(host == domain or host.endswith("." + domain) for domain in
               (domain.strip().strip(".").lower() for domain in domains) if domain)


class Fetcher:
    """Downloads links under the rules in this module's docstring (thread-safe; blocking: run it in a thread)."""

    def __init__(self, limits: FetchLimits | None = None, *, resolve: Resolver = system_resolve,
                 allow_test_servers: Iterable[tuple[str, int]] = (), verify: ssl.SSLContext | None = None) -> None:
        self.limits = limits or FetchLimits()
        self.resolve = resolve
        #: TLS certificates are checked against the link's host name; ``verify`` replaces the system's
        #: trusted roots (a test's own CA), it cannot turn the check off.
        self.verify: ssl.SSLContext | bool = verify if verify is not None else True
        self._test_servers = frozenset((ipaddress.ip_address(host), int(port)) for host, port in allow_test_servers)

    # --- one hop -------------------------------------------------------------------------------------

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """The parsed URL if its scheme and form are acceptable (no connection is made)."""
        try:
            parsed = httpx.URL(str(url)) if not isinstance(url, httpx.URL) else url
        except (httpx.InvalidURL, ValueError, TypeError):
            raise FetchRefused(N_("That link is not a valid web address."), f"unparsable URL {url!r}") from None
        if parsed.scheme not in SCHEMES:
            raise FetchRefused(SCHEME_TEXT, f"scheme {parsed.scheme!r}")
        if not parsed.raw_host:
            raise FetchRefused(N_("That link is not a valid web address."), "no host")
        if parsed.userinfo:
            raise FetchRefused(N_("I don't fetch links that carry a user name or password."), "userinfo in URL")
        return parsed

    def pinned_address(self, url: httpx.URL) -> IPAddress:
        """The one address this hop connects to: the host's literal address or its resolved one, checked."""
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = self.resolve(host.rstrip("."), port)
            except (OSError, UnicodeError) as error:
                raise FetchRefused(N_("I could not find the server of that link."), f"resolving {host}: {error}") from None
            if not addresses:
                raise FetchRefused(N_("I could not find the server of that link."), f"{host} has no address")
        for address in addresses:  # every answer must pass: a name with one private address is refused
            why = address_refusal(address)
            if why is not None and (address, port) not in self._test_servers:
                raise FetchRefused(NOT_ALLOWED_TEXT, f"{host} -> {address}: {why}")
        # The first IPv4 answer if there is one: a machine without IPv6 routes would fail on an AAAA first.
        return min(addresses, key=lambda address: address.version)

    def pinned_request(self, client: httpx.Client, url: httpx.URL, headers: dict[str, str]) -> httpx.Request:
        address = self.pinned_address(url)
        extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
        sent = httpx.Headers({"User-Agent": USER_AGENT})
        sent.update(headers)  # a caller's User-Agent, Referer…; the two below are always ours
        sent["Host"] = url.netloc.decode("ascii")
        sent["Accept-Encoding"] = "identity"
        return client.build_request("GET", url.copy_with(host=str(address)), headers=sent, extensions=extensions)

    # --- the whole fetch -----------------------------------------------------------------------------

    def client(self) -> httpx.Client:
        limits = self.limits
        timeout = httpx.Timeout(connect=limits.connect_timeout_s, read=limits.read_timeout_s,
                                write=limits.read_timeout_s, pool=limits.connect_timeout_s)
        return httpx.Client(follow_redirects=False, trust_env=False, timeout=timeout, verify=self.verify)

    def open(self, client: httpx.Client, url: str, headers: dict[str, str] | None = None,
             started: float | None = None) -> tuple[httpx.Response, httpx.URL]:
        """Follow redirects hop by hop (each one checked and pinned); the final response is open (streamed)."""
        started = time.monotonic() if started is None else started
        current = self.check_url(url)
        for hop in range(self.limits.max_redirects + 1):
            self.check_time(started)
            try:
                response = client.send(self.pinned_request(client, current, dict(headers or {})), stream=True)
            except httpx.TimeoutException:
                raise FetchRefused(N_("The server of that link did not answer in time."), f"timeout at {current}") from None
            except httpx.HTTPError as error:
                raise FetchRefused(N_("I could not connect to the server of that link."),
                                   f"{type(error).__name__} at {current}: {error}") from None
            if not response.is_redirect:
                return response, current
            location = response.headers.get("location", "")
            response.close()
            if hop == self.limits.max_redirects:
                break
            current = self.check_url(current.join(location))
        raise FetchRefused(N_("That link redirects too many times."), f"more than {self.limits.max_redirects} redirects")

    def fetch(self, url: str, target: Path, *, accept: Callable[[str], bool] | None = None,
              headers: dict[str, str] | None = None) -> Fetched:
        """Download ``url`` to ``target`` (removed again on any refusal). ``accept(content_type)`` may refuse
        the body by its type before it is read (it raises :class:`FetchRefused` or returns False)."""
        started = time.monotonic()
        try:
            with self.client() as client:
                response, final = self.open(client, url, headers, started=started)
                try:
                    content_type = self.check_response(response, accept)
                    size = self.save(response, target, started)
                finally:
                    response.close()
        except FetchRefused:
            target.unlink(missing_ok=True)
            raise
        except (httpx.HTTPError, OSError) as error:
            target.unlink(missing_ok=True)
            if isinstance(error, httpx.TimeoutException):
                raise FetchRefused(N_("The server of that link stopped sending."), f"read timeout: {error}") from None
            if isinstance(error, OSError) and not isinstance(error, (ConnectionError, TimeoutError)):
                raise  # our own disk (full, unwritable): the caller's problem, not the link's
            raise FetchRefused(N_("The download from that link broke off."), f"{type(error).__name__}: {error}") from None
        return Fetched(target, str(final), content_type, size)

    def check_response(self, response: httpx.Response, accept: Callable[[str], bool] | None) -> str:
        if response.status_code != 200:
            raise FetchRefused(N_("That link answered with an error (HTTP {status})."),
                               f"HTTP {response.status_code}", status=response.status_code)
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise FetchRefused(N_("That link sends a compressed file; I need the video file itself."),
                               f"Content-Encoding {encoding}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.limits.max_bytes:
            raise self.too_large(f"Content-Length {declared}")
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if accept is not None and not accept(content_type):
            raise FetchRefused(N_("That link does not lead to a video file."), f"Content-Type {content_type!r}")
        return content_type

    def too_large(self, detail: str, max_bytes: int | None = None) -> FetchRefused:
        limit = self.limits.max_bytes if max_bytes is None else max_bytes
        return FetchRefused(N_("The file at that link is larger than {limit} MB, the most I fetch."), detail,
                            limit=f"{limit / 1e6:.0f}")

    def save(self, response: httpx.Response, target: Path, started: float) -> int:
        """Stream the body to ``target``, counting every byte, watching the clock and the rate."""
        received = 0
        with target.open("wb") as file:
            for piece in self.body(response, started, self.limits.max_bytes):
                file.write(piece)
                received += len(piece)
        return received

    def body(self, response: httpx.Response, started: float, max_bytes: int) -> Iterator[bytes]:
        """The body's pieces as they arrive, cut at ``max_bytes``, the time limit and the minimum rate."""
        body_started = time.monotonic()
        received = 0
        for piece in response.iter_raw():  # as they arrive (a chunk size would wait for that many bytes)
            received += len(piece)
            if received > max_bytes:
                raise self.too_large(f"body passed {max_bytes} bytes", max_bytes)
            yield piece
            self.check_time(started)
            self.check_rate(received, time.monotonic() - body_started)

    def check_time(self, started: float) -> None:
        if time.monotonic() - started > self.limits.total_timeout_s:
            raise FetchRefused(N_("Fetching that link took too long."), f"over {self.limits.total_timeout_s:g} s")

    def check_rate(self, received: int, elapsed_s: float) -> None:
        if elapsed_s > self.limits.rate_grace_s and received / elapsed_s < self.limits.min_rate_bytes_per_s:
            raise FetchRefused(N_("The server of that link is sending too slowly."),
                               f"{received / elapsed_s:.0f} B/s after {elapsed_s:.1f} s")
