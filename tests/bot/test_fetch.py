"""The link fetcher (bot/fetch.py) against a real web server on 127.0.0.1 (tests/fakes/video_site.py),
reached only through the test-only allowance of that exact address and port; every refused case."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import subprocess
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.fetch import NOT_ALLOWED_TEXT, SCHEME_TEXT, FetchLimits, FetchRefused, Fetcher, address_refusal
from tests.fakes.video_site import VideoSite
from tests.media import make_testsrc


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    return make_testsrc(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=0.4).read_bytes()


@pytest.fixture
async def site(clip) -> AsyncIterator[VideoSite]:
    async with VideoSite(clip) as served:
        yield served


def fetcher_for(site: VideoSite, **limits) -> Fetcher:
    return Fetcher(FetchLimits(**limits), allow_test_servers=[site.address])


async def fetch(fetcher: Fetcher, url: str, target: Path):
    return await asyncio.to_thread(fetcher.fetch, url, target)


async def refused(fetcher: Fetcher, url: str, target: Path) -> FetchRefused:
    with pytest.raises(FetchRefused) as caught:
        await fetch(fetcher, url, target)
    assert not target.exists()  # nothing is left behind
    message = str(caught.value)
    assert "127.0.0.1" not in message and "Traceback" not in message and str(target) not in message
    return caught.value


async def test_a_video_on_the_allowed_test_server_is_fetched(site, clip, tmp_path):
    fetched = await fetch(fetcher_for(site), site.url("/clip.mp4"), tmp_path / "in.mp4")
    assert (tmp_path / "in.mp4").read_bytes() == clip
    assert fetched.size == len(clip) and fetched.content_type == "video/mp4"


async def test_the_name_is_resolved_once_and_the_connection_keeps_host_and_goes_to_that_address(site, clip, tmp_path):
    asked: list[str] = []

    def resolve(host: str, port: int):
        asked.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    fetcher = Fetcher(resolve=resolve, allow_test_servers=[site.address])
    await fetch(fetcher, site.url("/clip.mp4", host="videos.example"), tmp_path / "in.mp4")
    assert asked == ["videos.example"]
    assert site.requests[-1].host == f"videos.example:{site.port}"
    assert (tmp_path / "in.mp4").read_bytes() == clip


async def test_a_name_that_rebinds_to_a_private_address_between_hops_is_refused(site, tmp_path):
    answers = iter(["127.0.0.1", "10.0.0.7"])
    fetcher = Fetcher(resolve=lambda host, port: [ipaddress.ip_address(next(answers))],
                      allow_test_servers=[site.address])
    url = site.url("/redirect?to=/clip.mp4", host="rebind.example")
    error = await refused(fetcher, url, tmp_path / "in.mp4")
    assert str(error) == NOT_ALLOWED_TEXT and "10.0.0.7" in error.detail
    assert [seen.path for seen in site.requests] == ["/redirect?to=/clip.mp4"]


async def test_a_name_with_one_private_address_among_public_ones_is_refused(tmp_path):
    fetcher = Fetcher(resolve=lambda host, port: [ipaddress.ip_address("93.184.215.14"),
                                                  ipaddress.ip_address("192.168.1.20")])
    assert str(await refused(fetcher, "http://mixed.example/clip.mp4", tmp_path / "in.mp4")) == NOT_ALLOWED_TEXT


@pytest.mark.parametrize("url", [
    "http://localhost:{port}/clip.mp4", "http://LOCALHOST.:{port}/clip.mp4",
    "http://127.0.0.1:{other}/clip.mp4", "http://2130706433:{port}/clip.mp4", "http://0x7f.1:{port}/clip.mp4",
    "http://017700000001:{port}/clip.mp4", "http://127.1:{port}/clip.mp4", "http://0x7f000001:{port}/clip.mp4",
    "http://[::1]:{port}/clip.mp4", "http://[::ffff:127.0.0.1]:{port}/clip.mp4", "http://[::ffff:7f00:1]:{port}/",
    "http://[::127.0.0.1]:{port}/", "http://[64:ff9b::7f00:1]:{port}/", "http://[2002:7f00:1::1]:{port}/",
    "http://0.0.0.0:{port}/", "http://[::]:{port}/",
    "http://10.1.2.3/", "http://172.16.5.4/", "http://192.168.0.1/", "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://[fd00::1]/", "http://[fec0::1]/",
    "http://224.0.0.1/", "http://[ff02::1]/", "http://240.0.0.1/", "http://255.255.255.255/",
    "http://192.0.2.1/", "http://[2001:db8::1]/", "http://[::ffff:10.0.0.1]/", "http://[64:ff9b:1::a00:1]/",
])
async def test_loopback_private_and_reserved_addresses_are_refused_in_every_spelling(site, tmp_path, url):
    # A live server listens at these ports: a spelling that slipped through would be recorded there.
    url = url.format(port=site.port, other=site.raw_port)
    error = await refused(Fetcher(), url, tmp_path / "in.mp4")
    assert str(error) == NOT_ALLOWED_TEXT
    assert not [seen for seen in site.requests]  # refused before connecting


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/clip.mp4", "gopher://example.com/",
                                 "data:video/mp4;base64,AAAA", "javascript:alert(1)"])
async def test_schemes_other_than_http_and_https_are_refused(tmp_path, url):
    assert str(await refused(Fetcher(), url, tmp_path / "in.mp4")) == SCHEME_TEXT


async def test_credentials_in_a_link_are_refused(tmp_path):
    error = await refused(Fetcher(), "http://user:secret@example.com/clip.mp4", tmp_path / "in.mp4")
    assert "user name or password" in str(error)


async def test_a_redirect_from_the_allowed_server_to_loopback_is_refused(site, tmp_path):
    # The allowance is (127.0.0.1, site.port) only; the second server at raw_port would answer if reached.
    for target in (f"http://127.0.0.1:{site.raw_port}/clip.mp4", f"http://localhost:{site.raw_port}/clip.mp4",
                   f"http://2130706433:{site.raw_port}/", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/",
                   "file:///etc/passwd"):
        error = await refused(fetcher_for(site), site.url(f"/redirect?to={target}"), tmp_path / "in.mp4")
        assert str(error) in (NOT_ALLOWED_TEXT, SCHEME_TEXT)
    assert {seen.path.split("?")[0] for seen in site.requests} == {"/redirect"}


async def test_redirects_are_followed_up_to_the_limit_and_no_further(site, clip, tmp_path):
    await fetch(fetcher_for(site, max_redirects=3), site.url("/hops/2"), tmp_path / "in.mp4")  # 3 redirects
    assert (tmp_path / "in.mp4").read_bytes() == clip
    site.requests.clear()
    error = await refused(fetcher_for(site, max_redirects=3), site.url("/hops/3"), tmp_path / "again.mp4")
    assert str(error) == "That link redirects too many times."
    assert len(site.requests) == 4  # the first request and 3 redirects; the 4th redirect is not followed


async def test_a_body_over_the_cap_is_cut_while_streaming_without_content_length(site, tmp_path):
    error = await refused(fetcher_for(site, max_bytes=1_000_000), site.url("/big?bytes=50000000"),
                          tmp_path / "in.mp4")
    assert "larger than 1 MB" in str(error)
    await asyncio.sleep(0.2)
    assert site.sent_bytes < 20_000_000  # the client stopped reading long before the server's 50 MB


async def test_a_body_over_the_cap_is_cut_while_content_length_claims_less(site, tmp_path):
    fetcher = Fetcher(FetchLimits(max_bytes=2_000_000), allow_test_servers=[("127.0.0.1", site.raw_port)])
    error = await refused(fetcher, f"http://127.0.0.1:{site.raw_port}/lying-length", tmp_path / "in.mp4")
    assert "larger than 2 MB" in str(error) or "broke off" in str(error)
    assert site.sent_bytes < 40_000_000


async def test_a_declared_length_over_the_cap_is_refused_before_reading(site, tmp_path):
    error = await refused(fetcher_for(site, max_bytes=1_000_000), site.url("/huge-declared"), tmp_path / "in.mp4")
    assert "larger than 1 MB" in str(error)


async def test_a_server_that_trickles_bytes_is_cut_off(site, tmp_path):
    started = time.monotonic()
    error = await refused(fetcher_for(site, min_rate_bytes_per_s=1000, rate_grace_s=0.5), site.url("/trickle"),
                          tmp_path / "in.mp4")
    assert str(error) == "The server of that link is sending too slowly."
    assert time.monotonic() - started < 10


async def test_a_server_that_stops_sending_times_out(site, tmp_path):
    error = await refused(fetcher_for(site, read_timeout_s=0.5), site.url("/stall"), tmp_path / "in.mp4")
    assert str(error) == "The server of that link stopped sending."


async def test_the_total_time_limit_holds_even_above_the_minimum_rate(site, tmp_path):
    error = await refused(fetcher_for(site, total_timeout_s=1.0, min_rate_bytes_per_s=1, rate_grace_s=0),
                          site.url("/trickle"), tmp_path / "in.mp4")
    assert str(error) == "Fetching that link took too long."


async def test_a_compressed_body_is_refused(site, tmp_path):
    error = await refused(fetcher_for(site), site.url("/gzip.mp4"), tmp_path / "in.mp4")
    assert "compressed" in str(error)


async def test_an_error_status_is_refused_and_a_closed_port_says_it_could_not_connect(site, tmp_path):
    error = await refused(fetcher_for(site), site.url("/missing.mp4"), tmp_path / "in.mp4")
    assert str(error) == "That link answered with an error (HTTP 404)."
    closed = Fetcher(allow_test_servers=[("127.0.0.1", 9)])  # the discard port: nothing listens on it
    assert str(await refused(closed, "http://127.0.0.1:9/", tmp_path / "in.mp4")) == (
        "I could not connect to the server of that link.")


async def test_a_type_check_refuses_a_web_page_before_its_body_is_read(site, tmp_path):
    fetcher = fetcher_for(site)
    with pytest.raises(FetchRefused, match="does not lead to a video"):
        await asyncio.to_thread(fetcher.fetch, site.url("/page.html"), tmp_path / "in.mp4",
                                accept=lambda kind: kind.startswith("video/"))
    assert not (tmp_path / "in.mp4").exists()


async def test_a_large_download_streams_to_disk_in_bounded_memory(site, tmp_path):
    size = 120 * 1000 * 1000
    tracemalloc.start()
    try:
        fetched = await fetch(fetcher_for(site, max_bytes=size + 1), site.url(f"/big?bytes={size}"),
                              tmp_path / "big.mp4")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fetched.size == size == (tmp_path / "big.mp4").stat().st_size
    print(f"fetch: peak Python allocations {peak / 1e6:.2f} MB while fetching {size / 1e6:.0f} MB")
    assert peak < 16 * 1024 * 1024, f"peak Python allocations {peak / 1e6:.1f} MB while fetching {size / 1e6:.0f} MB"


def test_public_addresses_pass_and_embedded_private_ones_do_not():
    for public in ("93.184.215.14", "2606:4700:4700::1111", "2002:5db8:d70e::1"):
        assert address_refusal(ipaddress.ip_address(public)) is None, public
    for private in ("::ffff:192.168.1.1", "2002:c0a8:101::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"):
        assert address_refusal(ipaddress.ip_address(private)) is not None, private


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    """A self-signed certificate for the name videos.example (made by the openssl command)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=videos.example", "-addext", "subjectAltName=DNS:videos.example"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


async def test_https_connects_to_the_pinned_address_and_checks_the_certificate_against_the_name(
        clip, certificate, tmp_path):
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusted = ssl.create_default_context(cafile=str(cert))
    async with VideoSite(clip, ssl_context=served) as site:
        fetcher = Fetcher(resolve=lambda host, port: [ipaddress.ip_address("127.0.0.1")],
                          allow_test_servers=[site.address], verify=trusted)
        await fetch(fetcher, site.url("/clip.mp4", host="videos.example"), tmp_path / "in.mp4")
        assert (tmp_path / "in.mp4").read_bytes() == clip
        assert site.requests[-1].host == f"videos.example:{site.port}"
        # The same address under another name, or as a number: the certificate does not match, so no fetch.
        for url in (site.url("/clip.mp4", host="other.example"), site.url("/clip.mp4")):
            error = await refused(fetcher, url, tmp_path / "in.mp4")
            assert str(error) == "I could not connect to the server of that link." and "CERTIFICATE" in error.detail
    assert len(site.requests) == 1
