"""The input's frame rate and frame times, from the container's declarations checked against the timestamps.

Containers declare a rate in several places (ffmpeg's ``r_frame_rate``, the average rate, the
stream's time base) and the decoder hands each frame a timestamp. Neither is trustworthy alone:

- AVI has no presentation times, so frames of a stream with B-frames come out of the decoder with
  their *decoding* stamps (1, 3, 4, 2, 6, 5 …): in presentation order, labelled out of order.
  Sorted, they are the declared grid again. Read unsorted, they looked like repeats and like
  24.065 fps for a 23.976 fps clip (the span of the first and last stamp, one frame short).
- A phone's variable-rate clip declares some rate and its timestamps tell the truth.
- An average rate is derived from the duration and is off by a frame's share on short clips.

So the timestamps are sorted first (the k-th decoded frame takes the k-th smallest stamp), then the
declared rates are tried in order: the first whose grid ``k / fps`` every frame sits on (within the
container's rounding) is the rate, and the frames get exactly those times. When none fits, a common
rate (23.976, 25, 29.97, 30, 60 …) whose grid fits is used. Otherwise the stream is variable-rate:
frames keep their real (sorted) times, and the nominal rate (what ``--multi`` multiplies and what a
caption names) is the typical frame interval where that is a common rate, else a declared rate whose
period divides every gap (a recorder that left frames out), else the mean rate.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from .errors import BadInputError
from .options import Limits

#: A stream is constant-rate when every timestamp is within this much of ``k / fps``
#: (containers round timestamps to their time base, e.g. whole milliseconds in Matroska).
CFR_TOLERANCE_S = Fraction(3, 2000)
#: The rates cameras, editors and screen recorders write, NTSC variants as exact fractions.
COMMON_RATES: tuple[Fraction, ...] = tuple(sorted({
    Fraction(rate) for rate in (
        8, 10, 12, Fraction(25, 2), 15, 16, 18, 20, Fraction(24000, 1001), 24, 25, Fraction(30000, 1001), 30,
        48, 50, Fraction(60000, 1001), 60, 72, 90, 100, Fraction(120000, 1001), 120, 144, 240,
    )
}))
#: A typical frame interval within this share of a common rate's period is that rate.
GRID_SNAP_SHARE = 0.015
#: A declared rate this close to a common one is that rate, stored rounded.
RATE_ROUNDING_SHARE = 1e-4


@dataclass(frozen=True)
class FrameTiming:
    """Frame times of a decoded stream and its rate."""

    #: Seconds from the first frame, one per decoded frame in decode order; non-decreasing.
    times: tuple[Fraction, ...]
    #: The nominal rate: the stream's exact rate when constant, a typical one when variable.
    fps: Fraction
    constant_rate: bool
    #: Where the rate came from: "declared", "common rate" (a grid the container did not name), or for
    #: variable rate "typical interval", "declared grid" (a declared rate with frames left out), "mean".
    source: str


def plausible_rates(rates: Sequence[Fraction | None], limits: Limits) -> tuple[Fraction, ...]:
    """The distinct rates of ``rates`` within the limits, in order."""
    kept: list[Fraction] = []
    for rate in rates:
        if rate is not None and rate > 0 and limits.min_fps <= rate <= limits.max_fps and rate not in kept:
            kept.append(Fraction(rate))
    return tuple(kept)


def sorted_times(raw: Sequence[Fraction | None]) -> list[Fraction | None]:
    """The stamps in ascending order on the frames that have one (decode order is presentation order)."""
    stamps = iter(sorted(t for t in raw if t is not None))
    return [None if t is None else next(stamps) for t in raw]


def on_grid(relative: Sequence[Fraction | None], fps: Fraction, tolerance: Fraction = CFR_TOLERANCE_S) -> bool:
    """Every known time is within ``tolerance`` of ``k / fps`` for its frame number ``k``."""
    return all(t is None or abs(t - Fraction(k) / fps) <= tolerance for k, t in enumerate(relative))


def gaps_on_period(relative: Sequence[Fraction], fps: Fraction, tolerance: Fraction = CFR_TOLERANCE_S) -> bool:
    """Every time is a whole number of ``1 / fps`` periods (a constant-rate stream with frames dropped)."""
    return all(abs(t * fps - round(t * fps)) / fps <= tolerance for t in relative)


def snapped(rate: Fraction, share: float = GRID_SNAP_SHARE) -> Fraction | None:
    """The common rate within ``share`` of ``rate``, if there is one."""
    nearest = min(COMMON_RATES, key=lambda common: abs(common - rate))
    return nearest if abs(nearest - rate) <= nearest * Fraction(share) else None


def read_timing(raw: Sequence[Fraction | None], declared: Sequence[Fraction], limits: Limits,
                name: str) -> FrameTiming:
    """Frame times and rate from the decoded stamps ``raw`` (None: no stamp) and the declared rates.

    ``declared`` are the container's plausible rates, most trusted first (see :func:`plausible_rates`).
    """
    ordered = sorted_times(raw)
    known = [t for t in ordered if t is not None]
    origin = known[0] if known else Fraction(0)
    relative = [None if t is None else t - origin for t in ordered]
    for fps in declared:
        if on_grid(relative, fps):
            # A container may store the rate itself rounded (Matroska: 19001/317 for 60000/1001).
            exact = snapped(fps, RATE_ROUNDING_SHARE)
            fps = exact if exact is not None and on_grid(relative, exact) else fps
            return FrameTiming(grid(len(raw), fps), fps, True, "declared")
    span = known[-1] - origin if known else Fraction(0)
    if span <= 0:
        if declared:  # no usable stamps: the declared grid is all there is
            return FrameTiming(grid(len(raw), declared[0]), declared[0], True, "declared")
        raise BadInputError.said("{name}: the frame rate is missing or implausible and the timestamps do not tell it",
                                 name=name)
    first_known = next(k for k, t in enumerate(relative) if t is not None)
    last_known = max(k for k, t in enumerate(relative) if t is not None)
    mean = Fraction(last_known - first_known) / span
    common = snapped(mean)
    if common is not None and on_grid(relative, common):
        return FrameTiming(grid(len(raw), common), common, True, "common rate")
    known_relative = [t for t in relative if t is not None]
    nominal, source = variable_rate(known_relative, declared, mean)
    if not limits.min_fps <= nominal <= limits.max_fps:
        raise BadInputError.said("{name}: the timestamps are implausible (no usable frame rate)", name=name)
    # Variable rate: real timestamps; frames without one take the nominal spacing after the previous.
    times: list[Fraction] = []
    for t in relative:
        times.append(t if t is not None else (times[-1] + 1 / nominal if times else Fraction(0)))
    return FrameTiming(tuple(times), nominal, False, source)


def grid(count: int, fps: Fraction) -> tuple[Fraction, ...]:
    return tuple(Fraction(k) / fps for k in range(count))


def variable_rate(relative: Sequence[Fraction], declared: Sequence[Fraction], mean: Fraction) -> tuple[Fraction, str]:
    """The nominal rate of a variable-rate stream and where it came from.

    The typical interval first (the median gap, then the mean of the gaps near it, which averages a
    phone's jitter away), if it is a common rate; then a declared rate whose period divides every
    gap (a recorder that left frames out); then the mean rate.
    """
    intervals = [b - a for a, b in zip(relative, relative[1:]) if b > a]
    if intervals:
        median = Fraction(statistics.median(intervals))
        usual = [gap for gap in intervals if median / 2 <= gap <= median * 3 / 2]
        for typical in (1 / median, len(usual) / sum(usual, Fraction(0))):
            common = snapped(typical)
            if common is not None:
                return common, "typical interval"
    for fps in declared:
        # (a millisecond time base's 1000 "fps" divides every gap too: only camera rates count)
        if fps <= COMMON_RATES[-1] and gaps_on_period(relative, fps):
            return fps, "declared grid"
    return mean.limit_denominator(10**6), "mean"


def looks_truncated(decoded: int, span_s: float, declared_frames: int | None, declared_duration_s: float | None,
                    fps: Fraction, share: float) -> bool:
    """Fewer frames than declared *and* the frames end early: a file cut short.

    Sparse AVIs (dropped frames left out, the index still counting them) have few frames over the
    whole declared duration: not truncated.
    """
    if not declared_frames or decoded >= declared_frames * share:
        return False
    if declared_duration_s is None:
        return True
    return span_s + float(1 / fps) < declared_duration_s * share
