"""Optical-flow interpolation: the classical fallback that needs no weights.

The method, for one pair of frames ``I0``, ``I1`` and any number of moments ``t``:

1. **Motion.** Dense optical flow both ways, ``F0→1`` and ``F1→0``, with OpenCV's DIS (Kroeger
   et al., "Fast Optical Flow using Dense Inverse Search", ECCV 2016) on each frame's luma at a
   working resolution. It is computed once per pair and reused for every ``t``; each frame's grey
   image is kept for the next pair.
2. **Reliability.** A forward-backward check (Sundaram, Brox and Keutzer, "Dense Point
   Trajectories by GPU-accelerated Large Displacement Optical Flow", ECCV 2010): where following
   ``F0→1`` and then ``F1→0`` does not come back to the start, the pixel is about to be hidden
   (occluded) or the flow is wrong there.
3. **Motion at t.** Every pixel ``p`` of ``I0`` moves along its flow to ``p + t·F0→1(p)``; every
   pixel ``q`` of ``I1`` comes from ``q + (1−t)·F1→0(q)``. Each pixel's velocity is splatted
   (bilinearly) at that place, reliable pixels outweighing unreliable ones, so a foreground object
   wins over the background it covers. Places no pixel reaches are filled from their surroundings
   by push-pull (Gortler et al., "The Lumigraph", 1996). How much of each frame landed on a place
   is that frame's visibility there: a region uncovered between the frames is reached only from
   ``I1``, a region being covered only from ``I0``.
4. **Synthesis.** Both frames are backward-warped to ``t`` along the velocity (``cv2.remap``) and
   mixed with weights ``(1−t)·visible0`` and ``t·visible1``; where neither frame can vouch for a
   pixel the weights fall back to the plain cross-fade ``(1−t, t)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .base import Frame, FrameInterpolator, check_pair

#: Flow is estimated on at most this many pixels (about 960×540); larger frames are shrunk first.
#: Motion fields are smooth, so 4K flow at full size would cost ~16× for no visible gain; the
#: warp itself always runs at full resolution.
WORKING_MAX_PIXELS = 960 * 540
#: Tiny frames are enlarged to at least this short side for flow: DIS needs a few patches of
#: image (it refuses anything under 12 px), and at this size the cost is negligible anyway.
MIN_WORKING_SIDE = 32
#: Working images up to this size (QVGA) get DIS's MEDIUM preset refined down to full resolution:
#: on tiny frames one pixel of error is a large part of an object and the cost is a few ms.
SMALL_WORKING_PIXELS = 320 * 240
#: Patch size and stride for those small images. DIS starts at the pyramid level where the image
#: is about four patches wide, so 6 px patches (instead of 8) start one level coarser and catch
#: motions a tiny frame's objects make relative to their size; stride 2 overlaps patches densely.
SMALL_PATCH_SIZE = 6
SMALL_PATCH_STRIDE = 2
#: Up to this size MEDIUM (finest level at half resolution) is still cheap; above it FAST.
MEDIUM_WORKING_PIXELS = 640 * 480
#: Forward-backward check of Sundaram et al.: the round trip F0→1 then F1→0 may miss its start by
#: ``FB_RELATIVE_TOLERANCE·(|F|² + |B|²) + FB_ABSOLUTE_TOLERANCE`` (px²) and still count as
#: consistent: flow errors grow with the motion, and sub-pixel noise is always there.
FB_RELATIVE_TOLERANCE = 0.01
FB_ABSOLUTE_TOLERANCE = 0.5
#: How much an inconsistent (probably occluded) pixel still counts when splatting its velocity:
#: it loses to any consistent pixel landing on the same place, but alone it still says something.
UNRELIABLE_PRIORITY = 0.02
#: Prior visibility given to both frames everywhere, so that where neither frame is seen landing
#: (or both equally) the mix is the cross-fade, and near-zero evidence never divides by zero.
VISIBILITY_PRIOR = 0.01
#: Resampling of the frames when warping them to t: bicubic keeps texture sharper than bilinear
#: where samples fall between pixels (about +0.3 dB on synthetic pans and moving objects).
WARP_INTERPOLATION = cv2.INTER_CUBIC
#: Push-pull stops coarsening once the field is this small (pixels on the short side).
PUSH_PULL_MIN_SIDE = 4
#: A coarser push-pull level counts as sure where a quarter of the pixels below it were (one fine
#: pixel of the four under a coarse one is enough to speak for it), as in Gortler et al.
PUSH_PULL_GAIN = 4.0
#: Pixel grids kept between calls: one at the working size and one at the frame size.
GRIDS_KEPT = 2
#: Smallest divisor for weighted means: avoids 0/0 where nothing landed (the result is unused there).
PRIORITY_EPSILON = 1e-6


@dataclass
class GreyFrame:
    """A copy of one input frame and its luma at the working resolution (reused across pairs)."""

    source: np.ndarray
    grey: np.ndarray


@dataclass
class PairMotion:
    """What the pair ``(first, second)`` yields once, for every ``t``: flows at working size.

    ``first``/``second`` are the frames' cached :class:`GreyFrame` entries.

    ``forward`` is F0→1 and ``backward`` F1→0 (``(h, w, 2)`` float32, working pixels);
    ``forward_priority``/``backward_priority`` are the splat priorities from the consistency check.
    """

    first: GreyFrame
    second: GreyFrame
    forward: np.ndarray
    backward: np.ndarray
    forward_priority: np.ndarray
    backward_priority: np.ndarray


def working_size(height: int, width: int) -> tuple[int, int]:
    """``(height, width)`` at which flow is estimated: the frame's, fitted to the pixel budget.

    Large frames shrink to :data:`WORKING_MAX_PIXELS`; tiny ones grow to
    :data:`MIN_WORKING_SIDE` (DIS refuses images smaller than a few patches).
    """
    scale = min(1.0, (WORKING_MAX_PIXELS / (height * width)) ** 0.5)
    scale = max(scale, MIN_WORKING_SIDE / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def dis_for(pixels: int) -> cv2.DISOpticalFlow:
    """A DIS estimator with the preset that suits a working image of ``pixels`` pixels."""
    if pixels <= SMALL_WORKING_PIXELS:
        dis = cv2.DISOpticalFlow_create(cv2.DISOpticalFlow_PRESET_MEDIUM)
        dis.setFinestScale(0)
        dis.setPatchSize(SMALL_PATCH_SIZE)
        dis.setPatchStride(SMALL_PATCH_STRIDE)
        return dis
    if pixels <= MEDIUM_WORKING_PIXELS:
        return cv2.DISOpticalFlow_create(cv2.DISOpticalFlow_PRESET_MEDIUM)
    return cv2.DISOpticalFlow_create(cv2.DISOpticalFlow_PRESET_FAST)


def pixel_grid(height: int, width: int) -> np.ndarray:
    """``(h, w, 2)`` float32: each pixel's own ``(x, y)``."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.dstack((xs, ys))


