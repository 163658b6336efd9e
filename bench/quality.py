"""Quality: every method on every case, PSNR and SSIM of each midpoint against the dropped frame."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from skimage.metrics import structural_similarity

from .cases import Case, Frame
from .methods import Method, timed_midpoints

#: PSNR of two identical frames is infinite; it is reported as this (no method reaches it on a
#: moving case, and a finite number keeps means and plots meaningful).
PSNR_CEILING_DB = 99.0
PEAK = 255.0


def psnr(result: Frame, truth: Frame) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (8-bit peak)."""
    if result.shape != truth.shape:
        raise ValueError(f"frame shapes differ: {result.shape} vs {truth.shape}")
    mse = float(np.mean((result.astype(np.float64) - truth.astype(np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_CEILING_DB
    return min(PSNR_CEILING_DB, 10.0 * math.log10(PEAK * PEAK / mse))


def ssim(result: Frame, truth: Frame) -> float:
    """Structural similarity (scikit-image, 7×7 uniform window, mean over the RGB channels)."""
    if result.shape != truth.shape:
        raise ValueError(f"frame shapes differ: {result.shape} vs {truth.shape}")
    return float(structural_similarity(result, truth, channel_axis=2, data_range=PEAK))


@dataclass
class Score:
    """One method on one case."""

    case: str
    method: str
    psnr_db: float  # mean over the case's interpolated frames
    ssim: float  # mean over the case's interpolated frames
    psnr_per_frame: list[float]
    seconds: float  # wall time of the method for all of the case's midpoints
    frames: int
    #: The method's middle midpoint (for the crop strip; not written to the JSON results).
    sample: Frame | None = field(default=None, repr=False)

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / self.frames


def score_case(case: Case, method: Method) -> Score:
    outputs, seconds = timed_midpoints(method, case.kept, case.kept_fps)
    if len(outputs) != len(case.truth):
        raise RuntimeError(f"{method.name} gave {len(outputs)} frames for {len(case.truth)} on {case.name}")
    psnrs = [psnr(out, truth) for out, truth in zip(outputs, case.truth)]
    ssims = [ssim(out, truth) for out, truth in zip(outputs, case.truth)]
    return Score(case.name, method.name, float(np.mean(psnrs)), float(np.mean(ssims)), psnrs, seconds,
                 len(outputs), sample=outputs[len(outputs) // 2])


def evaluate(cases: Sequence[Case], methods: Sequence[Method],
             log: Callable[[str], None] = print) -> list[Score]:
    """Every method on every case (case by case, so the log shows progress through the slow ones)."""
    scores = []
    for case in cases:
        for method in methods:
            score = score_case(case, method)
            log(f"  {case.name:<20} {method.name:<13} PSNR {score.psnr_db:6.2f} dB  SSIM {score.ssim:.4f}  "
                f"({score.ms_per_frame:.0f} ms/frame)")
            scores.append(score)
    return scores


def sample_truth(case: Case) -> Frame:
    """The ground-truth frame matching :attr:`Score.sample`."""
    return case.truth[len(case.truth) // 2]
