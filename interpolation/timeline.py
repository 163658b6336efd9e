"""Output time ``i / fps_out`` → which input frames make it, and at what fraction ``t``.

The rules (exact and predictable):

* The output has ``round(duration × fps_out)`` frames; frame ``i`` sits at ``i / fps_out`` seconds
  from the first input frame, so audio stays in sync.
* An output time that hits an input frame exactly copies it bit for bit.
* Otherwise the two *key* frames that bracket the time are interpolated at
  ``t = (time - left) / (right - left)``. Repeated frames (animation on twos, short freezes)
  are not keys, so motion is interpolated across them by timestamp instead of stuttering.
* Across a scene cut nothing is morphed: the nearer frame is used.
* After the last frame: without loop the last frame is held; with loop the last frame is
  interpolated toward the first, so the clip repeats seamlessly.
* Slow motion by ``K`` samples the input ``K`` times more densely: output frame ``i`` shows the
  input at ``i / (fps_out × K)``, so the clip plays ``K`` times longer and every new frame is
  interpolated (the last input frame is held for its own slowed duration, as the original shows it).
* Cut mode ``fade`` cross-fades (a plain mix, no motion) across a cut instead of switching at
  the midpoint; the fade spans the one input-frame interval that contains the cut.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from fractions import Fraction

from .analysis import SourceTimeline
from .options import CutMode


@dataclass(frozen=True)
class OutputFrame:
    """One output frame: a copy of ``left`` (``right is None``), or ``left``→``right`` at ``t``."""

    #: The moment of the input this frame shows, in input seconds (output time ÷ slow-motion factor).
    time: Fraction
    left: int
    right: int | None = None
    t: float = 0.0
    #: A plain cross-fade instead of the model (across a scene cut in ``fade`` mode).
    fade: bool = False
    #: The input frame a viewer of the original sees at this moment (for before/after comparisons).
    held: int = 0

    @property
    def is_copy(self) -> bool:
        return self.right is None


@dataclass(frozen=True)
class Plan:
    frames: tuple[OutputFrame, ...]
    #: The output's frame rate (what the encoder is told).
    fps: Fraction
    #: Output length in seconds: the input's duration × ``slowmo``.
    duration: Fraction
    slowmo: Fraction
    cut_mode: CutMode
    key_frames: tuple[int, ...]
    scene_cuts: int
    duplicates: int

    @property
    def frame_count(self) -> int:
        return len(self.frames)


def output_frame_count(duration: Fraction, fps_out: Fraction) -> int:
    """``round(duration × fps_out)``, halves rounded up (never Python's round-half-even)."""
    return max(1, math.floor(duration * fps_out + Fraction(1, 2)))


def key_frames(source: SourceTimeline, max_duplicate_run: int) -> list[int]:
    """Frames that carry new content. A run of repeats longer than ``max_duplicate_run``
    is a deliberate freeze: its last frame becomes a key so the freeze is kept."""
    keys = [0]
    run = 0
    for k in range(1, source.frame_count):
        if not source.duplicate[k]:
            if run > max_duplicate_run:
                keys.append(k - 1)
            keys.append(k)
            run = 0
        else:
            run += 1
    if run > max_duplicate_run:
        keys.append(source.frame_count - 1)
    return keys


def plan(source: SourceTimeline, fps_out: Fraction, *, loop: bool, max_duplicate_run: int,
         slowmo: Fraction = Fraction(1), cut_mode: CutMode = "cut") -> Plan:
    """The output frames for ``source`` at ``fps_out``; output frame ``i`` shows input time ``i / (fps_out × slowmo)``."""
    if slowmo < 1:
        raise ValueError(f"slowmo must be at least 1, got {slowmo}")
    keys = key_frames(source, max_duplicate_run)
    key_times = [source.times[k] for k in keys]
    cut_prefix = [0]
    for flag in source.cut_before:
        cut_prefix.append(cut_prefix[-1] + flag)

    def cut_between(left: int, right: int) -> bool:
        return cut_prefix[right + 1] - cut_prefix[left + 1] > 0

    last = source.frame_count - 1
    sampling_rate = fps_out * slowmo
    frames: list[OutputFrame] = []
    for i in range(output_frame_count(source.duration * slowmo, fps_out)):
        time = Fraction(i) / sampling_rate
        held = bisect.bisect_right(source.times, time) - 1  # what the original shows now
        position = bisect.bisect_right(key_times, time) - 1  # last key at or before `time`
        left, left_time = keys[position], key_times[position]
        if time == left_time:
            frames.append(OutputFrame(time, left, held=held))
            continue
        if position + 1 < len(keys):
            right, right_time, is_cut = keys[position + 1], key_times[position + 1], cut_between(left, keys[position + 1])
        elif loop:
            right, right_time, is_cut = 0, source.duration, source.loop_is_cut
        else:
            frames.append(OutputFrame(time, last, held=held))  # hold the last frame
            continue
        t = float((time - left_time) / (right_time - left_time))
        if not is_cut:
            frames.append(OutputFrame(time, left, right, t, held=held))
        elif cut_mode == "fade":
            frames.append(OutputFrame(time, left, right, t, fade=True, held=held))
        else:
            frames.append(OutputFrame(time, left if t < 0.5 else right, held=held))
    return Plan(
        frames=tuple(frames),
        fps=fps_out,
        duration=source.duration * slowmo,
        slowmo=slowmo,
        cut_mode=cut_mode,
        key_frames=tuple(keys),
        scene_cuts=sum(source.cut_before),
        duplicates=sum(source.duplicate),
    )