def consistency_priority(flow: np.ndarray, reverse: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Splat priority of each pixel: 1 where ``flow`` then ``reverse`` comes back, small where not."""
    landing = grid + flow
    reverse_there = cv2.remap(reverse, landing[..., 0], landing[..., 1], cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    miss = np.square(flow + reverse_there).sum(axis=2)
    tolerance = FB_RELATIVE_TOLERANCE * (np.square(flow).sum(axis=2) + np.square(reverse_there).sum(axis=2))
    consistent = miss <= tolerance + FB_ABSOLUTE_TOLERANCE
    height, width = flow.shape[:2]
    inside = ((landing[..., 0] >= 0) & (landing[..., 0] <= width - 1)
              & (landing[..., 1] >= 0) & (landing[..., 1] <= height - 1))
    # A pixel that leaves the frame cannot be checked, and nothing at t depends on it being right.
    return np.where(consistent | ~inside, np.float32(1.0), np.float32(UNRELIABLE_PRIORITY))


@dataclass
class Splat:
    """What forward splatting left on each pixel of the frame at ``t``."""

    #: Sum of ``priority × value`` over the pixels that landed here, ``(h, w, c)``.
    sums: np.ndarray
    #: Sum of their priorities: ``sums / priority`` is the priority-weighted mean value.
    priority: np.ndarray
    #: How many pixels landed here (bilinear shares): 0 in a hole, about 1 where one did.
    coverage: np.ndarray


def splat(positions: np.ndarray, values: np.ndarray, priorities: np.ndarray) -> Splat:
    """Bilinear forward splatting.

    Each pixel goes to the four pixels around its ``positions`` (``(h, w, 2)``, x then y), shared
    by bilinear weights, carrying ``values`` weighted by ``priorities``. What lands outside the
    frame is lost.
    """
    height, width = positions.shape[:2]
    size = height * width
    x, y = positions[..., 0].ravel(), positions[..., 1].ravel()
    left, top = np.floor(x), np.floor(y)
    right, bottom = x - left, y - top
    left, top = left.astype(np.int64), top.astype(np.int64)
    # The four neighbours as rows of (4, n) arrays: top-left, top-right, bottom-left, bottom-right.
    columns = np.stack((left, left + 1, left, left + 1))
    rows = np.stack((top, top, top + 1, top + 1))
    shares = np.stack(((1 - right) * (1 - bottom), right * (1 - bottom), (1 - right) * bottom, right * bottom))
    landed = (columns >= 0) & (columns < width) & (rows >= 0) & (rows < height)
    # Shares landing outside the frame all go to one extra bin, dropped afterwards.
    index = np.where(landed, rows * width + columns, size).ravel()

    def accumulate(weights: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=weights.ravel(), minlength=size + 1)[:size].reshape(height, width)

    coverage = accumulate(shares)
    shares *= priorities.reshape(1, size)
    priority = accumulate(shares)
    channels = values.reshape(size, -1)
    sums = np.dstack([accumulate(shares * channels[:, c]) for c in range(channels.shape[1])])
    return Splat(sums=sums.astype(np.float32), priority=priority.astype(np.float32),
                 coverage=coverage.astype(np.float32))


def motion_at(first: Splat, second: Splat) -> np.ndarray:
    """The velocity field at t from both frames' splats, holes filled by push-pull.

    Where pixels landed, their priority-weighted mean velocity (a foreground pixel outweighs the
    inconsistent background it is covering); coverage says how much to trust that mean.
    """
    priority = first.priority + second.priority
    mean = (first.sums + second.sums) / np.maximum(priority, PRIORITY_EPSILON)[..., None]
    return push_pull(mean, np.minimum(first.coverage + second.coverage, 1.0))


def push_pull(values: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Fill where ``confidence`` (0..1) is below 1 from coarser levels (push-pull).

    Push: a Gaussian pyramid of ``confidence × values`` and of ``confidence`` (each level a
    normalised convolution of the one below). Pull: each pixel keeps ``confidence`` of its own
    value and takes the rest from the level above, so holes of any size get the average of their
    surroundings and confident pixels stay as they are.
    """
    height, width = confidence.shape
    if min(height, width) <= PUSH_PULL_MIN_SIDE or confidence.min() >= 1.0:
        return values * confidence[..., None]
    weighted = values * confidence[..., None]
    coarse_confidence = cv2.pyrDown(confidence)
    coarse = cv2.pyrDown(weighted).reshape(*coarse_confidence.shape, -1)
    coarse /= np.maximum(coarse_confidence, PRIORITY_EPSILON)[..., None]
    filled = push_pull(coarse, np.minimum(coarse_confidence * PUSH_PULL_GAIN, 1.0))
    upsampled = cv2.pyrUp(filled, dstsize=(width, height)).reshape(values.shape)
    return weighted + upsampled * (1.0 - confidence[..., None])


class FlowInterpolator(FrameInterpolator):
    """DIS flow both ways once per pair, then splat, warp and mix for each ``t``.

    Consecutive pairs share a frame (b of a→b is a of b→c): the last two frames' grey images are
    kept, and the last pair's flows, in case its times come in several calls. Frames are
    recognised by content, not identity: a caller may reuse a buffer for a new frame.
    """

    name = "flow"
    display_name = "optical flow"

    def __init__(self) -> None:
        self._grey: list[GreyFrame] = []
        self._pair: PairMotion | None = None
        self._dis: tuple[int, cv2.DISOpticalFlow] | None = None
        self._grids: dict[tuple[int, int], np.ndarray] = {}

    def interpolate(self, frame0: Frame, frame1: Frame, times: Sequence[float]) -> list[Frame]:
        check_pair(frame0, frame1, times)
        if not times:
            return []
        motion = self.motion(frame0, frame1)
        return [self.frame_at(frame0, frame1, motion, t) for t in times]

    def motion(self, frame0: Frame, frame1: Frame) -> PairMotion:
        """Flows both ways and their reliability, computed once per pair (step 1 and 2)."""
        first, second = self.grey(frame0), self.grey(frame1)
        if self._pair is not None and self._pair.first is first and self._pair.second is second:
            return self._pair
        dis = self.estimator(first.grey.size)
        forward = dis.calc(first.grey, second.grey, None)
        backward = dis.calc(second.grey, first.grey, None)
        grid = self.grid(*first.grey.shape)
        self._pair = PairMotion(first, second, forward, backward,
                                consistency_priority(forward, backward, grid),
                                consistency_priority(backward, forward, grid))
        return self._pair

    def frame_at(self, frame0: Frame, frame1: Frame, motion: PairMotion, t: float) -> Frame:
        """The frame at ``t`` (step 3 at the working size, step 4 at the frame's)."""
        work_h, work_w = motion.forward.shape[:2]
        grid = self.grid(work_h, work_w)
        # Step 3: velocities (0→1, in working pixels) land where their pixels are at t.
        from_first = splat(grid + t * motion.forward, motion.forward, motion.forward_priority)
        from_second = splat(grid + (1.0 - t) * motion.backward, -motion.backward, motion.backward_priority)
        velocity = motion_at(from_first, from_second)
        # Each frame's say at t: it is visible there, and the sample it gives lies inside it (a
        # sample from outside is made up by the border).
        visible0 = np.minimum(from_first.coverage, 1.0) * inside(grid - t * velocity)
        visible1 = np.minimum(from_second.coverage, 1.0) * inside(grid + (1.0 - t) * velocity)
        weight0 = (1.0 - t) * (visible0 + VISIBILITY_PRIOR)
        weight1 = t * (visible1 + VISIBILITY_PRIOR)
        mix0 = weight0 / (weight0 + weight1)

        # Step 4: at full resolution, warp both frames to t and mix them.
        height, width = frame0.shape[:2]
        if (work_h, work_w) != (height, width):
            velocity = cv2.resize(velocity, (width, height), interpolation=cv2.INTER_LINEAR)
            velocity *= np.float32(width / work_w), np.float32(height / work_h)
            mix0 = cv2.resize(mix0, (width, height), interpolation=cv2.INTER_LINEAR)
        full_grid = self.grid(height, width)
        warped0 = cv2.remap(frame0, cv2.scaleAdd(velocity, -t, full_grid), None, WARP_INTERPOLATION,
                            borderMode=cv2.BORDER_REPLICATE)
        warped1 = cv2.remap(frame1, cv2.scaleAdd(velocity, 1.0 - t, full_grid), None, WARP_INTERPOLATION,
                            borderMode=cv2.BORDER_REPLICATE)
        return cv2.blendLinear(warped0, warped1, mix0, 1.0 - mix0)

    def grey(self, frame: Frame) -> GreyFrame:
        """The frame's luma at the working size, from the last two frames seen if it is one of them."""
        for entry in self._grey:
            if entry.source.shape == frame.shape and np.array_equal(entry.source, frame):
                return entry
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        work_h, work_w = working_size(*grey.shape)
        if (work_h, work_w) != grey.shape:
            shrinking = work_h * work_w < grey.size
            grey = cv2.resize(grey, (work_w, work_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        entry = GreyFrame(frame.copy(), grey)
        self._grey = [*self._grey[-1:], entry]
        return entry

    def estimator(self, pixels: int) -> cv2.DISOpticalFlow:
        """One DIS instance per working size (creating one allocates its buffers)."""
        if self._dis is None or self._dis[0] != pixels:
            self._dis = (pixels, dis_for(pixels))
        return self._dis[1]

    def grid(self, height: int, width: int) -> np.ndarray:
        """:func:`pixel_grid`, kept for the sizes in use (the working size and the frame size)."""
        key = (height, width)
        if key not in self._grids:
            if len(self._grids) >= GRIDS_KEPT:
                self._grids.clear()
            self._grids[key] = pixel_grid(height, width)
        return self._grids[key]

    def close(self) -> None:
        self._grey = []
        self._pair = None
        self._dis = None
        self._grids = {}


def inside(positions: np.ndarray) -> np.ndarray:
    """1.0 where ``positions`` (``(h, w, 2)``, x then y) lie within an ``h × w`` frame, else 0.0.

    Half a pixel of slack: the outermost pixels cover up to the frame's edge.
    """
    height, width = positions.shape[:2]
    x, y = positions[..., 0], positions[..., 1]
    return ((x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)).astype(np.float32)
