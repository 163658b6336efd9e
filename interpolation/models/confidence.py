"""Lean toward the cross-fade where the model's own warps say the motion explains little.

RIFE's in-between frame is frame 0 and frame 1 each warped to the moment ``t`` along the flows the
network found, mixed by its mask. Two checks read those warps (taken with the flow before the last
block, :meth:`~.rife.IFNet.forward`'s ``flows``):

- Per pixel: where both warps agree with the cross-fade to within :attr:`Confidence.agree` × the
  frames' noise (the larger difference of the two, mean over the channels, smoothed over 3 × 3), the
  motion there changed nothing beyond noise, and the cross-fade, which averages the noise of both
  frames and resamples nothing, is taken: fully up to that bound, not at all from twice it.
- Per pair: where the warped frames still differ by more than :attr:`Confidence.lean_from` of what the
  unwarped frames differ (the flow removed less than 15 % of the difference), no motion the network
  found explains the change (foliage, noise, light), and the frame leans to the cross-fade, fully
  from :attr:`Confidence.lean_to` on.

The noise σ is estimated from each frame alone (Immerkær's Laplacian-difference estimator), so
moving content does not inflate it. The bounds were chosen on the bench's tuning clips only
(``bench/cases.py``, ``TUNING_CLIPS``; ``bench/REPORT.md``, "Default vs published forward").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .base import Frame

#: Immerkær's noise-estimation kernel: the difference of two Laplacians, blind to planes and ramps.
NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
#: Noise σ never counts as less than this (8-bit levels): rounding alone leaves about 0.3.
MIN_NOISE = 0.5


@dataclass(frozen=True)
class Confidence:
    """Bounds of :func:`toward_blend`."""

    #: Warps within this many noise σ of the cross-fade: the cross-fade (0 from twice it).
    agree: float = 4.0
    #: Warped difference / unwarped difference from which a pair leans to the cross-fade …
    lean_from: float = 0.85
    #: … and at which it is the cross-fade.
    lean_to: float = 0.95


def noise_sigma(frame: Frame) -> float:
    """Immerkær (1996) noise σ, in 8-bit levels, of the frame's channel mean."""
    gray = frame.astype(np.float32).mean(axis=2)
    height, width = gray.shape
    if height < 3 or width < 3:
        return MIN_NOISE
    response = np.abs(cv2.filter2D(gray, -1, NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1])
    sigma = math.sqrt(math.pi / 2.0) * float(response.sum()) / (6.0 * (width - 2) * (height - 2))
    return max(MIN_NOISE, sigma)


def blend_weight(frame0: np.ndarray, frame1: np.ndarray, warped0: np.ndarray, warped1: np.ndarray, t: float,
                 sigma: float, settings: Confidence = Confidence()) -> np.ndarray:
    """How much of the cross-fade to take per pixel, ``(H, W, 1)`` in [0, 1]; all arguments float32
    ``(H, W, 3)`` in 8-bit levels (the warps: each frame moved to ``t``)."""
    blend = frame0 + (frame1 - frame0) * np.float32(t)
    moved = float(np.abs(frame0 - frame1).mean())
    left = float(np.abs(warped0 - warped1).mean())
    pair = 0.0 if moved <= 0.0 else min(1.0, max(0.0, (left / moved - settings.lean_from)
                                                 / (settings.lean_to - settings.lean_from)))
    apart = np.maximum(np.abs(warped0 - blend), np.abs(warped1 - blend)).mean(axis=2)
    apart = cv2.blur(apart, (3, 3), borderType=cv2.BORDER_REFLECT)
    weight = np.clip(2.0 - apart / (settings.agree * sigma), 0.0, 1.0)
    return np.maximum(weight, np.float32(pair))[:, :, None]


def toward_blend(frame0: Frame, frame1: Frame, middles: list[Frame], times: list[float],
                 warps: list[tuple[np.ndarray, np.ndarray]], settings: Confidence = Confidence(),
                 sigma: float | None = None) -> list[Frame]:
    """Each of ``middles`` (the model's frames at ``times``) pulled toward the cross-fade at its time;
    ``warps``: per time, frame 0 and frame 1 warped there by the model (float32 ``(H, W, 3)``, 8-bit levels).
    ``sigma``: the frames' mean :func:`noise_sigma`, where the caller keeps it per frame."""
    first, second = frame0.astype(np.float32), frame1.astype(np.float32)
    if sigma is None:
        sigma = 0.5 * (noise_sigma(frame0) + noise_sigma(frame1))
    results = []
    for middle, t, (warped0, warped1) in zip(middles, times, warps):
        weight = blend_weight(first, second, warped0, warped1, t, sigma, settings)
        if not weight.any():
            results.append(middle)
            continue
        blend = first + (second - first) * np.float32(t)
        model = middle.astype(np.float32)
        results.append(np.clip(np.rint(model + (blend - model) * weight), 0, 255).astype(np.uint8))
    return results
