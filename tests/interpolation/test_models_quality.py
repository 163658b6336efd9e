"""Model quality on synthetic scenes with a known truth: where things land, and PSNR against blend.

RIFE runs the real network on the pinned weights (tiny inputs, marked slow); flow and blend are
fast. The clip-like scene is rendered at twice the size and shrunk with area averaging, as a
camera would, so sub-pixel positions are real.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from interpolation.models import FrameInterpolator, create_model
from interpolation.models.rife import RifeInterpolator
from tests.interpolation.test_flow import assert_square_where_truth_has_it, psnr, square_frame

CLIP_SIZE = (144, 176)  # QCIF (height, width): the small phone-clip size the issue names
SUPERSAMPLING = 2  # the scene is drawn at 2× and area-averaged down, like a camera sensor
CAMERA_PAN = (6, 3)  # px per frame, the window over the world
OBJECT_MOTION = (-10, 4)  # px per frame, a foreground object relative to the window
OBJECT_SIZE = 40  # px


def world_texture(height: int, width: int, seed: int) -> np.ndarray:
    """A natural-looking picture: noise at several scales (fine grain to large blobs) plus discs."""
    rng = np.random.default_rng(seed)
    picture = np.zeros((height, width, 3), np.float32)
    for blur, weight in ((1.0, 0.25), (6.0, 0.5), (24.0, 0.8)):
        noise = cv2.GaussianBlur(rng.standard_normal((height, width, 3)).astype(np.float32), (0, 0), blur)
        picture += weight * noise / noise.std()
    picture = (picture - picture.min()) / (picture.max() - picture.min()) * 255
    for _ in range(10):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = tuple(float(v) for v in rng.integers(0, 256, 3))
        cv2.circle(picture, centre, int(rng.integers(6, height // 6)), colour, -1, cv2.LINE_AA)
    return picture.clip(0, 255).astype(np.uint8)


def clip_frame(t: float) -> np.ndarray:
    """The scene at time ``t`` (frames at 0 and 1): a panning camera and a moving foreground box."""
    height, width = CLIP_SIZE
    s = SUPERSAMPLING
    world = world_texture((height + 64) * s, (width + 64) * s, seed=11)
    box = world_texture(OBJECT_SIZE * s, OBJECT_SIZE * s, seed=12)
    left, top = (round((16 + t * d) * s) for d in CAMERA_PAN)
    view = world[top:top + height * s, left:left + width * s].copy()
    x, y = (round((start + t * d) * s) for start, d in zip((100, 40), OBJECT_MOTION))
    view[y:y + OBJECT_SIZE * s, x:x + OBJECT_SIZE * s] = box
    return cv2.resize(view, (width, height), interpolation=cv2.INTER_AREA)


ClipPair = tuple[np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def clip() -> ClipPair:
    """Frames at t = 0 and 1 and the true frame at t = 0.5."""
    return clip_frame(0.0), clip_frame(1.0), clip_frame(0.5)


def clip_psnr(model: FrameInterpolator, clip: ClipPair) -> float:
    frame0, frame1, truth = clip
    (middle,) = model.interpolate(frame0, frame1, [0.5])
    return psnr(middle, truth)


@pytest.fixture(scope="module")
def rife() -> RifeInterpolator:
    return RifeInterpolator(device="cpu")


@pytest.mark.slow
def test_rife_moving_square_lands_within_a_pixel_at_every_t(rife):
    frame0, frame1 = square_frame(40, 30), square_frame(48, 34)
    times = [0.25, 0.5, 0.75]
    for t, frame in zip(times, rife.interpolate(frame0, frame1, times)):
        assert_square_where_truth_has_it(frame, square_frame(40 + 8 * t, 30 + 4 * t))


@pytest.mark.slow
def test_rife_is_not_worse_than_blend_on_a_small_clip(rife, clip):
    assert clip_psnr(rife, clip) >= clip_psnr(create_model("blend"), clip)


def test_flow_beats_blend_on_a_small_clip(clip):
    assert clip_psnr(create_model("flow"), clip) > clip_psnr(create_model("blend"), clip) + 3.0
