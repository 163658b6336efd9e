"""What an input file is, checked before any expensive work; refuses hostile or oversized input.

:func:`probe` reads container metadata only. The per-frame truth (timestamps, rotation, repeats,
cuts) comes from the scan in :mod:`interpolation.analysis`, which decodes every frame.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error

from .errors import BadInputError, LimitExceededError
from .ffmpeg_binary import SAFE_INPUT_OPTIONS
from .frame_rate import COMMON_RATES, plausible_rates
from .options import Limits


@dataclass(frozen=True)
class VideoInfo:
    """Container-level facts about the input's first video stream."""

    path: Path
    container: str
    codec: str
    coded_width: int
    coded_height: int
    #: The rate the container declares (None when missing or implausible).
    declared_fps: Fraction | None
    #: Frame count / duration the container declares (None when unknown); hints only.
    declared_frames: int | None
    declared_duration_s: float | None
    has_audio: bool
    #: Start of the whole file in seconds: ffmpeg's command line measures input times from here.
    file_start_s: float
    #: Every plausible rate the container states, most trusted first: ffmpeg's r_frame_rate, the
    #: average rate, its guess, and the stream's time base where that is a frame period (AVI).
    #: The scan keeps the first one the timestamps agree with (:mod:`interpolation.frame_rate`).
    declared_rates: tuple[Fraction, ...] = ()


@contextlib.contextmanager
def open_container(path: Path) -> Iterator[av.container.InputContainer]:
    """Open untrusted ``path`` with PyAV, restricted to local files and allowed demuxers."""
    if not path.exists():
        raise BadInputError.said("{name}: file not found", name=path.name)
    if not path.is_file():
        raise BadInputError.said("{name}: not a regular file", name=path.name)
    if path.stat().st_size == 0:
        raise BadInputError.said("{name}: the file is empty (0 bytes)", name=path.name)
    try:
        container = av.open(str(path), mode="r", options=dict(SAFE_INPUT_OPTIONS))
    except av.error.PermissionError:
        raise BadInputError.said("{name}: permission denied", name=path.name) from None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        raise BadInputError.said(
            "{name}: not a video file that can be read (unknown, damaged or disallowed format)", name=path.name
        ) from None
    try:
        yield container
    finally:
        container.close()


def video_stream_of(container: av.container.InputContainer, name: str) -> av.video.stream.VideoStream:
    """The first real video stream (cover art in audio files does not count)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    if container.streams.audio:
        raise BadInputError.said("{name}: this is an audio-only file; send a video", name=name)
    raise BadInputError.said("{name}: the file contains no video stream", name=name)


def plausible_fps(rate: Fraction | None, limits: Limits) -> Fraction | None:
    if rate is None or rate <= 0:
        return None
    return Fraction(rate) if limits.min_fps <= rate <= limits.max_fps else None


def probe(path: Path, limits: Limits) -> VideoInfo:
    """Read metadata of ``path`` and refuse what cannot or must not be processed."""
    path = Path(path)
    with open_container(path) as container:
        stream = video_stream_of(container, path.name)
        codec_context = stream.codec_context
        if codec_context is None or codec_context.codec is None or not codec_context.codec.name:
            raise BadInputError.said("{name}: the video codec cannot be decoded", name=path.name)
        width, height = codec_context.width, codec_context.height
        if width <= 0 or height <= 0:
            raise BadInputError.said("{name}: the video has no picture size (damaged file?)", name=path.name)
        if width * height > limits.max_pixels:
            raise LimitExceededError.said(
                "{name}: {width}×{height} is too large (limit {megapixels} megapixels)", name=path.name,
                width=width, height=height, megapixels=f"{limits.max_pixels / 1e6:.1f}")
        declared_fps = plausible_fps(stream.average_rate, limits) or plausible_fps(stream.guessed_rate, limits)
        # AVI's time base is its frame period; elsewhere it is a clock (1/1000, 1/90000; GIF's 1/100).
        frame_period_rate = 1 / stream.time_base if stream.time_base and container.format.name == "avi" else None
        declared_rates = plausible_rates(
            [stream.base_rate, stream.average_rate, stream.guessed_rate,
             frame_period_rate if frame_period_rate is not None and frame_period_rate <= COMMON_RATES[-1] else None],
            limits)
        declared_duration_s = None
        if stream.duration is not None and stream.time_base is not None:
            declared_duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            declared_duration_s = container.duration / av.time_base
        if declared_duration_s is not None and declared_duration_s > limits.max_duration_s:
            raise LimitExceededError.said(
                "{name}: the video is {seconds} s long (limit {limit} s)", name=path.name,
                seconds=f"{declared_duration_s:.0f}", limit=f"{limits.max_duration_s:.0f}")
        declared_frames = stream.frames or None
        if declared_frames is not None and declared_frames > limits.max_input_frames:
            raise LimitExceededError.said(
                "{name}: the video has {frames} frames (limit {limit})", name=path.name, frames=declared_frames,
                limit=limits.max_input_frames)
        return VideoInfo(
            path=path,
            container=container.format.name,
            codec=codec_context.codec.name,
            coded_width=width,
            coded_height=height,
            declared_fps=declared_fps,
            declared_frames=declared_frames,
            declared_duration_s=declared_duration_s,
            has_audio=bool(container.streams.audio),
            file_start_s=(container.start_time or 0) / av.time_base,
            declared_rates=declared_rates,
        )
