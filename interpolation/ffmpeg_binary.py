"""The ffmpeg binary and the hardened options used whenever it (or PyAV) reads user input.

User files are untrusted: a "video" can be an HLS playlist or an ffconcat script that makes
the demuxer open URLs or other local files. Every open of user input is therefore restricted
to the local-file protocol and to an allow-list of container demuxers.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from .errors import EncoderError

#: Demuxers accepted for user input. Playlist-like demuxers (hls, concat, image2, ...) are absent
#: on purpose. Names match ffmpeg's demuxer names ("mov" covers mp4/m4v/3gp, "matroska" covers webm).
ALLOWED_DEMUXERS = ("mov", "matroska", "webm", "avi", "gif", "flv", "mpegts", "mpeg", "ogg", "asf", "nut")

#: AVFormatContext options applied to every user-input open (PyAV ``options=`` and ffmpeg input options).
SAFE_INPUT_OPTIONS: dict[str, str] = {
    "protocol_whitelist": "file",
    "format_whitelist": ",".join(ALLOWED_DEMUXERS),
}

#: ffmpeg's stderr is kept to this many trailing characters for error messages.
STDERR_TAIL_CHARS = 2000


@functools.cache
def ffmpeg_exe() -> str:
    """A system ``ffmpeg`` when one is on PATH, else the static binary of ``imageio-ffmpeg``."""
    system = shutil.which("ffmpeg")
    if system:
        return system
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def safe_input_args(path: Path) -> list[str]:
    """ffmpeg argv for reading one untrusted local file: whitelisted protocol and demuxers."""
    args: list[str] = []
    for key, value in SAFE_INPUT_OPTIONS.items():
        args += [f"-{key}", value]
    # "file:" stops a name such as "http:x.mp4" or "-y" from being read as a URL or option.
    return args + ["-i", f"file:{path}"]


def base_args() -> list[str]:
    """The start of every ffmpeg command: quiet, non-interactive, overwrite the (temporary) output."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]


def run(args: list[str], *, timeout: float | None = None, what: str = "ffmpeg") -> None:
    """Run ffmpeg to completion; raise :class:`EncoderError` with its last error lines on failure."""
    try:
        result = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EncoderError(f"{what} took longer than {timeout:.0f} s and was stopped") from None
    if result.returncode != 0:
        raise EncoderError(f"{what} failed: {stderr_summary(result.stderr)}")


def stderr_summary(stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text[-STDERR_TAIL_CHARS:].splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"


@functools.cache
def available_encoders() -> frozenset[str]:
    """Names of the encoders this ffmpeg binary was built with."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True, check=False
    )
    names = set()
    for line in result.stdout.splitlines():
        parts = line.split()
        # Encoder lines look like " V....D libx264  description"; the header ends with "------".
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)
