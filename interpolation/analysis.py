"""The scan: one cheap decoding pass that learns each frame's time, repeats and scene cuts
(found by :mod:`interpolation.shots`).

It decodes every frame at thumbnail size, so it also proves the file is decodable end to end
before the expensive model pass begins (and before any output exists).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .errors import BadInputError, CancelledError, LimitExceededError
from .frame_rate import looks_truncated, read_timing
from .options import Limits, SceneSettings
from .probe import VideoInfo
from .shots import SEAM_FRAMES, CutFinder, seam_is_cut
from .video_io import decode

#: Width of the analysis thumbnails (height follows the aspect ratio).
THUMBNAIL_WIDTH = 256
#: Repeats are judged block by block, so a small moving object is not lost in a frame-wide mean.
DUPLICATE_BLOCK = 8
#: Fewer decodable frames than this share of what the container declares means the file was cut short
#: (a truncated upload decodes "successfully" up to where its data ends).
TRUNCATED_SHARE = 0.9


@dataclass(frozen=True)
class SourceTimeline:
    """Per-frame facts of the input, all indexed by decoded frame number."""

    #: Seconds from the first frame; strictly increasing; exactly ``k / fps`` for CFR input.
    times: tuple[Fraction, ...]
    #: The nominal input rate (declared, or measured from timestamps when the declaration is unusable).
    fps: Fraction
    #: ``frame_count / fps`` for CFR; last time plus one nominal frame for VFR.
    duration: Fraction
    constant_rate: bool
    #: duplicate[k]: frame k repeats frame k-1 (or its timestamp does not advance).
    duplicate: tuple[bool, ...]
    #: cut_before[k]: frames k-1 and k belong to different shots.
    cut_before: tuple[bool, ...]
    #: The last and the first frame belong to different shots (checked only for loops, else False).
    loop_is_cut: bool
    width: int
    height: int
    #: Seconds from the start of the file to the first frame (to align the audio).
    first_frame_offset_s: float
    #: Set when the cuts were found without TransNetV2 (weights missing): says so for the result's notes.
    cut_note: str | None = None

    @property
    def frame_count(self) -> int:
        return len(self.times)


def max_block_difference(gray_a: np.ndarray, gray_b: np.ndarray) -> float:
    """Largest mean absolute difference over DUPLICATE_BLOCK-sized blocks (0-255 scale)."""
    diff = cv2.absdiff(gray_a, gray_b).astype(np.float32)
    h = diff.shape[0] - diff.shape[0] % DUPLICATE_BLOCK or diff.shape[0]
    w = diff.shape[1] - diff.shape[1] % DUPLICATE_BLOCK or diff.shape[1]
    bh, bw = min(DUPLICATE_BLOCK, h), min(DUPLICATE_BLOCK, w)
    blocks = diff[:h, :w].reshape(h // bh, bh, w // bw, bw).mean(axis=(1, 3))
    return float(blocks.max())


def scan(info: VideoInfo, limits: Limits, scene: SceneSettings,
         cancelled: Callable[[], bool] | None = None, *, loop: bool = False) -> SourceTimeline:
    """Decode ``info.path`` once at thumbnail size and describe every frame. ``loop``: also check
    whether the last frame cuts to the first (the seam a looping result crosses)."""
    raw_times: list[Fraction | None] = []
    duplicate: list[bool] = []
    cuts = CutFinder(scene.cut_threshold)
    head: list[np.ndarray] = []
    tail: deque[np.ndarray] = deque(maxlen=SEAM_FRAMES)
    prev_gray = None
    width = height = 0
    for frame in decode(info.path, width=THUMBNAIL_WIDTH):
        if cancelled is not None and cancelled():
            raise CancelledError("cancelled")
        if frame.index >= limits.max_input_frames:
            raise LimitExceededError.said("{name}: more than {limit} frames", name=info.path.name,
                                          limit=limits.max_input_frames)
        if frame.index == 0:
            portrait = frame.rotation in (90, 270)
            width, height = (info.coded_height, info.coded_width) if portrait else (info.coded_width, info.coded_height)
        gray = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
        cuts.push(frame.image)
        if loop:
            tail.append(frame.image)
            if len(head) < SEAM_FRAMES:
                head.append(frame.image)
        duplicate.append(prev_gray is not None and max_block_difference(prev_gray, gray) < scene.duplicate_threshold)
        raw_times.append(frame.time_s)
        prev_gray = gray
    if not raw_times:
        raise BadInputError.said("{name}: the video stream has no decodable frames", name=info.path.name)
    if len(raw_times) == 1:
        raise BadInputError.said("{name}: the video has a single frame; there is nothing to interpolate",
                                 name=info.path.name)

    timing = read_timing(raw_times, info.declared_rates, limits, info.path.name)
    times, fps, constant = list(timing.times), timing.fps, timing.constant_rate
    if looks_truncated(len(raw_times), float(times[-1]), info.declared_frames, info.declared_duration_s, fps,
                       TRUNCATED_SHARE):
        raise BadInputError.said(
            "{name}: the file is truncated (only {found} of {declared} frames are there)", name=info.path.name,
            found=len(raw_times), declared=info.declared_frames)
    found = set(cuts.finish())
    cut_before = [k in found for k in range(len(raw_times))]
    # A timestamp that does not advance is a repeat for planning purposes.
    for k in range(1, len(times)):
        if times[k] <= times[k - 1]:
            duplicate[k] = True
            cut_before[k] = False
            times[k] = times[k - 1] + Fraction(1, 10**6)
    duration = len(times) / fps if constant else times[-1] + 1 / fps
    if float(duration) > limits.max_duration_s:
        raise LimitExceededError.said(
            "{name}: the video is {seconds} s long (limit {limit} s)", name=info.path.name,
            seconds=f"{float(duration):.0f}", limit=f"{limits.max_duration_s:.0f}")
    first_time = min((t for t in raw_times if t is not None), default=Fraction(0))
    return SourceTimeline(
        times=tuple(times),
        fps=fps,
        duration=duration,
        constant_rate=constant,
        duplicate=tuple(duplicate),
        cut_before=tuple(cut_before),
        loop_is_cut=loop and seam_is_cut(list(tail), head, scene.cut_threshold, use_network=cuts.use_network),
        width=width,
        height=height,
        first_frame_offset_s=float(first_time) - info.file_start_s,
        cut_note=cuts.note,
    )
