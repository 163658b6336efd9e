"""Frames in and out: PyAV decodes the (already probed) input, the ffmpeg binary encodes.

Everything streams: frames are decoded one at a time and piped to an ffmpeg subprocess, so
memory does not grow with clip length and no folder of frames is ever written (except when
the caller asked for PNG frames).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import av.error
import cv2
import numpy as np

from . import ffmpeg_binary
from .child_process import CancelCheck, ChildProcess, drain_timeout, work_timeout
from .encoding import VideoFormat, metadata_args, retimed_subtitle_filter, slowed_audio_filter, subtitle_encoder
from .errors import BadInputError, EncoderError
from .probe import open_container, video_stream_of
from .texts import Note


@dataclass(frozen=True)
class DecodedFrame:
    index: int
    #: Presentation time in seconds on the stream's clock (None when the file has no timestamp).
    time_s: Fraction | None
    #: Upright RGB picture (the container's rotation already applied), uint8 (H, W, 3).
    image: np.ndarray
    #: Rotation the container asked for, in degrees counter-clockwise (0, 90, 180, 270).
    rotation: int


def decode(path: Path, *, width: int | None = None) -> Iterator[DecodedFrame]:
    """Decode every frame of the first video stream, in presentation order.

    ``width`` scales frames down to that width (aspect kept) for cheap analysis.
    Raises :class:`BadInputError` when the stream is damaged or truncated.
    """
    with open_container(path) as container:
        stream = video_stream_of(container, path.name)
        stream.thread_type = "AUTO"
        index = 0
        try:
            for frame in container.decode(stream):
                rotation = int(round(frame.rotation or 0)) % 360
                size = {}
                if width is not None:
                    upright_w, upright_h = (frame.height, frame.width) if rotation in (90, 270) else (frame.width, frame.height)
                    scaled_h = max(1, round(upright_h * width / upright_w))
                    size = {"width": width, "height": scaled_h} if rotation in (0, 180) else {"width": scaled_h, "height": width}
                image = frame.to_ndarray(format="rgb24", **size)
                if rotation:
                    image = np.ascontiguousarray(np.rot90(image, rotation // 90))
                time_s = frame.pts * frame.time_base if frame.pts is not None and frame.time_base else None
                yield DecodedFrame(index=index, time_s=time_s, image=image, rotation=rotation)
                index += 1
        except av.error.FFmpegError:
            raise BadInputError.said(
                "{name}: the video is damaged or truncated (decoding failed after {frames} frames)", name=path.name,
                frames=index) from None


class FrameSink(Protocol):
    """Where output frames go. ``finish()`` completes the file; ``abort()`` removes partial output."""

    def write(self, frame: np.ndarray) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...


def even_padded(frame: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: repeat the last row/column instead of cropping or blurring."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if not (pad_h or pad_w):
        return frame
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


@dataclass(frozen=True)
class SourceTracks:
    """What a video result carries over from the original file besides the picture."""

    path: Path
    #: Seconds from the start of the file (as ffmpeg's command line counts) to the first video frame.
    offset_s: float
    audio: bool
    #: Codec names of the input's subtitle streams, in stream order.
    subtitles: tuple[str, ...] = ()
    #: Slow-motion factor: audio is slowed (pitch kept) and subtitle times stretched by it.
    slowdown: Fraction = Fraction(1)


def subtitle_codecs(path: Path) -> tuple[str, ...]:
    """Codec names of the subtitle streams in ``path`` (an already probed input)."""
    with open_container(path) as container:
        return tuple(stream.codec_context.name if stream.codec_context else "unknown"
                     for stream in container.streams.subtitles)


class FfmpegSink:
    """Pipes raw RGB frames into an ffmpeg process that writes ``output``.

    ffmpeg must take each frame within the deadline of one frame's work and finish within that of
    the frames it can still hold (:mod:`interpolation.child_process`); ``cancelled()`` is honoured
    while a frame is being piped in and while the encoder drains (and muxes audio and subtitles).
    """

    def __init__(self, output: Path, width: int, height: int, fps: Fraction, output_args: list[str],
                 input_args: list[str] | None = None, what: str = "video encoder",
                 cancelled: CancelCheck | None = None, encoder: str | None = None) -> None:
        self.output = output
        self.width, self.height = width, height
        self.encoder = encoder
        self.frames_written = 0
        argv = ffmpeg_binary.base_args() + [
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0",
        ] + (input_args or []) + output_args + [str(output)]
        self._child = ChildProcess(argv, what=what, cancelled=cancelled, stdin=True)

    def write(self, frame: np.ndarray) -> None:
        self._child.write(np.ascontiguousarray(frame).data,
                          timeout_s=work_timeout(1, self.width, self.height, encoder=self.encoder))
        self.frames_written += 1

    def finish(self) -> None:
        self._child.wait(timeout_s=drain_timeout(self.frames_written, self.width, self.height, encoder=self.encoder))
        self._child.close()

    def abort(self) -> None:
        self._child.kill()
        self.output.unlink(missing_ok=True)


def video_sink(output: Path, width: int, height: int, fps: Fraction, video_format: VideoFormat, *,
               source: SourceTracks, duration_s: float, cancelled: CancelCheck | None = None
               ) -> tuple[FfmpegSink, list[str]]:
    """A video file in ``video_format``, yuv420p BT.709; audio (slowed when asked), subtitles and
    metadata from ``source`` where the container can hold them. Returns the sink and notes.
    """
    # Input 1 is the original: -ss makes its time 0 the first video frame, so audio stays in sync.
    input_args = ["-ss", f"{max(0.0, source.offset_s):.6f}"] + ffmpeg_binary.safe_input_args(source.path)
    args = ["-map", "0:v:0"] + video_format.video_args() + [
        # Convert with BT.709 and say so (on the frames too: newer ffmpeg writes what the frames carry),
        # so players do not guess the colours.
        "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,"
               "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv",
        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
    ]
    if source.audio:
        args += ["-map", "1:a:0?"] + video_format.audio_args()
        if source.slowdown != 1:
            args += ["-af", slowed_audio_filter(source.slowdown)]
    notes: list[str] = []
    kept = 0
    for index, codec in enumerate(source.subtitles):
        encoder = subtitle_encoder(video_format.container, codec)
        if encoder is None:
            notes.append(Note("{codec} subtitles dropped ({container} cannot hold them)", codec=codec,
                              container=video_format.container.upper()))
            continue
        args += ["-map", f"1:s:{index}", f"-c:s:{kept}", encoder]
        if source.slowdown != 1:
            args += [f"-bsf:s:{kept}", retimed_subtitle_filter(source.slowdown)]
        kept += 1
    args += metadata_args(1) + ["-t", f"{duration_s:.6f}"] + video_format.container_args()
    sink = FfmpegSink(output, width + width % 2, height + height % 2, fps, args, input_args=input_args,
                      what=f"{video_format.container.upper()} encoder", cancelled=cancelled,
                      encoder=video_format.encoder)
    return sink, notes


def lossless_sink(output: Path, width: int, height: int, fps: Fraction,
                  cancelled: CancelCheck | None = None) -> FfmpegSink:
    """An intermediate, exactly lossless RGB file (the source of GIF palette passes)."""
    output_args = ["-map", "0:v:0", "-c:v", "ffv1", "-level", "3", "-g", "1", "-pix_fmt", "bgr0", "-f", "matroska"]
    return FfmpegSink(output, width, height, fps, output_args, what="intermediate encoder", cancelled=cancelled)


class PngDirectorySink:
    """Numbered lossless PNGs ``000000.png, 000001.png, …`` in a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=False)
        self._count = 0

    def write(self, frame: np.ndarray) -> None:
        target = self.directory / f"{self._count:06d}.png"
        if not cv2.imwrite(str(target), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
            raise EncoderError("could not write a PNG frame", detail=f"cv2.imwrite failed: {target}")
        self._count += 1

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def publish(temporary: Path, final: Path) -> None:
    """Move a finished temporary output into place atomically (same directory)."""
    if temporary.is_dir():
        if final.exists():
            if final.is_dir() and not any(final.iterdir()):
                final.rmdir()
            else:
                raise EncoderError("the output folder already exists and is not empty", detail=str(final))
    os.replace(temporary, final)
