"""Final encodes that respect a size budget: GIF from the lossless intermediate, video re-encodes.

A chat platform refuses uploads above its limit, so the engine shrinks what matters least first:
bitrate and picture size for video (never the frame rate: smoothness is the point), and picture
size, colours, then frame rate for GIF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from . import ffmpeg_binary
from .child_process import CancelCheck, work_timeout
from .encoding import VideoFormat
from .errors import EncoderError, LimitExceededError
from .texts import Note

#: Container overhead and rate-control misses: aim this far under the budget.
VIDEO_BUDGET_SAFETY = 0.94
#: Fewer bits than this per pixel per frame look blocky; shrink the picture instead.
VIDEO_MIN_BITS_PER_PIXEL = 0.04
#: Below this video bitrate nothing watchable fits.
VIDEO_MIN_BITRATE = 60_000
#: Audio bitrate of a size-fitted video; a budget tight enough to starve the picture gets the lower one.
FIT_AUDIO_BITRATE = 128_000
FIT_TIGHT_AUDIO_BITRATE = 64_000
VIDEO_SCALES = (1.0, 0.85, 0.7, 0.6, 0.5, 0.4, 0.33, 0.25)
MAX_FIT_ATTEMPTS = 4

GIF_SCALES = (1.0, 0.85, 0.7, 0.6, 0.5, 0.4, 0.33, 0.25, 0.2)
GIF_COLOURS = (256, 128, 64, 32)
GIF_FRAME_RATES = (50, 30, 25, 20, 15, 12, 10)
GIF_MIN_WIDTH = 96
#: Aim this far under the budget after a miss (GIF size is only roughly proportional to pixels).
GIF_RETRY_MARGIN = 0.9
GIF_DITHER = "sierra2_4a"


@dataclass(frozen=True)
class GifSettings:
    scale: float
    fps: Fraction
    colours: int

    def size(self, width: int, height: int) -> tuple[int, int]:
        """Output picture size; only a real shrink rounds to even numbers."""
        return (width, height) if self.scale == 1 else (even(width * self.scale), even(height * self.scale))

    def cost(self, width: int, height: int) -> float:
        """A size estimate up to a constant: pixels per second times bits per pixel."""
        return (width * self.scale) * (height * self.scale) * float(self.fps) * math.log2(self.colours)


def even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def scale_filter(width: int, height: int, scale: float) -> str:
    return f"scale={even(width * scale)}:{even(height * scale)}:flags=lanczos"


def encode_gif(master: Path, output: Path, width: int, height: int, settings: GifSettings, workdir: Path, *,
               frames: int, cancelled: CancelCheck | None = None) -> int:
    """Two passes over the lossless master (``frames`` frames of ``width × height``): an optimal
    palette, then dithered frames. Returns bytes."""
    palette = workdir / "palette.png"
    out_w, out_h = settings.size(width, height)
    resample = f"fps={settings.fps.numerator}/{settings.fps.denominator},scale={out_w}:{out_h}:flags=lanczos"
    timeout_s = work_timeout(frames, width, height)  # each pass decodes the whole master
    ffmpeg_binary.run(ffmpeg_binary.base_args() + [
        "-i", str(master), "-vf", f"{resample},palettegen=max_colors={settings.colours}:stats_mode=full",
        "-frames:v", "1", "-update", "1", str(palette)], what="GIF palette pass", timeout_s=timeout_s,
        cancelled=cancelled)
    ffmpeg_binary.run(ffmpeg_binary.base_args() + [
        "-i", str(master), "-i", str(palette),
        "-lavfi", f"[0:v]{resample}[x];[x][1:v]paletteuse=dither={GIF_DITHER}:diff_mode=rectangle",
        "-loop", "0", "-f", "gif", str(output)], what="GIF encoder", timeout_s=timeout_s, cancelled=cancelled)
    return output.stat().st_size


def gif_candidates(fps: Fraction, width: int) -> list[GifSettings]:
    """Every allowed shrink, biggest first; equal cost prefers the higher frame rate."""
    rates = [fps] + [Fraction(r) for r in GIF_FRAME_RATES if r < fps]
    scales = [s for s in GIF_SCALES if width * s >= GIF_MIN_WIDTH] or [GIF_SCALES[0]]
    options = [GifSettings(s, r, c) for s in scales for r in rates for c in GIF_COLOURS]
    return sorted(options, key=lambda o: (-o.cost(1, 1), -o.fps))


def make_gif(master: Path, output: Path, width: int, height: int, fps: Fraction, max_bytes: int | None,
             workdir: Path, *, frames: int, cancelled: CancelCheck | None = None) -> tuple[GifSettings, list[str]]:
    """Encode the GIF from a master of ``frames`` frames, shrinking until it fits ``max_bytes``.
    Returns the settings and notes."""
    candidates = gif_candidates(fps, width)
    settings = candidates[0]
    while True:
        size = encode_gif(master, output, width, height, settings, workdir, frames=frames, cancelled=cancelled)
        if max_bytes is None or size <= max_bytes:
            break
        target = settings.cost(width, height) * max_bytes / size * GIF_RETRY_MARGIN
        smaller = [c for c in candidates if c.cost(width, height) <= target]
        if not smaller:
            raise LimitExceededError.said(
                "the GIF does not fit in {limit} MB even at its smallest ({size} MB); try a shorter clip or MP4 "
                "output", limit=f"{max_bytes / 1e6:.1f}", size=f"{size / 1e6:.1f}")
        settings = smaller[0]
    notes = []
    if settings != candidates[0]:
        out_w, out_h = settings.size(width, height)
        notes.append(Note("GIF shrunk to fit {limit} MB: {width}×{height}, {fps} fps, {colours} colours",
                          limit=f"{max_bytes / 1e6:.1f}", width=out_w, height=out_h, fps=f"{float(settings.fps):g}",
                          colours=settings.colours))
    return settings, notes


def fit_video(source: Path, output: Path, video_format: VideoFormat, *, max_bytes: int, duration_s: float,
              width: int, height: int, fps: Fraction, has_audio: bool, workdir: Path,
              cancelled: CancelCheck | None = None) -> list[str]:
    """Re-encode ``source`` (two passes where the encoder has them) at a bitrate, and if need be a
    picture size, that fits ``max_bytes``. Audio, subtitles and metadata come along.

    The caller keeps ``source`` when it already fits; returns notes for the caption.
    """
    safety = VIDEO_BUDGET_SAFETY
    audio_bitrate = FIT_AUDIO_BITRATE if has_audio else 0
    for _ in range(MAX_FIT_ATTEMPTS):
        total_bitrate = max_bytes * 8 * safety / duration_s
        if has_audio and total_bitrate - audio_bitrate < VIDEO_MIN_BITRATE * 4:
            audio_bitrate = FIT_TIGHT_AUDIO_BITRATE
        video_bitrate = int(total_bitrate - audio_bitrate)
        if video_bitrate < VIDEO_MIN_BITRATE:
            raise LimitExceededError.said(
                "the video cannot fit in {limit} MB at a watchable quality ({seconds} s is too long for that size)",
                limit=f"{max_bytes / 1e6:.1f}", seconds=f"{duration_s:.0f}")
        scale = next((s for s in VIDEO_SCALES
                      if video_bitrate / (width * s * height * s * float(fps)) >= VIDEO_MIN_BITS_PER_PIXEL),
                     VIDEO_SCALES[-1])
        encode_at_bitrate(source, output, video_format, video_bitrate, audio_bitrate, width, height, scale, workdir,
                          frames=math.ceil(duration_s * fps), cancelled=cancelled)
        size = output.stat().st_size
        if size <= max_bytes:
            notes = [Note("re-encoded at {bitrate} kbit/s to fit {limit} MB", bitrate=f"{video_bitrate / 1000:.0f}",
                          limit=f"{max_bytes / 1e6:.1f}")]
            if scale < 1:
                notes.append(Note("scaled to {width}×{height} to fit", width=even(width * scale),
                                  height=even(height * scale)))
            return notes
        safety *= max_bytes / size * VIDEO_BUDGET_SAFETY
    raise EncoderError(f"could not fit the video in {max_bytes / 1e6:.1f} MB after {MAX_FIT_ATTEMPTS} attempts")


def encode_at_bitrate(source: Path, output: Path, video_format: VideoFormat, video_bitrate: int, audio_bitrate: int,
                      width: int, height: int, scale: float, workdir: Path, *, frames: int,
                      cancelled: CancelCheck | None = None) -> None:
    # Per pass: decode at full size, encode at most that.
    timeout_s = work_timeout(frames, width, height, encoder=video_format.encoder)
    video_args = ["-map", "0:v:0"] + video_format.video_args(bitrate=video_bitrate) + ["-pix_fmt", "yuv420p"]
    if scale < 1:
        video_args += ["-vf", scale_filter(width, height, scale)]
    what = f"{video_format.container.upper()} size-fit encoder"
    passlog = workdir / "bitrate-pass"
    first_pass = video_format.two_pass_args(passlog, 1)
    if first_pass is not None:
        ffmpeg_binary.run(ffmpeg_binary.base_args() + ["-i", str(source)] + video_args + first_pass
                          + ["-an", "-sn", "-f", "null", "-"], what=f"{what} (pass 1)", timeout_s=timeout_s,
                          cancelled=cancelled)
    audio_args = (["-map", "0:a:0?"] + video_format.audio_args(str(audio_bitrate))) if audio_bitrate else ["-an"]
    ffmpeg_binary.run(ffmpeg_binary.base_args() + ["-i", str(source)] + video_args
                      + (video_format.two_pass_args(passlog, 2) or []) + audio_args
                      + ["-map", "0:s?", "-c:s", "copy", "-map_metadata", "0"] + video_format.container_args()
                      + [str(output)], what=what if first_pass is None else f"{what} (pass 2)", timeout_s=timeout_s,
                      cancelled=cancelled)
