"""The ffmpeg binary and the hardened options used whenever it (or PyAV) reads user input.

User files are untrusted: a "video" can be an HLS playlist or an ffconcat script that makes
the demuxer open URLs or other local files. Every open of user input is therefore restricted
to the local-file protocol and to an allow-list of container demuxers.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from . import child_process
from .child_process import CancelCheck

#: Demuxers accepted for user input. Playlist-like demuxers (hls, concat, image2, ...) are absent
#: on purpose. Names match ffmpeg's demuxer names ("mov" covers mp4/m4v/3gp, "matroska" covers webm).
ALLOWED_DEMUXERS = ("mov", "matroska", "webm", "avi", "gif", "flv", "mpegts", "mpeg", "ogg", "asf", "nut")

#: AVFormatContext options applied to every user-input open (PyAV ``options=`` and ffmpeg input options).
SAFE_INPUT_OPTIONS: dict[str, str] = {
    "protocol_whitelist": "file",
    "format_whitelist": ",".join(ALLOWED_DEMUXERS),
}


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


def run(args: list[str], *, timeout_s: float, what: str, cancelled: CancelCheck | None = None) -> None:
    """Run ffmpeg to completion within ``timeout_s`` (see :func:`child_process.work_timeout`).

    Raises :class:`~interpolation.errors.EncoderError` on failure (ffmpeg's stderr in its ``detail``),
    :class:`~interpolation.errors.EncoderTimeoutError` past the deadline and
    :class:`~interpolation.errors.CancelledError` as soon as ``cancelled()`` is true; the process is
    killed in each case. ``what`` names the step for people ("GIF encoder").
    """
    child_process.run(args, what=what, timeout_s=timeout_s, cancelled=cancelled)


@functools.cache
def available_encoders() -> frozenset[str]:
    """Names of the encoders this ffmpeg binary was built with."""
    listing = child_process.run([ffmpeg_exe(), "-hide_banner", "-encoders"], what="ffmpeg encoder list",
                                timeout_s=child_process.QUERY_TIMEOUT_S)
    names = set()
    for line in listing.splitlines():
        parts = line.split()
        # Encoder lines look like " V....D libx264  description"; the header ends with "------".
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def stderr_summary(stderr: bytes | str) -> str:
    """ffmpeg's last non-empty stderr line (for logs and ``detail``, never a user message)."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text[-child_process.STDERR_TAIL_CHARS:].splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"
